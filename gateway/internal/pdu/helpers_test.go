package pdu

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

// unhex decodes a hex string with spaces, newlines and "|" separators
// allowed, so expected encodings can be laid out field by field.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	s = strings.NewReplacer(" ", "", "\n", "", "\t", "", "|", "").Replace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

// wire returns the bytes WriteBatch produces for p with digests off.
func wire(t testing.TB, p *PDU) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := NewWriter(&buf).WriteBatch([]*PDU{p}); err != nil {
		t.Fatalf("WriteBatch: %v", err)
	}
	return buf.Bytes()
}

// pduFrom builds a PDU from raw BHS bytes plus AHS and data.
func pduFrom(t testing.TB, bhs, ahs, data []byte) *PDU {
	t.Helper()
	if len(bhs) != BHSLen {
		t.Fatalf("test BHS is %d bytes", len(bhs))
	}
	p := &PDU{AHS: ahs, Data: data}
	copy(p.BHS[:], bhs)
	return p
}
