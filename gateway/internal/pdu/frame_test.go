package pdu

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"reflect"
	"testing"
)

// Test vectors from RFC 3720 appendix B.4, as the bytes sent on the wire.
func TestCRC32CVectors(t *testing.T) {
	inc := make([]byte, 32)
	dec := make([]byte, 32)
	for i := range 32 {
		inc[i] = byte(i)
		dec[i] = byte(31 - i)
	}
	readCmd := unhex(t, `01 c0 00 00 00 00 00 00 00 00 00 00 00 00 00 00 14 00 00 00 00 00 04 00
	                     00 00 00 14 00 00 00 18 28 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00`)
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"32 zero bytes", make([]byte, 32), "aa 36 91 8a"},
		{"32 0xff bytes", bytes.Repeat([]byte{0xff}, 32), "43 ab a8 62"},
		{"incrementing", inc, "4e 79 dd 46"},
		{"decrementing", dec, "5c db 3f 11"},
		{"iSCSI read command", readCmd, "56 3a 96 d9"},
	}
	for _, tc := range tests {
		got := binary.LittleEndian.AppendUint32(nil, CRC32C(tc.in))
		if want := unhex(t, tc.want); !bytes.Equal(got, want) {
			t.Errorf("%s: got %x want %x", tc.name, got, want)
		}
		// Split input must give the same digest.
		if CRC32C(tc.in[:5], nil, tc.in[5:]) != CRC32C(tc.in) {
			t.Errorf("%s: split digest differs", tc.name)
		}
	}
}

// samplePDUs covers no data, odd-length data (padding), AHS and large data.
func samplePDUs(t testing.TB) []*PDU {
	cdb := make([]byte, 24)
	for i := range cdb {
		cdb[i] = byte(i + 1)
	}
	big := make([]byte, 70001)
	for i := range big {
		big[i] = byte(i * 31)
	}
	return []*PDU{
		(&NOPIn{ITT: 1, TTT: 0xffffffff, StatSN: 2}).Encode(),
		(&DataIn{Final: true, ITT: 2, Data: []byte("x")}).Encode(),
		(&DataIn{ITT: 3, Data: []byte("four")}).Encode(),
		(&SCSICommand{Final: true, Read: true, Write: true, ITT: 4, CDB: cdb, BidiReadLength: 77,
			Data: []byte("immediate")}).Encode(),
		(&R2T{ITT: 5, DesiredLength: 512}).Encode(),
		(&DataOut{Final: true, ITT: 6, Data: big}).Encode(),
		(&Reject{Reason: RejectProtocolError, Header: make([]byte, 48)}).Encode(),
	}
}

func TestRoundTrip(t *testing.T) {
	for _, digests := range []struct{ header, data bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		var buf bytes.Buffer
		w := NewWriter(&buf)
		w.SetHeaderDigest(digests.header)
		w.SetDataDigest(digests.data)
		in := samplePDUs(t)
		if err := w.WriteBatch(in[:3]); err != nil {
			t.Fatal(err)
		}
		if err := w.WriteBatch(in[3:]); err != nil {
			t.Fatal(err)
		}
		r := NewReader(&buf)
		r.SetHeaderDigest(digests.header)
		r.SetDataDigest(digests.data)
		r.SetMaxDataSegmentLength(1 << 20)
		for i, want := range in {
			got, err := r.Read()
			if err != nil {
				t.Fatalf("digests %+v pdu %d: %v", digests, i, err)
			}
			if got.BHS != want.BHS || !bytes.Equal(got.AHS, want.AHS) || !bytes.Equal(got.Data, want.Data) {
				t.Errorf("digests %+v pdu %d (%v) differs", digests, i, want.BHS.Opcode())
			}
			got.Release()
			got.Release() // twice is safe
		}
		if _, err := r.Read(); err != io.EOF {
			t.Errorf("after the last PDU: got %v, want io.EOF", err)
		}
	}
}

func TestRoundTripThroughParsers(t *testing.T) {
	cmd := &SCSICommand{Final: true, Read: true, Attr: 2, LUN: EncodeLUN(9), ITT: 11, EDTL: 4096,
		CmdSN: 12, ExpStatSN: 13, CDB: bytes.Repeat([]byte{0x5a}, 40), BidiReadLength: 9}
	var buf bytes.Buffer
	if err := NewWriter(&buf).WriteBatch([]*PDU{cmd.Encode()}); err != nil {
		t.Fatal(err)
	}
	p, err := NewReader(&buf).Read()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseSCSICommand(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, cmd) {
		t.Errorf("got %+v\nwant %+v", got, cmd)
	}
}

