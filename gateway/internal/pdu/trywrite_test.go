package pdu

import (
	"bytes"
	"testing"
)

// shortWriter takes at most room bytes per TryWritev (a full socket) and
// everything through Writev.
type shortWriter struct {
	bytes.Buffer
	room  int
	tries int
}

func (s *shortWriter) Writev(bufs [][]byte) (int64, error) {
	var n int64
	for _, b := range bufs {
		s.Buffer.Write(b)
		n += int64(len(b))
	}
	return n, nil
}

func (s *shortWriter) TryWritev(bufs [][]byte) (int64, error) {
	s.tries++
	var n int64
	for _, b := range bufs {
		take := min(len(b), s.room-int(n))
		s.Buffer.Write(b[:take])
		n += int64(take)
		if take < len(b) {
			break
		}
	}
	return n, nil
}

// A batch the stream takes only in part is finished by Finish, byte for
// byte what WriteBatch writes; until then no other batch may be tried, and
// WriteBatch finishes it first.
func TestTryWriteBatch(t *testing.T) {
	var whole shortWriter
	ref := NewWriter(&whole)
	ref.SetHeaderDigest(true)
	ref.SetDataDigest(true)
	if err := ref.WriteBatch(samplePDUs(t)); err != nil {
		t.Fatal(err)
	}
	want := whole.Bytes()
	for _, room := range []int{0, 1, 47, 48, 100, len(want) - 1, len(want), len(want) + 10} {
		s := &shortWriter{room: room}
		w := NewWriter(s)
		w.SetHeaderDigest(true)
		w.SetDataDigest(true)
		done, err := w.TryWriteBatch(samplePDUs(t))
		if err != nil {
			t.Fatalf("room %d: %v", room, err)
		}
		if done != (room >= len(want)) || (w.rest != nil) == done {
			t.Fatalf("room %d: done %v, unfinished %v", room, done, (w.rest != nil))
		}
		if !done {
			if _, err := w.TryWriteBatch(samplePDUs(t)); err != errUnfinished {
				t.Fatalf("room %d: a second try before Finish: %v", room, err)
			}
			if err := w.Finish(); err != nil {
				t.Fatal(err)
			}
		}
		if (w.rest != nil) || !bytes.Equal(s.Bytes(), want) {
			t.Fatalf("room %d: wrote %d bytes, want the %d of WriteBatch", room, s.Len(), len(want))
		}
		// WriteBatch after an unfinished try writes the rest first.
		s2 := &shortWriter{room: room}
		w2 := NewWriter(s2)
		w2.SetHeaderDigest(true)
		w2.SetDataDigest(true)
		if _, err := w2.TryWriteBatch(samplePDUs(t)); err != nil {
			t.Fatal(err)
		}
		if err := w2.WriteBatch(samplePDUs(t)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(s2.Bytes(), append(append([]byte(nil), want...), want...)) {
			t.Fatalf("room %d: try then WriteBatch wrote %d bytes, want %d", room, s2.Len(), 2*len(want))
		}
	}
	if NewWriter(&bytes.Buffer{}).CanTryWrite() {
		t.Error("a bytes.Buffer cannot be written without waiting")
	}
	if _, err := NewWriter(&bytes.Buffer{}).TryWriteBatch(samplePDUs(t)); err != errCannotTry {
		t.Errorf("TryWriteBatch on a plain writer: %v", err)
	}
}
