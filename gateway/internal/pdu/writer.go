package pdu

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
)

// Writer frames PDUs onto a stream. It is not safe for concurrent use.
type Writer struct {
	w            io.Writer
	headerDigest bool
	dataDigest   bool
	scratch      []byte      // headers, digests and padding of the current batch
	vecs         [][]byte    // reused backing array for the iovecs
	bufs         net.Buffers // kept in the struct so WriteTo does not allocate
}

// VectorWriter is a stream that writes several buffers with one system
// call itself; WriteBatch uses it instead of net.Buffers.
type VectorWriter interface {
	Writev(bufs [][]byte) (int64, error)
}

// NewWriter returns a Writer on w. Digests start off.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// SetHeaderDigest turns the CRC32C header digest on or off.
func (w *Writer) SetHeaderDigest(on bool) { w.headerDigest = on }

// SetDataDigest turns the CRC32C data digest on or off.
func (w *Writer) SetDataDigest(on bool) { w.dataDigest = on }

var (
	errAHSLength  = errors.New("iscsi: AHS length not a multiple of 4 or above 1020 bytes")
	errDataLength = errors.New("iscsi: data segment above 2^24-1 bytes")
)

// WriteBatch writes the PDUs with one vectored write (writev on a net.Conn
// or a VectorWriter).
// Headers, digests and padding are laid out back to back in one scratch
// buffer, so a batch costs about two iovecs per PDU with data; data slices
// are never copied. The TotalAHSLength and DataSegmentLength sent are taken
// from the AHS and Data slices; the PDUs themselves are not modified. On error nothing is written unless the write itself
// failed part way.
func (w *Writer) WriteBatch(pdus []*PDU) error {
	size := 0
	for _, p := range pdus {
		if len(p.AHS)%4 != 0 || len(p.AHS) > MaxAHSLength {
			return errAHSLength
		}
		if len(p.Data) > MaxDataSegmentLength {
			return errDataLength
		}
		size += BHSLen + len(p.AHS) + 4 + 3 + 4
	}
	if cap(w.scratch) < size {
		w.scratch = make([]byte, 0, size)
	}
	// scratch never grows past size below, so earlier slices of it stay valid.
	s := w.scratch[:0]
	vecs := w.vecs[:0]
	start := 0
	for _, p := range pdus {
		h := len(s)
		s = append(s, p.BHS[:]...)
		hdr := (*BHS)(s[h : h+BHSLen])
		hdr.setTotalAHSLength(len(p.AHS))
		hdr.SetDataSegmentLength(len(p.Data))
		s = append(s, p.AHS...)
		if w.headerDigest {
			s = binary.LittleEndian.AppendUint32(s, CRC32C(s[h:]))
		}
		if len(p.Data) == 0 {
			continue
		}
		vecs = append(vecs, s[start:], p.Data)
		start = len(s)
		pad := zeroPad[:padLen(len(p.Data))]
		s = append(s, pad...)
		if w.dataDigest {
			s = binary.LittleEndian.AppendUint32(s, CRC32C(p.Data, pad))
		}
	}
	if start < len(s) {
		vecs = append(vecs, s[start:])
	}
	w.scratch = s[:0]
	var err error
	if vw, ok := w.w.(VectorWriter); ok {
		_, err = vw.Writev(vecs)
	} else {
		w.bufs = vecs
		_, err = w.bufs.WriteTo(w.w)
	}
	// Drop references to the payloads so the caller's buffers can be reused
	// and collected.
	clear(vecs)
	w.vecs = vecs[:0]
	w.bufs = nil
	return err
}