// With both digests on, the layout is BHS, CRC(BHS), data, pad, CRC(data+pad),
// each digest least significant byte first.
func TestDigestPlacement(t *testing.T) {
	p := (&DataIn{ITT: 1, Data: []byte("abcdef")}).Encode()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.SetHeaderDigest(true)
	w.SetDataDigest(true)
	if err := w.WriteBatch([]*PDU{p}); err != nil {
		t.Fatal(err)
	}
	got := buf.Bytes()
	want := append([]byte(nil), p.BHS[:]...)
	want = binary.LittleEndian.AppendUint32(want, CRC32C(p.BHS[:]))
	want = append(want, "abcdef\x00\x00"...)
	want = binary.LittleEndian.AppendUint32(want, CRC32C([]byte("abcdef\x00\x00")))
	if !bytes.Equal(got, want) {
		t.Errorf("got  %x\nwant %x", got, want)
	}
}

func encodeWithDigests(t *testing.T, pdus ...*PDU) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.SetHeaderDigest(true)
	w.SetDataDigest(true)
	if err := w.WriteBatch(pdus); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func digestReader(b []byte) *Reader {
	r := NewReader(bytes.NewReader(b))
	r.SetHeaderDigest(true)
	r.SetDataDigest(true)
	return r
}

func TestHeaderDigestError(t *testing.T) {
	stream := encodeWithDigests(t, (&NOPIn{ITT: 1, Data: []byte("ping")}).Encode())
	for _, off := range []int{0, 17, 47, 48, 51} { // BHS bytes and digest bytes
		bad := append([]byte(nil), stream...)
		bad[off] ^= 0x01
		if _, err := digestReader(bad).Read(); !errors.Is(err, ErrHeaderDigest) {
			t.Errorf("flip at %d: got %v, want ErrHeaderDigest", off, err)
		}
	}
}

func TestDataDigestErrorKeepsStreamInSync(t *testing.T) {
	first := (&DataOut{ITT: 1, Data: []byte("hello")}).Encode()
	second := (&NOPOut{ITT: 2}).Encode()
	stream := encodeWithDigests(t, first, second)
	stream[48+4+2] ^= 0x80 // inside the first data segment
	r := digestReader(stream)
	p, err := r.Read()
	var dde *DataDigestError
	if !errors.As(err, &dde) || p != nil {
		t.Fatalf("got %v, %v; want nil and *DataDigestError", p, err)
	}
	if dde.PDU.BHS != first.BHS {
		t.Error("DataDigestError does not carry the damaged PDU's header")
	}
	dde.PDU.Release()
	next, err := r.Read()
	if err != nil || next.BHS != second.BHS {
		t.Fatalf("next PDU: %v", err)
	}
	// A damaged pad byte is also a data digest error: the digest covers it.
	stream = encodeWithDigests(t, first)
	stream[48+4+7] = 0xee
	if _, err := digestReader(stream).Read(); !errors.As(err, &dde) {
		t.Errorf("pad damage: got %v", err)
	}
}

func TestTruncatedInput(t *testing.T) {
	for _, digests := range []bool{false, true} {
		var buf bytes.Buffer
		w := NewWriter(&buf)
		w.SetHeaderDigest(digests)
		w.SetDataDigest(digests)
		cmd := &SCSICommand{ITT: 1, CDB: make([]byte, 20), Data: []byte("abc")}
		if err := w.WriteBatch([]*PDU{cmd.Encode()}); err != nil {
			t.Fatal(err)
		}
		full := buf.Bytes()
		for n := range len(full) {
			r := NewReader(bytes.NewReader(full[:n]))
			r.SetHeaderDigest(digests)
			r.SetDataDigest(digests)
			_, err := r.Read()
			want := io.ErrUnexpectedEOF
			if n == 0 {
				want = io.EOF
			}
			if err != want {
				t.Errorf("digests=%v prefix %d: got %v, want %v", digests, n, err, want)
			}
		}
	}
}

// An oversize DataSegmentLength fails from the header alone: the reader never
// waits for (or allocates) the data.
func TestOversizeDataSegment(t *testing.T) {
	var bhs BHS
	bhs[0] = byte(OpDataOut)
	bhs.SetDataSegmentLength(MaxDataSegmentLength)
	r := NewReader(bytes.NewReader(bhs[:]))
	_, err := r.Read()
	var pe *ProtocolError
	if !errors.As(err, &pe) {
		t.Fatalf("got %v, want *ProtocolError", err)
	}

	bhs.SetDataSegmentLength(8193)
	r = NewReader(bytes.NewReader(bhs[:]))
	if _, err := r.Read(); !errors.As(err, &pe) {
		t.Errorf("8193 over the 8192 default: got %v", err)
	}
	r = NewReader(bytes.NewReader(append(bhs[:], make([]byte, 8196)...)))
	r.SetMaxDataSegmentLength(8193)
	if _, err := r.Read(); err != nil {
		t.Errorf("8193 at limit 8193: %v", err)
	}
}

