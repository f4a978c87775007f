package pdu

import (
	"errors"
	"reflect"
	"testing"
)

// Requests are hand-built from the RFC 7143 section 11 figures and parsed.
func TestParseRequests(t *testing.T) {
	readCDB := unhex(t, "28 00 00 00 10 00 00 00 08 00 00 00 00 00 00 00")
	extCDB := make([]byte, 32)
	for i := range extCDB {
		extCDB[i] = byte(0x80 + i)
	}
	immediate := []byte("immediate data!!")
	tests := []struct {
		name string
		bhs  string
		ahs  string
		data []byte
		want Request
	}{
		{
			name: "SCSI READ(10) simple attribute",
			bhs: `01 c1 00 00 | 00 00 00 00 | 00 01 00 00 00 00 00 00 | 00 00 00 14 | 00 00 10 00
			      00 00 00 20 | 00 00 00 30 | 28 00 00 00 10 00 00 00 08 00 00 00 00 00 00 00`,
			want: &SCSICommand{
				Final: true, Read: true, Attr: 1, LUN: EncodeLUN(1), ITT: 0x14, EDTL: 0x1000,
				CmdSN: 0x20, ExpStatSN: 0x30, CDB: readCDB,
			},
		},
		{
			name: "SCSI WRITE immediate with data",
			bhs: `41 a0 00 00 | 00 00 00 10 | 00 00 00 00 00 00 00 00 | 00 00 00 01 | 00 00 00 10
			      00 00 00 02 | 00 00 00 03 | 2a 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00`,
			data: immediate,
			want: &SCSICommand{
				Immediate: true, Final: true, Write: true, ITT: 1, EDTL: 16, CmdSN: 2, ExpStatSN: 3,
				CDB:  unhex(t, "2a 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00"),
				Data: immediate,
			},
		},
		{
			name: "SCSI bidi with 32-byte CDB",
			bhs: `01 e0 00 00 | 07 00 00 00 | 00 00 00 00 00 00 00 00 | 00 00 00 07 | 00 00 02 00
			      00 00 00 01 | 00 00 00 01 | 808182838485868788898a8b8c8d8e8f`,
			// Type 1: AHSLength = 32-15 = 17 (reserved byte + 16 CDB bytes), 20 bytes, no pad.
			// Type 2: AHSLength 5, reserved byte, read length; 8 bytes. 28 bytes = 7 words.
			ahs: `00 11 01 00 909192939495969798999a9b9c9d9e9f
			      00 05 02 00 00 00 04 00`,
			want: &SCSICommand{
				Final: true, Read: true, Write: true, ITT: 7, EDTL: 0x200, CmdSN: 1, ExpStatSN: 1,
				CDB: extCDB, BidiReadLength: 0x400,
			},
		},
		{
			name: "Data-Out final",
			bhs: `05 80 00 00 | 00 00 00 10 | 00 05 00 00 00 00 00 00 | 00 00 00 09 | 00 00 00 aa
			      00 00 00 00 | 00 00 00 04 | 00 00 00 00 | 00 00 00 02 | 00 01 00 00 | 00 00 00 00`,
			data: immediate,
			want: &DataOut{
				Final: true, LUN: EncodeLUN(5), ITT: 9, TTT: 0xaa, ExpStatSN: 4, DataSN: 2,
				BufferOffset: 0x10000, Data: immediate,
			},
		},
		{
			name: "NOP-Out ping",
			bhs: `40 80 00 00 | 00 00 00 00 | 00 00 00 00 00 00 00 00 | 00 00 00 21 | ff ff ff ff
			      00 00 00 05 | 00 00 00 06 | 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00`,
			want: &NOPOut{Immediate: true, ITT: 0x21, TTT: 0xffffffff, CmdSN: 5, ExpStatSN: 6},
		},
		{
			name: "Task Management ABORT TASK",
			bhs: `42 81 00 00 | 00 00 00 00 | 00 02 00 00 00 00 00 00 | 00 00 00 30 | 00 00 00 14
			      00 00 00 08 | 00 00 00 09 | 00 00 00 07 | 00 00 00 01 | 00 00 00 00 00 00 00 00`,
			want: &TaskMgmtReq{
				Immediate: true, Function: TMFAbortTask, LUN: EncodeLUN(2), ITT: 0x30,
				RefTaskTag: 0x14, CmdSN: 8, ExpStatSN: 9, RefCmdSN: 7, ExpDataSN: 1,
			},
		},
		{
			name: "Login security stage",
			bhs: `43 87 00 00 | 00 00 00 0e | 00 02 3d 00 00 01 00 00 | 00 00 00 00 | 00 01 00 00
			      00 00 00 01 | 00 00 00 00 | 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00`,
			data: []byte("InitiatorName="),
			want: &LoginReq{
				Transit: true, CSG: 1, NSG: 3, ISID: [6]byte{0, 2, 0x3d, 0, 0, 1}, CID: 1,
				CmdSN: 1, Data: []byte("InitiatorName="),
			},
		},
		{
			name: "Login continue with TSIH and versions",
			bhs: `43 40 01 02 | 00 00 00 00 | 80 00 00 00 00 07 12 34 | 00 00 00 02 | 00 00 00 00
			      00 00 00 03 | 00 00 00 04 | 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00`,
			want: &LoginReq{
				Continue: true, VersionMax: 1, VersionMin: 2, ISID: [6]byte{0x80, 0, 0, 0, 0, 7},
				TSIH: 0x1234, ITT: 2, CmdSN: 3, ExpStatSN: 4,
			},
		},
		{
			name: "Text SendTargets",
			bhs: `44 80 00 00 | 00 00 00 10 | 00 00 00 00 00 00 00 00 | 00 00 00 0c | ff ff ff ff
			      00 00 00 02 | 00 00 00 03 | 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00`,
			data: []byte("SendTargets=All\x00"),
			want: &TextReq{
				Immediate: true, Final: true, ITT: 0x0c, TTT: 0xffffffff, CmdSN: 2, ExpStatSN: 3,
				Data: []byte("SendTargets=All\x00"),
			},
		},
		{
			name: "Text continue",
			bhs: `04 40 00 00 | 00 00 00 00 | 00 00 00 00 00 00 00 01 | 00 00 00 0d | 00 00 00 01
			      00 00 00 02 | 00 00 00 03 | 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00`,
			want: &TextReq{Continue: true, LUN: 1, ITT: 0x0d, TTT: 1, CmdSN: 2, ExpStatSN: 3},
		},
		{
			name: "Logout close connection",
			bhs: `46 81 00 00 | 00 00 00 00 | 00 00 00 00 00 00 00 00 | 00 00 00 11 | 00 02 00 00
			      00 00 00 12 | 00 00 00 13 | 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00`,
			want: &LogoutReq{
				Immediate: true, Reason: LogoutCloseConnection, ITT: 0x11, CID: 2, CmdSN: 0x12,
				ExpStatSN: 0x13,
			},
		},
		{
			name: "SNACK status",
			bhs: `10 81 00 00 | 00 00 00 00 | 00 00 00 00 00 00 00 00 | ff ff ff ff | 00 00 00 00
			      00 00 00 00 | 00 00 00 07 | 00 00 00 00 00 00 00 00 | 00 00 00 05 | 00 00 00 02`,
			want: &SNACKReq{
				Type: SNACKStatus, ITT: 0xffffffff, ExpStatSN: 7, BegRun: 5, RunLength: 2,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ahs []byte
			if tc.ahs != "" {
				ahs = unhex(t, tc.ahs)
			}
			p := pduFrom(t, unhex(t, tc.bhs), ahs, tc.data)
			if p.BHS.TotalAHSLength() != len(ahs) {
				t.Fatalf("test BHS says %d AHS bytes, test has %d", p.BHS.TotalAHSLength(), len(ahs))
			}
			if p.BHS.DataSegmentLength() != len(tc.data) {
				t.Fatalf("test BHS says %d data bytes, test has %d", p.BHS.DataSegmentLength(), len(tc.data))
			}
			got, err := ParseRequest(p)
			if err != nil {
				t.Fatalf("ParseRequest: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			// The request encoders must reproduce the same bytes.
			enc := got.(interface{ Encode() *PDU }).Encode()
			if enc.BHS != p.BHS || string(enc.AHS) != string(ahs) {
				t.Errorf("re-encoding differs\n got %x %x\nwant %x %x", enc.BHS, enc.AHS, p.BHS, ahs)
			}
		})
	}
}

func TestParseRequestRejectsBadLayouts(t *testing.T) {
	withAHS := func(op Opcode, ahs string) *PDU {
		p := &PDU{AHS: unhex(t, ahs)}
		p.BHS[0] = byte(op)
		p.BHS.setTotalAHSLength(len(p.AHS))
		return p
	}
	withData := func(op Opcode) *PDU {
		p := &PDU{Data: []byte{1, 2, 3, 4}}
		p.BHS[0] = byte(op)
		p.BHS.SetDataSegmentLength(4)
		return p
	}
	tests := []struct {
		name string
		pdu  *PDU
	}{
		{"nil PDU", nil},
		{"truncated AHS header", withAHS(OpSCSICommand, "00 01 01")},
		{"AHS entry past the end", withAHS(OpSCSICommand, "00 09 01 00 00 00 00 00")},
		{"extended CDB without bytes", withAHS(OpSCSICommand, "00 01 01 00")},
		{"bidi length wrong size", withAHS(OpSCSICommand, "00 04 02 00 00 00 00 00")},
		{"two bidi AHS", withAHS(OpSCSICommand, "00 05 02 00 00 00 00 01 00 05 02 00 00 00 00 01")},
		{"two extended CDB AHS", withAHS(OpSCSICommand, "00 02 01 00 01 00 00 00 00 02 01 00 01 00 00 00")},
		{"unknown AHS type", withAHS(OpSCSICommand, "00 01 03 00")},
		{"AHS on Data-Out", withAHS(OpDataOut, "00 05 02 00 00 00 00 01")},
		{"AHS on Login", withAHS(OpLoginReq, "00 05 02 00 00 00 00 01")},
		{"data on Task Management", withData(OpTaskMgmtReq)},
		{"data on Logout", withData(OpLogoutReq)},
		{"data on SNACK", withData(OpSNACKReq)},
		{"target opcode", withData(OpSCSIResponse)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRequest(tc.pdu)
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want *ProtocolError", err)
			}
		})
	}
}

