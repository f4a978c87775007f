package iscsi

import (
	"encoding/binary"
	"testing"

	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
	"github.com/rbdgw/rbdgw/gateway/internal/login"
	"github.com/rbdgw/rbdgw/gateway/internal/pdu"
)

// rawBHS builds a 48-byte header with an opcode and a data segment length.
func rawBHS(op byte, dsl int) []byte {
	b := make([]byte, pdu.BHSLen)
	b[0] = op
	b[1] = 0x80
	b[5], b[6], b[7] = byte(dsl>>16), byte(dsl>>8), byte(dsl)
	binary.BigEndian.PutUint32(b[16:], 0x1234)
	return b
}

func expectReject(t *testing.T, in *iscsitest.Initiator, reason uint8) *pdu.Reject {
	t.Helper()
	r, err := in.ExpectReject()
	if err != nil {
		t.Fatalf("waiting for Reject %#x: %v", reason, err)
	}
	if r.Reason != reason {
		t.Fatalf("Reject reason %#x, want %#x", r.Reason, reason)
	}
	if len(r.Header) != pdu.BHSLen {
		t.Fatalf("Reject carries %d header bytes", len(r.Header))
	}
	return r
}

// stillServes checks the session still runs commands.
func stillServes(t *testing.T, in *iscsitest.Initiator) {
	t.Helper()
	if res, err := in.Do(&iscsitest.Cmd{CDB: cdbTUR()}); err != nil || res.Status != 0 {
		t.Fatalf("session no longer serves: %v %+v", err, res)
	}
}

func TestRejects(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name   string
		send   func(in *iscsitest.Initiator) error
		reason uint8
	}{
		{"unknown opcode", func(in *iscsitest.Initiator) error { return in.SendRaw(rawBHS(0x1f, 0)) }, pdu.RejectCmdNotSupported},
		{"target opcode", func(in *iscsitest.Initiator) error { return in.SendRaw(rawBHS(byte(pdu.OpSCSIResponse), 0)) }, pdu.RejectCmdNotSupported},
		{"SNACK", func(in *iscsitest.Initiator) error {
			return in.Send((&pdu.SNACKReq{Type: pdu.SNACKStatus, ITT: 7, TTT: iscsitest.ReservedTag}).Encode())
		}, pdu.RejectProtocolError},
		{"Data-Out for no task", func(in *iscsitest.Initiator) error {
			return in.Send((&pdu.DataOut{Final: true, ITT: 0x999, TTT: 0x55, Data: make([]byte, 512)}).Encode())
		}, pdu.RejectInvalidPDUField},
		{"Login in full feature phase", func(in *iscsitest.Initiator) error {
			return in.Send((&pdu.LoginReq{Transit: true, CSG: 1, NSG: 3, ISID: in.ISID, ITT: 9}).Encode())
		}, pdu.RejectProtocolError},
		{"logout with unknown reason", func(in *iscsitest.Initiator) error {
			return in.Send((&pdu.LogoutReq{Immediate: true, Reason: 0x33, ITT: 11, CmdSN: in.CmdSN}).Encode())
		}, pdu.RejectProtocolError},
		{"Text continuing nothing", func(in *iscsitest.Initiator) error {
			return in.Send((&pdu.TextReq{Immediate: true, Final: true, ITT: 12, TTT: 0x77, CmdSN: in.CmdSN}).Encode())
		}, pdu.RejectInvalidPDUField},
		{"SCSI Command with immediate data but no W bit", func(in *iscsitest.Initiator) error {
			c := &pdu.SCSICommand{Immediate: true, Final: true, Read: true, ITT: 13, EDTL: 512,
				CmdSN: in.CmdSN, CDB: cdbRead10(0, 1), Data: make([]byte, 512)}
			return in.Send(c.Encode())
		}, pdu.RejectProtocolError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := e.login()
			if err := tc.send(in); err != nil {
				t.Fatal(err)
			}
			expectReject(t, in, tc.reason)
			stillServes(t, in)
		})
	}
}

func TestTaskTagInUse(t *testing.T) {
	e := newEnv(t, withTuning(func(o *Options) {}))
	in := e.login(kv("InitialR2T", "Yes"), kv("ImmediateData", "No"))
	w := &iscsitest.Cmd{CDB: cdbWrite10(0, 1), EDTL: 512, Data: pattern(512, 1)}
	if err := in.Submit(w); err != nil {
		t.Fatal(err)
	}
	r2t, err := in.RecvOpcode(pdu.OpR2T)
	if err != nil {
		t.Fatal(err)
	}
	// A second command reusing the tag of the one waiting for data.
	dup := &pdu.SCSICommand{Final: true, ITT: w.ITT, CmdSN: in.CmdSN, CDB: cdbTUR()}
	in.CmdSN++
	if err := in.Send(dup.Encode()); err != nil {
		t.Fatal(err)
	}
	expectReject(t, in, pdu.RejectTaskInProgress)
	// The first command still completes.
	r, _ := pdu.ParseR2T(r2t)
	if err := in.Send((&pdu.DataOut{Final: true, ITT: w.ITT, TTT: r.TTT, Data: w.Data}).Encode()); err != nil {
		t.Fatal(err)
	}
	for !w.Done() {
		if _, err := in.Poll(); err != nil {
			t.Fatal(err)
		}
	}
	stillServes(t, in) // the rejected command's CmdSN did not stall the window
}