func TestSetMaxDataSegmentLengthClamps(t *testing.T) {
	r := NewReader(nil)
	r.SetMaxDataSegmentLength(1 << 30)
	if r.maxData != MaxDataSegmentLength {
		t.Errorf("got %d", r.maxData)
	}
	r.SetMaxDataSegmentLength(-5)
	if r.maxData != 0 {
		t.Errorf("got %d", r.maxData)
	}
}

func TestWriterRejectsBadLengths(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	good := (&NOPIn{}).Encode()
	if err := w.WriteBatch([]*PDU{good, {AHS: make([]byte, 6)}}); err == nil {
		t.Error("AHS of 6 bytes accepted")
	}
	if err := w.WriteBatch([]*PDU{{AHS: make([]byte, MaxAHSLength+4)}}); err == nil {
		t.Error("AHS above 1020 bytes accepted")
	}
	if err := w.WriteBatch([]*PDU{{Data: make([]byte, MaxDataSegmentLength+1)}}); err == nil {
		t.Error("data above 2^24-1 accepted")
	}
	if buf.Len() != 0 {
		t.Errorf("%d bytes written for rejected batches", buf.Len())
	}
}

func TestWriterFixesLengthFields(t *testing.T) {
	p := &PDU{AHS: make([]byte, 8), Data: []byte("abcde")}
	p.BHS[0] = byte(OpNOPIn)
	p.BHS[4] = 9
	p.BHS.SetDataSegmentLength(1000)
	got := wire(t, p)
	if got[4] != 2 || got[7] != 5 || len(got) != 48+8+8 {
		t.Errorf("lengths not taken from the slices: % x", got[:8])
	}
}

type countingWriter struct {
	writes int
	bytes.Buffer
}

func (c *countingWriter) Write(b []byte) (int, error) {
	c.writes++
	return c.Buffer.Write(b)
}

// Headers, pads and digests between two payloads share one buffer, so a
// batch needs about two buffers per PDU that carries data.
func TestWriterCoalescesHeaders(t *testing.T) {
	var cw countingWriter
	w := NewWriter(&cw)
	w.SetHeaderDigest(true)
	w.SetDataDigest(true)
	pdus := []*PDU{
		(&DataIn{Data: []byte("a")}).Encode(),
		(&DataIn{Data: []byte("b")}).Encode(),
		(&R2T{}).Encode(),
		(&NOPIn{}).Encode(),
	}
	if err := w.WriteBatch(pdus); err != nil {
		t.Fatal(err)
	}
	// hdr0 | "a" | pad0+dd0+hdr1 | "b" | pad1+dd1+hdr2+hdr3
	if cw.writes != 5 {
		t.Errorf("%d buffers, want 5", cw.writes)
	}
}

// Over TCP, net.Buffers turns the batch into writev; check the far end
// reads every PDU back intact.
func TestWriteBatchOverTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skipf("no loopback: %v", err)
	}
	defer ln.Close()
	in := samplePDUs(t)
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		w := NewWriter(c)
		w.SetHeaderDigest(true)
		w.SetDataDigest(true)
		done <- w.WriteBatch(in)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := NewReader(c)
	r.SetHeaderDigest(true)
	r.SetDataDigest(true)
	r.SetMaxDataSegmentLength(1 << 20)
	for i, want := range in {
		got, err := r.Read()
		if err != nil {
			t.Fatalf("pdu %d: %v", i, err)
		}
		if got.BHS != want.BHS || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("pdu %d differs", i)
		}
		got.Release()
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestPoolSizeClasses(t *testing.T) {
	for _, n := range []int{1, 512, 513, 4096, 65536, 65537, 1 << 24} {
		bp := getBuffer(n)
		if len(*bp) != n || cap(*bp) < n || cap(*bp) > 2*n+512 {
			t.Errorf("getBuffer(%d): len %d cap %d", n, len(*bp), cap(*bp))
		}
		putBuffer(bp)
	}
	foreign := make([]byte, 1000)
	putBuffer(&foreign) // a non-class capacity is dropped, not pooled
	if bp := getBuffer(1000); cap(*bp) != 1024 {
		t.Errorf("pool handed out a foreign buffer of cap %d", cap(*bp))
	}
}

func TestPDUString(t *testing.T) {
	p := (&DataIn{ITT: 0x1f, Data: []byte("secret")}).Encode()
	if got, want := p.String(), "Data-In itt=0x1f ahs=0 dsl=6"; got != want {
		t.Errorf("got %q want %q", got, want)
	}
	if got := (&DataDigestError{}).Error(); got != "iscsi: data digest error" {
		t.Errorf("got %q", got)
	}
}