func TestTypedParserRejectsOtherOpcode(t *testing.T) {
	p := (&NOPOut{ITT: 1}).Encode()
	if _, err := ParseSCSICommand(p); err == nil {
		t.Fatal("ParseSCSICommand accepted a NOP-Out")
	}
	if _, err := ParseDataOut(p); err == nil {
		t.Fatal("ParseDataOut accepted a NOP-Out")
	}
}

// Every one of the 64 opcodes goes through the dispatcher and every typed
// parser: nothing panics, and only the eight initiator opcodes parse.
func TestAllOpcodes(t *testing.T) {
	parsers := allParsers()
	for op := range 64 {
		p := &PDU{}
		for i := range p.BHS {
			p.BHS[i] = byte(i * 7)
		}
		p.BHS[0] = byte(op)
		p.BHS[4] = 0
		p.BHS.SetDataSegmentLength(0)
		_, err := ParseRequest(p)
		known := requestParsers[op] != nil
		var pe *ProtocolError
		switch {
		case known && err != nil:
			t.Errorf("%v: %v", Opcode(op), err)
		case !known && !errors.As(err, &pe):
			t.Errorf("%v: got %v, want *ProtocolError", Opcode(op), err)
		}
		for name, parse := range parsers {
			if _, err := parse(p); err != nil && !errors.As(err, &pe) {
				t.Errorf("%s(%v): non-protocol error %v", name, Opcode(op), err)
			}
		}
	}
}

