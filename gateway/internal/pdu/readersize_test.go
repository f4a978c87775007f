package pdu

import (
	"bytes"
	"testing"
)

// A reader grown after reading ahead keeps the bytes it read ahead.
func TestReaderSetBufferSize(t *testing.T) {
	var stream bytes.Buffer
	for i := range 3 {
		p := (&NOPOut{Immediate: true, ITT: uint32(i), TTT: 0xffffffff, Data: bytes.Repeat([]byte{byte(i)}, 100)}).Encode()
		if err := NewWriter(&stream).WriteBatch([]*PDU{p}); err != nil {
			t.Fatal(err)
		}
	}
	r := NewReaderSize(&stream, 4096) // reads the whole stream ahead
	first, err := r.Read()
	if err != nil || first.BHS.ITT() != 0 {
		t.Fatalf("first PDU: %v", err)
	}
	r.SetBufferSize(64 << 10)
	if r.br.Size() != 64<<10 {
		t.Fatalf("buffer size %d", r.br.Size())
	}
	for i := 1; i < 3; i++ {
		p, err := r.Read()
		if err != nil {
			t.Fatalf("PDU %d: %v", i, err)
		}
		if p.BHS.ITT() != uint32(i) || !bytes.Equal(p.Data, bytes.Repeat([]byte{byte(i)}, 100)) {
			t.Fatalf("PDU %d garbled", i)
		}
		p.Release()
	}
}