func TestDataOutUnknownTTT(t *testing.T) {
	e := newEnv(t)
	in := e.login(kv("InitialR2T", "Yes"), kv("ImmediateData", "No"))
	w := &iscsitest.Cmd{CDB: cdbWrite10(0, 1), EDTL: 512, Data: pattern(512, 1)}
	if err := in.Submit(w); err != nil {
		t.Fatal(err)
	}
	p, err := in.RecvOpcode(pdu.OpR2T)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := pdu.ParseR2T(p)
	if err := in.Send((&pdu.DataOut{Final: true, ITT: w.ITT, TTT: r.TTT + 100, Data: w.Data}).Encode()); err != nil {
		t.Fatal(err)
	}
	expectReject(t, in, pdu.RejectInvalidPDUField)
	if err := in.Send((&pdu.DataOut{Final: true, ITT: w.ITT, TTT: r.TTT, Data: w.Data}).Encode()); err != nil {
		t.Fatal(err)
	}
	for !w.Done() {
		if _, err := in.Poll(); err != nil {
			t.Fatal(err)
		}
	}
	if w.Result.Status != 0 {
		t.Fatalf("status %#x", w.Result.Status)
	}
}

func TestDataOutErrorsTerminateTheCommand(t *testing.T) {
	e := newEnv(t, withTuning(func(o *Options) { o.Tuning.MaxRecvDataSegmentLength = 512 }))
	for _, tc := range []struct {
		name     string
		keys     []login.KV
		blocks   int
		mangle   func(i int, d *pdu.DataOut) // i: index of the Data-Out for the R2T
		asc      byte
		ascq     byte
		moreData bool // the initiator still answers the R2T
	}{
		{"repeated DataSN", nil, 2, func(i int, d *pdu.DataOut) { d.DataSN = 0 }, 0x47, 0x05, false},
		{"DataSN 27", nil, 1, func(_ int, d *pdu.DataOut) { d.DataSN = 27 }, 0x47, 0x05, false},
		{"DataSN -1", nil, 1, func(_ int, d *pdu.DataOut) { d.DataSN = 0xffffffff }, 0x47, 0x05, false},
		{"reversed DataSN", nil, 2, func(i int, d *pdu.DataOut) { d.DataSN = uint32(1 - i) }, 0x47, 0x05, false},
		{"BufferOffset", nil, 2, func(i int, d *pdu.DataOut) { d.BufferOffset += 512 }, 0x47, 0x05, false},
		{"F bit too early", nil, 2, func(i int, d *pdu.DataOut) { d.Final = true }, 0x47, 0x05, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := e.login(kv("InitialR2T", "Yes"), kv("ImmediateData", "No"))
			size := tc.blocks * 512
			w := &iscsitest.Cmd{CDB: cdbWrite10(0, uint16(tc.blocks)), EDTL: uint32(size), Data: pattern(size, 1)}
			if err := in.Submit(w); err != nil {
				t.Fatal(err)
			}
			p, err := in.RecvOpcode(pdu.OpR2T)
			if err != nil {
				t.Fatal(err)
			}
			r, _ := pdu.ParseR2T(p)
			var out []*pdu.PDU
			for i := range tc.blocks {
				d := &pdu.DataOut{Final: i == tc.blocks-1, ITT: w.ITT, TTT: r.TTT, DataSN: uint32(i),
					BufferOffset: uint32(i * 512), Data: w.Data[i*512 : (i+1)*512]}
				tc.mangle(i, d)
				out = append(out, d.Encode())
			}
			if err := in.Send(out...); err != nil {
				t.Fatal(err)
			}
			for !w.Done() {
				if _, err := in.Poll(); err != nil {
					t.Fatal(err)
				}
			}
			s := w.Result.Sense
			if w.Result.Status != 0x02 || len(s) < 14 || s[2]&0x0f != senseAbortedCommand || s[12] != tc.asc || s[13] != tc.ascq {
				t.Fatalf("status %#x sense %x, want ABORTED COMMAND %02x/%02x", w.Result.Status, s, tc.asc, tc.ascq)
			}
			stillServes(t, in)
			if len(in.Unexpected) != 0 {
				t.Fatalf("%d unexpected PDUs", len(in.Unexpected))
			}
		})
	}
}