func TestOpcodeString(t *testing.T) {
	if got := OpSCSICommand.String(); got != "SCSI-Command" {
		t.Errorf("got %q", got)
	}
	if got := Opcode(0x3a).String(); got != "Opcode(0x3a)" {
		t.Errorf("got %q", got)
	}
}

// allParsers lists every Parse* function in the package, both directions.
func allParsers() map[string]func(*PDU) (any, error) {
	return map[string]func(*PDU) (any, error){
		"ParseSCSICommand":  anyParser(ParseSCSICommand),
		"ParseDataOut":      anyParser(ParseDataOut),
		"ParseNOPOut":       anyParser(ParseNOPOut),
		"ParseTaskMgmtReq":  anyParser(ParseTaskMgmtReq),
		"ParseLoginReq":     anyParser(ParseLoginReq),
		"ParseTextReq":      anyParser(ParseTextReq),
		"ParseLogoutReq":    anyParser(ParseLogoutReq),
		"ParseSNACKReq":     anyParser(ParseSNACKReq),
		"ParseRequest":      anyParser(ParseRequest),
		"ParseSCSIResponse": anyParser(ParseSCSIResponse),
		"ParseDataIn":       anyParser(ParseDataIn),
		"ParseR2T":          anyParser(ParseR2T),
		"ParseNOPIn":        anyParser(ParseNOPIn),
		"ParseTaskMgmtResp": anyParser(ParseTaskMgmtResp),
		"ParseLoginResp":    anyParser(ParseLoginResp),
		"ParseTextResp":     anyParser(ParseTextResp),
		"ParseLogoutResp":   anyParser(ParseLogoutResp),
		"ParseAsyncMsg":     anyParser(ParseAsyncMsg),
		"ParseReject":       anyParser(ParseReject),
	}
}

func anyParser[T any](f func(*PDU) (T, error)) func(*PDU) (any, error) {
	return func(p *PDU) (any, error) { return f(p) }
}
