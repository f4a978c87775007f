package pdu

import (
	"bytes"
	"testing"
)

// Expected encodings are written out by hand from the RFC 7143 section 11
// figures, one BHS row of 4 bytes (or a field) per group.
func TestResponseEncodingsAreByteExact(t *testing.T) {
	sense := unhex(t, "70 00 05 00 00 00 00 0a 00 00 00 00 24 00 00 00 00 00")
	rejected := bytes.Repeat([]byte{0xab}, 48)
	tests := []struct {
		name string
		pdu  *PDU
		want string
	}{
		{
			name: "SCSI Response with sense",
			pdu: (&SCSIResponse{
				Underflow: true, Status: 0x02, ITT: 0x11223344,
				StatSN: 0x01020304, ExpCmdSN: 5, MaxCmdSN: 0x24, ExpDataSN: 2, Residual: 0x200,
				Sense: sense,
			}).Encode(),
			want: `21 82 00 02 | 00 00 00 14 | 00 00 00 00 00 00 00 00 | 11 22 33 44 | 00 00 00 00
			       01 02 03 04 | 00 00 00 05 | 00 00 00 24 | 00 00 00 02 | 00 00 00 00 | 00 00 02 00
			       00 12 70 00 05 00 00 00 00 0a 00 00 00 00 24 00 00 00 00 00`,
		},
		{
			name: "SCSI Response all flags no sense",
			pdu: (&SCSIResponse{
				BidiOverflow: true, BidiUnderflow: true, Overflow: true, Underflow: true,
				Response: 0x01, ITT: 1, SNACKTag: 0x0a0b0c0d, StatSN: 2, ExpCmdSN: 3,
				MaxCmdSN: 4, ExpDataSN: 5, BidiResidual: 6, Residual: 7,
			}).Encode(),
			want: `21 9e 01 00 | 00 00 00 00 | 00 00 00 00 00 00 00 00 | 00 00 00 01 | 0a 0b 0c 0d
			       00 00 00 02 | 00 00 00 03 | 00 00 00 04 | 00 00 00 05 | 00 00 00 06 | 00 00 00 07`,
		},
		{
			name: "Data-In with status and padding",
			pdu: (&DataIn{
				Final: true, HasStatus: true, Underflow: true, LUN: EncodeLUN(1), ITT: 0x0a,
				TTT: 0xffffffff, StatSN: 7, ExpCmdSN: 8, MaxCmdSN: 0x27, DataSN: 3,
				BufferOffset: 0x2000, Residual: 0x10, Data: []byte("abcde"),
			}).Encode(),
			want: `25 83 00 00 | 00 00 00 05 | 00 01 00 00 00 00 00 00 | 00 00 00 0a | ff ff ff ff
			       00 00 00 07 | 00 00 00 08 | 00 00 00 27 | 00 00 00 03 | 00 00 20 00 | 00 00 00 10
			       61 62 63 64 65 00 00 00`,
		},
		{
			name: "Data-In ack with status byte, overflow",
			pdu: (&DataIn{
				Ack: true, Overflow: true, HasStatus: true, Status: 0x02, LUN: EncodeLUN(300),
				ITT: 0x01020304, TTT: 0x55, DataSN: 1, Residual: 0x100, Data: []byte{1, 2, 3, 4},
			}).Encode(),
			want: `25 45 00 02 | 00 00 00 04 | 41 2c 00 00 00 00 00 00 | 01 02 03 04 | 00 00 00 55
			       00 00 00 00 | 00 00 00 00 | 00 00 00 00 | 00 00 00 01 | 00 00 00 00 | 00 00 01 00
			       01 02 03 04`,
		},
		{
			name: "R2T",
			pdu: (&R2T{
				LUN: EncodeLUN(2), ITT: 0x0b, TTT: 1, StatSN: 9, ExpCmdSN: 10, MaxCmdSN: 41,
				R2TSN: 0, BufferOffset: 0x10000, DesiredLength: 0x40000,
			}).Encode(),
			want: `31 80 00 00 | 00 00 00 00 | 00 02 00 00 00 00 00 00 | 00 00 00 0b | 00 00 00 01
			       00 00 00 09 | 00 00 00 0a | 00 00 00 29 | 00 00 00 00 | 00 01 00 00 | 00 04 00 00`,
		},
		{
			name: "NOP-In answering a ping with data",
			pdu: (&NOPIn{
				ITT: 0x77, TTT: 0xffffffff, StatSN: 1, ExpCmdSN: 2, MaxCmdSN: 3, Data: []byte("ping!!"),
			}).Encode(),
			want: `20 80 00 00 | 00 00 00 06 | 00 00 00 00 00 00 00 00 | 00 00 00 77 | ff ff ff ff
			       00 00 00 01 | 00 00 00 02 | 00 00 00 03 | 00 00 00 00 | 00 00 00 00 | 00 00 00 00
			       70 69 6e 67 21 21 00 00`,
		},
		{
			name: "Task Management Response",
			pdu: (&TaskMgmtResp{
				Response: TMFRespNotSupported, ITT: 0x99, StatSN: 0x10, ExpCmdSN: 0x11, MaxCmdSN: 0x12,
			}).Encode(),
			want: `22 80 05 00 | 00 00 00 00 | 00 00 00 00 00 00 00 00 | 00 00 00 99 | 00 00 00 00
			       00 00 00 10 | 00 00 00 11 | 00 00 00 12 | 00 00 00 00 | 00 00 00 00 | 00 00 00 00`,
		},
		{
			name: "Login Response security to operational",
			pdu: (&LoginResp{
				Transit: true, CSG: 0, NSG: 1, VersionMax: 0, VersionActive: 0,
				ISID: [6]byte{0x80, 0x12, 0x34, 0x56, 0x78, 0x9a}, TSIH: 0x0102, ITT: 0x1000,
				StatSN: 0x0abc, ExpCmdSN: 1, MaxCmdSN: 0x20, Data: []byte("AuthMethod=None\x00"),
			}).Encode(),
			want: `23 81 00 00 | 00 00 00 10 | 80 12 34 56 78 9a 01 02 | 00 00 10 00 | 00 00 00 00
			       00 00 0a bc | 00 00 00 01 | 00 00 00 20 | 00 00 00 00 | 00 00 00 00 | 00 00 00 00
			       41 75 74 68 4d 65 74 68 6f 64 3d 4e 6f 6e 65 00`,
		},
		{
			name: "Login Response error, continue, full stage",
			pdu: (&LoginResp{
				Continue: true, CSG: 1, NSG: 3, VersionMax: 0x11, VersionActive: 0x22,
				ITT: 5, StatusClass: 0x02, StatusDetail: 0x01,
			}).Encode(),
			want: `23 47 11 22 | 00 00 00 00 | 00 00 00 00 00 00 00 00 | 00 00 00 05 | 00 00 00 00
			       00 00 00 00 | 00 00 00 00 | 00 00 00 00 | 02 01 00 00 | 00 00 00 00 | 00 00 00 00`,
		},
		{
			name: "Text Response",
			pdu: (&TextResp{
				Final: true, LUN: 0, ITT: 3, TTT: 0xffffffff, StatSN: 4, ExpCmdSN: 5, MaxCmdSN: 6,
				Data: []byte("TargetName=iqn.x\x00"),
			}).Encode(),
			want: `24 80 00 00 | 00 00 00 11 | 00 00 00 00 00 00 00 00 | 00 00 00 03 | ff ff ff ff
			       00 00 00 04 | 00 00 00 05 | 00 00 00 06 | 00 00 00 00 | 00 00 00 00 | 00 00 00 00
			       54 61 72 67 65 74 4e 61 6d 65 3d 69 71 6e 2e 78 00 00 00 00`,
		},
		{
			name: "Text Response continue",
			pdu:  (&TextResp{Continue: true, ITT: 3, TTT: 0x1234}).Encode(),
			want: `24 40 00 00 | 00 00 00 00 | 00 00 00 00 00 00 00 00 | 00 00 00 03 | 00 00 12 34
			       00 00 00 00 | 00 00 00 00 | 00 00 00 00 | 00 00 00 00 | 00 00 00 00 | 00 00 00 00`,
		},
		{
			name: "Logout Response",
			pdu: (&LogoutResp{
				Response: LogoutRespCIDNotFound, ITT: 0x42, StatSN: 7, ExpCmdSN: 8, MaxCmdSN: 9,
				Time2Wait: 2, Time2Retain: 20,
			}).Encode(),
			want: `26 80 01 00 | 00 00 00 00 | 00 00 00 00 00 00 00 00 | 00 00 00 42 | 00 00 00 00
			       00 00 00 07 | 00 00 00 08 | 00 00 00 09 | 00 00 00 00 | 00 02 00 14 | 00 00 00 00`,
		},
		{
			name: "Async Message request logout",
			pdu: (&AsyncMsg{
				LUN: EncodeLUN(3), StatSN: 1, ExpCmdSN: 2, MaxCmdSN: 3,
				AsyncEvent: AsyncEventLogoutRequest, AsyncVCode: 0, Parameter1: 0, Parameter2: 0,
				Parameter3: 5,
			}).Encode(),
			want: `32 80 00 00 | 00 00 00 00 | 00 03 00 00 00 00 00 00 | ff ff ff ff | 00 00 00 00
			       00 00 00 01 | 00 00 00 02 | 00 00 00 03 | 01 00 00 00 | 00 00 00 05 | 00 00 00 00`,
		},
		{
			name: "Async Message parameters and sense data",
			pdu: (&AsyncMsg{
				AsyncEvent: AsyncEventDropConnection, AsyncVCode: 9, Parameter1: 0x0102,
				Parameter2: 0x0304, Parameter3: 0x0506, Data: []byte{0, 1, 0x70},
			}).Encode(),
			want: `32 80 00 00 | 00 00 00 03 | 00 00 00 00 00 00 00 00 | ff ff ff ff | 00 00 00 00
			       00 00 00 00 | 00 00 00 00 | 00 00 00 00 | 02 09 01 02 | 03 04 05 06 | 00 00 00 00
			       00 01 70 00`,
		},
		{
			name: "Reject with the rejected header",
			pdu: (&Reject{
				Reason: RejectDataDigest, StatSN: 0x0100, ExpCmdSN: 0x0200, MaxCmdSN: 0x0300,
				DataSN: 4, Header: rejected,
			}).Encode(),
			want: `3f 80 02 00 | 00 00 00 30 | 00 00 00 00 00 00 00 00 | ff ff ff ff | 00 00 00 00
			       00 00 01 00 | 00 00 02 00 | 00 00 03 00 | 00 00 00 04 | 00 00 00 00 | 00 00 00 00` +
				" " + hexRepeat("ab", 48),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := unhex(t, tc.want)
			if got := wire(t, tc.pdu); !bytes.Equal(got, want) {
				t.Errorf("encoding mismatch\n got %x\nwant %x", got, want)
			}
		})
	}
}

func hexRepeat(h string, n int) string {
	var b bytes.Buffer
	for range n {
		b.WriteString(h)
	}
	return b.String()
}

func TestEncodeAliasesData(t *testing.T) {
	data := []byte("payload")
	p := (&DataIn{Data: data}).Encode()
	if &p.Data[0] != &data[0] {
		t.Fatal("DataIn.Encode copied the payload")
	}
	h := make([]byte, 48)
	p = (&Reject{Header: h}).Encode()
	if &p.Data[0] != &h[0] {
		t.Fatal("Reject.Encode copied the header")
	}
}