func TestUnexpectedUnsolicitedData(t *testing.T) {
	e := newEnv(t)
	in := e.login(kv("InitialR2T", "Yes"), kv("ImmediateData", "No"))
	w := &iscsitest.Cmd{CDB: cdbWrite10(0, 1), EDTL: 512, Data: pattern(512, 1)}
	if err := in.Submit(w); err != nil {
		t.Fatal(err)
	}
	p, err := in.RecvOpcode(pdu.OpR2T)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := pdu.ParseR2T(p)
	if err := in.Send(
		(&pdu.DataOut{Final: true, ITT: w.ITT, TTT: iscsitest.ReservedTag, Data: w.Data}).Encode(),
		(&pdu.DataOut{Final: true, ITT: w.ITT, TTT: r.TTT, Data: w.Data}).Encode()); err != nil {
		t.Fatal(err)
	}
	for !w.Done() {
		if _, err := in.Poll(); err != nil {
			t.Fatal(err)
		}
	}
	if s := w.Result.Sense; w.Result.Status != 0x02 || len(s) < 14 || s[12] != 0x0c || s[13] != 0x0c {
		t.Fatalf("status %#x sense %x", w.Result.Status, s)
	}
}

func TestDataOutDigestErrorTerminatesTheCommand(t *testing.T) {
	e := newEnv(t)
	in := e.login(kv("DataDigest", "CRC32C"), kv("InitialR2T", "Yes"), kv("ImmediateData", "No"))
	w := &iscsitest.Cmd{CDB: cdbWrite10(0, 1), EDTL: 512, Data: pattern(512, 1)}
	if err := in.Submit(w); err != nil {
		t.Fatal(err)
	}
	p, err := in.RecvOpcode(pdu.OpR2T)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := pdu.ParseR2T(p)
	d := (&pdu.DataOut{Final: true, ITT: w.ITT, TTT: r.TTT, Data: w.Data}).Encode()
	raw := append(d.BHS[:0:0], d.BHS[:]...)
	raw = append(raw, w.Data...)
	raw = binary.LittleEndian.AppendUint32(raw, pdu.CRC32C(w.Data)+1)
	if err := in.SendRaw(raw); err != nil {
		t.Fatal(err)
	}
	expectReject(t, in, pdu.RejectDataDigest)
	for !w.Done() {
		if _, err := in.Poll(); err != nil {
			t.Fatal(err)
		}
	}
	if s := w.Result.Sense; w.Result.Status != 0x02 || len(s) < 14 || s[12] != 0x47 || s[13] != 0x05 {
		t.Fatalf("status %#x sense %x", w.Result.Status, s)
	}
	stillServes(t, in)
}

func TestFramingErrorsDropOnlyTheConnection(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		keys []login.KV
		raw  func(in *iscsitest.Initiator) []byte
	}{
		{"huge DataSegmentLength", nil, func(*iscsitest.Initiator) []byte { return rawBHS(byte(pdu.OpNOPOut)|0x40, 1<<24-1) }},
		{"truncated header", nil, func(*iscsitest.Initiator) []byte { return rawBHS(byte(pdu.OpNOPOut), 0)[:20] }},
		{"bad header digest", []login.KV{kv("HeaderDigest", "CRC32C")}, func(*iscsitest.Initiator) []byte {
			b := rawBHS(byte(pdu.OpNOPOut)|0x40, 0)
			return binary.LittleEndian.AppendUint32(b, pdu.CRC32C(b)+1)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := e.login(tc.keys...)
			if err := in.SendRaw(tc.raw(in)); err != nil {
				t.Fatal(err)
			}
			if tc.name == "truncated header" {
				in.Conn.(interface{ CloseWrite() error }).CloseWrite()
			}
			if _, err := in.ExpectClosed(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "cleanup", func() bool { return e.sessionCount() == 0 && e.connCount() == 0 })
			stillServes(t, e.login())
		})
	}
}

func TestDataDigestErrorRejected(t *testing.T) {
	e := newEnv(t)
	in := e.login(kv("DataDigest", "CRC32C"))
	data := []byte("ping data!!!")
	b := rawBHS(byte(pdu.OpNOPOut)|0x40, len(data))
	binary.BigEndian.PutUint32(b[20:], iscsitest.ReservedTag)
	b = append(b, data...)
	b = binary.LittleEndian.AppendUint32(b, pdu.CRC32C(data)^0xdead)
	if err := in.SendRaw(b); err != nil {
		t.Fatal(err)
	}
	expectReject(t, in, pdu.RejectDataDigest)
	stillServes(t, in)
}
