package iscsi

import (
	"bytes"
	"testing"

	"github.com/rbdgw/rbdgw/gateway/internal/pdu"
)

func TestDataSinkClaim(t *testing.T) {
	const ttt, itt = 7, 9
	for _, tc := range []struct {
		name   string
		d      pdu.DataOut
		claims bool
	}{
		{"next expected", pdu.DataOut{ITT: itt, TTT: ttt, BufferOffset: 1024, Data: make([]byte, 512)}, true},
		{"whole window", pdu.DataOut{ITT: itt, TTT: ttt, BufferOffset: 1024, Data: make([]byte, 2048)}, true},
		{"unknown TTT", pdu.DataOut{ITT: itt, TTT: ttt + 1, BufferOffset: 1024, Data: make([]byte, 512)}, false},
		{"unsolicited", pdu.DataOut{ITT: itt, TTT: reservedTag, BufferOffset: 1024, Data: make([]byte, 512)}, false},
		{"other task", pdu.DataOut{ITT: itt + 1, TTT: ttt, BufferOffset: 1024, Data: make([]byte, 512)}, false},
		{"offset ahead", pdu.DataOut{ITT: itt, TTT: ttt, BufferOffset: 1536, Data: make([]byte, 512)}, false},
		{"offset behind", pdu.DataOut{ITT: itt, TTT: ttt, BufferOffset: 512, Data: make([]byte, 512)}, false},
		{"beyond the window", pdu.DataOut{ITT: itt, TTT: ttt, BufferOffset: 1024, Data: make([]byte, 2049)}, false},
		{"no data", pdu.DataOut{ITT: itt, TTT: ttt, BufferOffset: 1024}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s dataSink
			buf := make([]byte, 4096)
			s.open(ttt, itt, 1024, buf[1024:3072])
			p := tc.d.Encode()
			w, dst := s.claim(&p.BHS)
			if (w != nil) != tc.claims {
				t.Fatalf("claimed %v, want %v", w != nil, tc.claims)
			}
			if w == nil {
				return
			}
			if len(dst) != len(tc.d.Data) || &dst[0] != &buf[1024] {
				t.Fatal("payload not placed at its buffer offset")
			}
			if w2, _ := s.claim(&p.BHS); w2 != nil {
				t.Fatal("a window being filled was claimed twice")
			}
			if s.close(ttt) {
				t.Fatal("closing a window being filled reported its buffer reusable")
			}
			s.stored(w, len(dst), true)
		})
	}
}

func TestDataSinkSequence(t *testing.T) {
	var s dataSink
	buf := make([]byte, 2048)
	s.open(1, 2, 0, buf)
	for i, ok := range []bool{true, false, true} {
		off := uint32(i * 512)
		if i == 2 {
			off = 512 // the failed payload is expected again
		}
		p := (&pdu.DataOut{ITT: 2, TTT: 1, BufferOffset: off, Data: make([]byte, 512)}).Encode()
		w, _ := s.claim(&p.BHS)
		if w == nil {
			t.Fatalf("payload %d not claimed", i)
		}
		s.stored(w, 512, ok)
	}
	p := (&pdu.DataOut{ITT: 2, TTT: 1, BufferOffset: 1024, Data: make([]byte, 1024)}).Encode()
	if w, _ := s.claim(&p.BHS); w == nil {
		t.Fatal("the last part not claimed")
	}
	if s.close(1) {
		t.Fatal("window being filled closed as idle")
	}
	if !s.close(1) {
		t.Fatal("closing a closed window")
	}
}

// TestReadPDUPlacesPayloads reads a stream through conn.readPDU: a
// solicited payload lands in its window, a WRITE's immediate data in a
// command-sized buffer, and anything else in a pooled buffer.
func TestReadPDUPlacesPayloads(t *testing.T) {
	payload := pattern(1024, 3)
	var stream bytes.Buffer
	w := pdu.NewWriter(&stream)
	pdus := []*pdu.PDU{
		(&pdu.DataOut{ITT: 5, TTT: 6, BufferOffset: 4096, Data: payload}).Encode(),
		(&pdu.SCSICommand{Write: true, Final: true, ITT: 8, EDTL: 4096, CDB: cdbWrite10(0, 8), Data: payload}).Encode(),
		// More than immediateAdoptRatio times its immediate data: no
		// buffer for the whole transfer yet.
		(&pdu.SCSICommand{Write: true, Final: true, ITT: 10, EDTL: 8192, CDB: cdbWrite10(0, 16), Data: payload}).Encode(),
		(&pdu.DataOut{ITT: 5, TTT: 6, BufferOffset: 0, Data: payload}).Encode(), // not the next offset
		(&pdu.SCSICommand{Read: true, Final: true, ITT: 9, EDTL: 512, CDB: cdbRead10(0, 1)}).Encode(),
	}
	if err := w.WriteBatch(pdus); err != nil {
		t.Fatal(err)
	}
	c := &conn{rd: pdu.NewReader(&stream)}
	c.rd.SetMaxDataSegmentLength(1 << 20)
	dst := make([]byte, 8192)
	c.ffp.sink.open(6, 5, 4096, dst[4096:])

	in := c.readPDU()
	if in.err != nil || !bytes.Equal(dst[4096:5120], payload) || &in.p.Data[0] != &dst[4096] {
		t.Fatalf("solicited payload not read into its window: %v", in.err)
	}
	in = c.readPDU()
	if in.err != nil || in.buf == nil || len(*in.buf) != 4096 || &in.p.Data[0] != &(*in.buf)[0] ||
		!bytes.Equal(in.p.Data, payload) {
		t.Fatalf("immediate data not read into a command buffer: %v", in.err)
	}
	in.release()
	in = c.readPDU()
	if in.err != nil || in.buf != nil || !bytes.Equal(in.p.Data, payload) {
		t.Fatalf("immediate data of a quarter of the transfer or less: %v", in.err)
	}
	in.release()
	in = c.readPDU()
	if in.err != nil || in.buf != nil || !bytes.Equal(in.p.Data, payload) || &in.p.Data[0] == &dst[0] {
		t.Fatalf("out-of-order payload: %v", in.err)
	}
	in.release()
	in = c.readPDU()
	if in.err != nil || in.buf != nil || in.p.BHS.Opcode() != pdu.OpSCSICommand {
		t.Fatalf("READ command: %v", in.err)
	}
}
