package pdu

import (
	"io"
	"testing"
)

// loopReader replays the same bytes forever.
type loopReader struct {
	b   []byte
	off int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], l.b[l.off:])
		n += c
		l.off = (l.off + c) % len(l.b)
	}
	return n, nil
}

func BenchmarkReadDataOut64K(b *testing.B) {
	for _, digests := range []bool{false, true} {
		name := "plain"
		if digests {
			name = "crc32c"
		}
		b.Run(name, func(b *testing.B) {
			payload := make([]byte, 64<<10)
			var stream []byte
			w := NewWriter(writerFunc(func(p []byte) (int, error) {
				stream = append(stream, p...)
				return len(p), nil
			}))
			w.SetHeaderDigest(digests)
			w.SetDataDigest(digests)
			if err := w.WriteBatch([]*PDU{(&DataOut{Final: true, ITT: 1, Data: payload}).Encode()}); err != nil {
				b.Fatal(err)
			}
			r := NewReader(&loopReader{b: stream})
			r.SetHeaderDigest(digests)
			r.SetDataDigest(digests)
			r.SetMaxDataSegmentLength(len(payload))
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for b.Loop() {
				p, err := r.Read()
				if err != nil {
					b.Fatal(err)
				}
				p.Release()
			}
		})
	}
}

func BenchmarkWriteDataIn(b *testing.B) {
	for _, digests := range []bool{false, true} {
		name := "plain"
		if digests {
			name = "crc32c"
		}
		b.Run(name, func(b *testing.B) {
			payload := make([]byte, 64<<10)
			w := NewWriter(io.Discard)
			w.SetHeaderDigest(digests)
			w.SetDataDigest(digests)
			batch := make([]*PDU, 1)
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for b.Loop() {
				batch[0] = (&DataIn{Final: true, HasStatus: true, ITT: 1, Data: payload}).Encode()
				if err := w.WriteBatch(batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
