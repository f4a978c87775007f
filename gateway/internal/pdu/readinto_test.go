package pdu

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// TestReadDataInto reads every sample PDU with ReadHeader and then
// ReadDataInto a caller's buffer exactly DataSegmentLength long (no room for
// padding), with and without digests: the data must match and the stream
// stay in step.
func TestReadDataInto(t *testing.T) {
	for _, digests := range []struct{ header, data bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		var buf bytes.Buffer
		w := NewWriter(&buf)
		w.SetHeaderDigest(digests.header)
		w.SetDataDigest(digests.data)
		in := samplePDUs(t)
		if err := w.WriteBatch(in); err != nil {
			t.Fatal(err)
		}
		r := NewReader(&buf)
		r.SetHeaderDigest(digests.header)
		r.SetDataDigest(digests.data)
		r.SetMaxDataSegmentLength(1 << 20)
		for i, want := range in {
			var got PDU
			if err := r.ReadHeader(&got); err != nil {
				t.Fatalf("digests %+v pdu %d: %v", digests, i, err)
			}
			dst := make([]byte, got.BHS.DataSegmentLength())
			if err := r.ReadDataInto(&got, dst); err != nil {
				t.Fatalf("digests %+v pdu %d: %v", digests, i, err)
			}
			if got.BHS != want.BHS || !bytes.Equal(got.AHS, want.AHS) || !bytes.Equal(dst, want.Data) ||
				len(dst) > 0 && &got.Data[0] != &dst[0] {
				t.Errorf("digests %+v pdu %d (%v) differs", digests, i, want.BHS.Opcode())
			}
		}
		if err := r.ReadHeader(&PDU{}); err != io.EOF {
			t.Errorf("after the last PDU: got %v, want io.EOF", err)
		}
	}
}

func TestReadDataIntoErrors(t *testing.T) {
	data := []byte("seven b") // 7 bytes: one byte of padding
	stream := func(digest uint32) []byte {
		var buf bytes.Buffer
		w := NewWriter(&buf)
		w.SetDataDigest(true)
		if err := w.WriteBatch([]*PDU{(&DataOut{Final: true, ITT: 1, Data: data}).Encode()}); err != nil {
			t.Fatal(err)
		}
		b := buf.Bytes()
		if digest != 0 {
			binary.LittleEndian.PutUint32(b[len(b)-4:], digest)
		}
		// A second PDU shows whether the stream stayed in step.
		return append(b, wire(t, (&NOPOut{ITT: 2, TTT: 0xffffffff}).Encode())...)
	}
	for _, tc := range []struct {
		name     string
		digest   uint32 // 0: correct
		dstLen   int
		wantErr  func(error) bool
		inStep   bool
		wantData bool
	}{
		{"good", 0, len(data), func(err error) bool { return err == nil }, true, true},
		{"damaged data", 0xdeadbeef, len(data), func(err error) bool {
			var dde *DataDigestError
			return errors.As(err, &dde)
		}, true, true},
		{"destination too short", 0, len(data) - 1, func(err error) bool { return errors.Is(err, errDestinationLength) }, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(stream(tc.digest)))
			r.SetDataDigest(true)
			var p PDU
			if err := r.ReadHeader(&p); err != nil {
				t.Fatal(err)
			}
			dst := make([]byte, tc.dstLen)
			err := r.ReadDataInto(&p, dst)
			if !tc.wantErr(err) {
				t.Fatalf("unexpected error %v", err)
			}
			if tc.wantData && !bytes.Equal(dst, data) {
				t.Fatalf("data %q", dst)
			}
			if !tc.inStep {
				return
			}
			next, err := r.Read()
			if err != nil || next.BHS.Opcode() != OpNOPOut || next.BHS.ITT() != 2 {
				t.Fatalf("stream out of step: %v", err)
			}
		})
	}
}

func TestReadHeaderLimit(t *testing.T) {
	r := NewReader(bytes.NewReader(wire(t, (&DataOut{ITT: 1, Data: make([]byte, 9000)}).Encode())))
	var pe *ProtocolError
	if err := r.ReadHeader(&PDU{}); !errors.As(err, &pe) {
		t.Fatalf("DataSegmentLength above the limit: %v", err)
	}
}

// FuzzReadDataInto reads the same arbitrary stream with Read and with
// ReadHeader plus ReadDataInto: both must see the same PDUs, data and
// errors, so the split read never desynchronises the stream.
func FuzzReadDataInto(f *testing.F) {
	seedStreams(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		setup := func(r *Reader) *Reader {
			r.SetHeaderDigest(in[0]&1 != 0)
			r.SetDataDigest(in[0]&2 != 0)
			r.SetMaxDataSegmentLength(int(in[0]>>2) * 1024)
			return r
		}
		whole := setup(NewReader(bytes.NewReader(in[1:])))
		split := setup(NewReader(bytes.NewReader(in[1:])))
		for {
			want, werr := whole.Read()
			var dde *DataDigestError
			if errors.As(werr, &dde) {
				want = dde.PDU
			}
			var got PDU
			gerr := split.ReadHeader(&got)
			if gerr == nil {
				gerr = split.ReadDataInto(&got, make([]byte, got.BHS.DataSegmentLength()))
			}
			if (werr == nil) != (gerr == nil) || werr != nil && !sameError(werr, gerr) {
				t.Fatalf("Read: %v; ReadHeader+ReadDataInto: %v", werr, gerr)
			}
			if want != nil && (want.BHS != got.BHS || !bytes.Equal(want.AHS, got.AHS) || !bytes.Equal(want.Data, got.Data)) {
				t.Fatal("the two ways read different PDUs")
			}
			if werr != nil && dde == nil {
				return
			}
			want.Release()
		}
	})
}

// sameError reports errors of the same kind.
func sameError(a, b error) bool {
	var dda, ddb *DataDigestError
	var pa, pb *ProtocolError
	switch {
	case errors.As(a, &dda):
		return errors.As(b, &ddb)
	case errors.As(a, &pa):
		return errors.As(b, &pb)
	}
	return errors.Is(b, a)
}
