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
	// rest is what TryWriteBatch could not write yet (the tail of vecs),
	// left for Finish.
	rest [][]byte
}

// VectorWriter is a stream that writes several buffers with one system
// call itself; WriteBatch uses it instead of net.Buffers.
type VectorWriter interface {
	Writev(bufs [][]byte) (int64, error)
}

// TryVectorWriter is a VectorWriter that can also write without waiting:
// TryWritev writes what the stream takes now and returns how many bytes
// went out, fewer than asked (with a nil error) when it is full.
type TryVectorWriter interface {
	VectorWriter
	TryWritev(bufs [][]byte) (int64, error)
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
// or a VectorWriter), after what an earlier TryWriteBatch left (Finish).
// Headers, digests and padding are laid out back to back in one scratch
// buffer, so a batch costs about two iovecs per PDU with data; data slices
// are never copied. The TotalAHSLength and DataSegmentLength sent are taken
// from the AHS and Data slices; the PDUs themselves are not modified. On error nothing is written unless the write itself
// failed part way.
func (w *Writer) WriteBatch(pdus []*PDU) error {
	if err := w.Finish(); err != nil {
		return err
	}
	vecs, err := w.frame(pdus)
	if err != nil {
		return err
	}
	err = w.writeVecs(vecs)
	w.dropVecs()
	return err
}

// writeVecs writes bufs in order, waiting for the stream: one writev on a
// net.Conn or a VectorWriter.
func (w *Writer) writeVecs(bufs [][]byte) error {
	if vw, ok := w.w.(VectorWriter); ok {
		_, err := vw.Writev(bufs)
		return err
	}
	w.bufs = bufs
	_, err := w.bufs.WriteTo(w.w)
	w.bufs = nil
	return err
}

// CanTryWrite reports whether the stream can be written without waiting
// (TryWriteBatch).
func (w *Writer) CanTryWrite() bool {
	_, ok := w.w.(TryVectorWriter)
	return ok
}

var (
	errCannotTry  = errors.New("iscsi: the stream cannot be written without waiting")
	errUnfinished = errors.New("iscsi: a batch is still unfinished")
)

// TryWriteBatch frames the PDUs as WriteBatch does and writes what the
// stream takes now, without waiting for it; the stream must be a
// TryVectorWriter (CanTryWrite). It reports whether everything went out.
// If not, the rest stays in the Writer, referring to the PDUs' data,
// until Finish writes it; no batch may be tried before that.
func (w *Writer) TryWriteBatch(pdus []*PDU) (bool, error) {
	tw, ok := w.w.(TryVectorWriter)
	if !ok {
		return false, errCannotTry
	}
	if w.rest != nil {
		return false, errUnfinished
	}
	vecs, err := w.frame(pdus)
	if err != nil {
		return false, err
	}
	total := 0
	for _, v := range vecs {
		total += len(v)
	}
	n, err := tw.TryWritev(vecs)
	if err != nil || int(n) == total {
		w.dropVecs()
		return err == nil, err
	}
	w.rest = skipBytes(vecs, int(n))
	return false, nil
}

// Finish writes what TryWriteBatch left, waiting for the stream as long
// as it takes.
func (w *Writer) Finish() error {
	if w.rest == nil {
		return nil
	}
	err := w.writeVecs(w.rest)
	w.rest = nil
	w.dropVecs()
	return err
}

// skipBytes returns bufs without its first n bytes; it reslices bufs and
// its first remaining buffer in place.
func skipBytes(bufs [][]byte, n int) [][]byte {
	for len(bufs) > 0 && n >= len(bufs[0]) {
		n -= len(bufs[0])
		bufs = bufs[1:]
	}
	if n > 0 {
		bufs[0] = bufs[0][n:]
	}
	return bufs
}

// dropVecs drops the references to the payloads of the batch written, so
// the caller's buffers can be reused and collected.
func (w *Writer) dropVecs() {
	clear(w.vecs[:cap(w.vecs)])
	w.vecs = w.vecs[:0]
}

// frame lays the PDUs out for one vectored write: it returns the iovecs,
// kept in w.vecs, over w.scratch and the PDUs' data.
func (w *Writer) frame(pdus []*PDU) ([][]byte, error) {
	size := 0
	for _, p := range pdus {
		if len(p.AHS)%4 != 0 || len(p.AHS) > MaxAHSLength {
			return nil, errAHSLength
		}
		if len(p.Data) > MaxDataSegmentLength {
			return nil, errDataLength
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
	w.vecs = vecs
	return vecs, nil
}
