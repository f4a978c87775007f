package scsi

import (
	"bytes"
	"testing"
)

func cdbReadDefect10(flags byte, alloc uint16) []byte {
	c := make([]byte, 10)
	c[0], c[2] = opReadDefectData10, flags
	put16(c[7:9], alloc)
	return c
}

func cdbReadDefect12(flags byte, index, alloc uint32) []byte {
	c := make([]byte, 12)
	c[0], c[1] = opReadDefectData12, flags
	put32(c[2:6], index)
	put32(c[6:10], alloc)
	return c
}

func TestReadDefectData(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name string
		cdb  []byte
		want []byte
	}{
		{"10 header only", cdbReadDefect10(0x00, 32), []byte{0, 0x00, 0, 0}},
		{"10 both lists, long block", cdbReadDefect10(0x18|0x3, 32), []byte{0, 0x1b, 0, 0}},
		{"10 plist, physical sector", cdbReadDefect10(0x10|0x5, 32), []byte{0, 0x15, 0, 0}},
		{"10 glist, short block", cdbReadDefect10(0x08, 32), []byte{0, 0x08, 0, 0}},
		{"10 allocation length cuts", cdbReadDefect10(0x18, 2), []byte{0, 0x18}},
		{"10 allocation length zero", cdbReadDefect10(0x18, 0), []byte{}},
		{"12 header only", cdbReadDefect12(0x00, 0, 32), []byte{0, 0, 0, 0, 0, 0, 0, 0}},
		{"12 both lists, bytes from index", cdbReadDefect12(0x18|0x4, 0, 32), []byte{0, 0x1c, 0, 0, 0, 0, 0, 0}},
		{"12 index beyond the empty list", cdbReadDefect12(0x08|0x1, 7, 32), []byte{0, 0x09, 0, 0, 0, 0, 0, 0}},
		{"12 allocation length cuts", cdbReadDefect12(0x10, 0, 5), []byte{0, 0x10, 0, 0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := e.good(tc.cdb, nil)
			if !bytes.Equal(got, tc.want) {
				t.Errorf("data % x, want % x", got, tc.want)
			}
		})
	}
}

func TestReadDefectDataFormats(t *testing.T) {
	e := newEnv(t)
	// Reserved format: INVALID FIELD IN CDB at the most significant bit of
	// the DEFECT LIST FORMAT field.
	for _, cdb := range [][]byte{cdbReadDefect10(0x18|0x7, 32), cdbReadDefect12(0x18|0x7, 0, 32)} {
		r := e.expectSense(cdb, nil, senseIllegalRequest, ascInvalidFieldInCDB)
		p := parseSense(t, r.Sense)
		wantField := 2
		if cdb[0] == opReadDefectData12 {
			wantField = 1
		}
		if p.field != wantField || p.bit != 2 {
			t.Errorf("CDB % x: field pointer %d bit %d", cdb, p.field, p.bit)
		}
	}
	// Vendor specific format: the list comes in the default format with
	// RECOVERED ERROR, DEFECT LIST NOT FOUND, and the data is transferred.
	r := e.expectSense(cdbReadDefect10(0x10|0x6, 32), nil, senseRecoveredError, ascDefectListNotFound)
	if want := []byte{0, 0x10 | defectFormatLongBlock, 0, 0}; !bytes.Equal(r.Data, want) {
		t.Errorf("vendor format data % x, want % x", r.Data, want)
	}
	// Only the header requested: no list in another format was returned.
	if got := e.good(cdbReadDefect12(0x6, 0, 32), nil); got[1] != defectFormatLongBlock {
		t.Errorf("header only, vendor format: byte 1 %#x", got[1])
	}
}
