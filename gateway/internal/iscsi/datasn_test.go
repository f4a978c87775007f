package iscsi

import (
	"testing"

	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
	"github.com/rbdgw/rbdgw/gateway/internal/pdu"
)

// TestUnsolicitedDataSNErrors sends the unsolicited Data-Out of a WRITE
// (InitialR2T=No, ImmediateData=No, one block per PDU) with DataSNs out of
// sequence: each command must end with ABORTED COMMAND 47h/05h, and the
// writes that follow on the same session, and on a new one, must succeed.
func TestUnsolicitedDataSNErrors(t *testing.T) {
	e := newEnv(t, withTuning(func(o *Options) { o.Tuning.MaxRecvDataSegmentLength = 512 }))
	for _, tc := range []struct {
		name   string
		blocks int
		datasn func(i int) uint32
	}{
		{"repeated DataSN 0", 2, func(int) uint32 { return 0 }},
		{"DataSN 27", 1, func(int) uint32 { return 27 }},
		{"DataSN -1", 1, func(int) uint32 { return 0xffffffff }},
		{"reversed DataSN", 2, func(i int) uint32 { return uint32(1 - i) }},
		{"gap", 3, func(i int) uint32 { return uint32(i + i/2) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := e.login(kv("InitialR2T", "No"), kv("ImmediateData", "No"))
			for range 3 {
				size := tc.blocks * 512
				data := pattern(size, 0xa6)
				itt := in.NextITT()
				cmd := &pdu.SCSICommand{Final: false, Write: true, Attr: 1, ITT: itt, EDTL: uint32(size),
					CmdSN: in.CmdSN, ExpStatSN: in.ExpStatSN, CDB: cdbWrite10(100, uint16(tc.blocks))}
				in.CmdSN++
				out := []*pdu.PDU{cmd.Encode()}
				for i := range tc.blocks {
					out = append(out, (&pdu.DataOut{Final: i == tc.blocks-1, ITT: itt, TTT: iscsitest.ReservedTag,
						DataSN: tc.datasn(i), BufferOffset: uint32(i * 512), Data: data[i*512 : (i+1)*512]}).Encode())
				}
				if err := in.Send(out...); err != nil {
					t.Fatal(err)
				}
				p, err := in.RecvOpcode(pdu.OpSCSIResponse)
				if err != nil {
					t.Fatal(err)
				}
				r, err := pdu.ParseSCSIResponse(p)
				if err != nil {
					t.Fatal(err)
				}
				s := r.Sense
				if r.ITT != itt || r.Status != 0x02 || len(s) < 14 || s[2]&0x0f != senseAbortedCommand || s[12] != 0x47 || s[13] != 0x05 {
					t.Fatalf("ITT %#x status %#x sense %x, want ABORTED COMMAND 47h/05h for ITT %#x", r.ITT, r.Status, s, itt)
				}
				// A correct write right behind it succeeds.
				write10(t, in, 200, pattern(2*512, 0x5a))
			}
			if len(in.Unexpected) != 0 {
				t.Fatalf("%d unexpected PDUs", len(in.Unexpected))
			}
		})
	}
	in := e.login()
	write10(t, in, 100, pattern(4096, 0x11))
}
