package pdu

import (
	"bytes"
	"testing"
)

// NextBuffered is true exactly when the whole next PDU, digests and
// padding included, has been read ahead.
func TestNextBuffered(t *testing.T) {
	for _, digests := range []struct{ header, data bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		var stream bytes.Buffer
		w := NewWriter(&stream)
		w.SetHeaderDigest(digests.header)
		w.SetDataDigest(digests.data)
		var ends []int
		for _, p := range samplePDUs(t) {
			if err := w.WriteBatch([]*PDU{p}); err != nil {
				t.Fatal(err)
			}
			ends = append(ends, stream.Len())
		}
		for i := 1; i < len(ends); i++ {
			for _, cut := range []int{0, 1} {
				r := NewReaderSize(bytes.NewReader(stream.Bytes()[:ends[i]-cut]), 4<<20)
				r.SetHeaderDigest(digests.header)
				r.SetDataDigest(digests.data)
				r.SetMaxDataSegmentLength(1 << 20)
				for j := 0; j < i; j++ {
					p, err := r.Read()
					if err != nil {
						t.Fatalf("digests %+v pdu %d: %v", digests, j, err)
					}
					p.Release()
				}
				if got, want := r.NextBuffered(), cut == 0; got != want {
					t.Errorf("digests %+v before pdu %d, %d bytes short: NextBuffered %v, want %v",
						digests, i, cut, got, want)
				}
			}
		}
	}
}
