package pdu

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strconv"
)

// DefaultMaxDataSegmentLength is the RFC 7143 default MaxRecvDataSegmentLength,
// which also bounds every Login PDU.
const DefaultMaxDataSegmentLength = 8192

const readBufferSize = 64 << 10

// Reader splits a byte stream into PDUs. It is not safe for concurrent use.
type Reader struct {
	src          io.Reader
	br           *bufio.Reader
	headerDigest bool
	dataDigest   bool
	maxData      int
	digest       [4]byte
	pad          [3]byte
}

// NewReader wraps r in a 64 KiB bufio.Reader. Digests start off and the data
// segment limit starts at DefaultMaxDataSegmentLength.
func NewReader(r io.Reader) *Reader {
	return NewReaderSize(r, readBufferSize)
}

// NewReaderSize is NewReader with a read buffer of size bytes (at least
// 16): a target reads a login through a small one, so that a connection
// that never sends anything costs little.
func NewReaderSize(r io.Reader, size int) *Reader {
	return &Reader{src: r, br: bufio.NewReaderSize(r, size), maxData: DefaultMaxDataSegmentLength}
}

// SetBufferSize enlarges the read buffer to size bytes, keeping what it
// has read ahead. A smaller size leaves it as it is.
func (r *Reader) SetBufferSize(size int) {
	if r.br.Size() >= size {
		return
	}
	src := r.src
	if n := r.br.Buffered(); n > 0 {
		ahead, _ := r.br.Peek(n)
		src = io.MultiReader(bytes.NewReader(bytes.Clone(ahead)), r.src)
	}
	r.br = bufio.NewReaderSize(src, size)
}

// SetHeaderDigest turns CRC32C header digest checking on or off.
func (r *Reader) SetHeaderDigest(on bool) { r.headerDigest = on }

// SetDataDigest turns CRC32C data digest checking on or off.
func (r *Reader) SetDataDigest(on bool) { r.dataDigest = on }

// SetMaxDataSegmentLength sets the largest DataSegmentLength accepted (the
// target's declared MaxRecvDataSegmentLength). Values outside 0..2^24-1 are
// clamped.
func (r *Reader) SetMaxDataSegmentLength(n int) {
	r.maxData = min(max(n, 0), MaxDataSegmentLength)
}

// Read returns the next PDU. Its Data comes from a pooled buffer: call
// Release when done with it. Errors:
//   - io.EOF at a clean PDU boundary, io.ErrUnexpectedEOF inside a PDU, or the
//     underlying read error;
//   - ErrHeaderDigest: drop the connection;
//   - *DataDigestError: the PDU (in the error) framed correctly but its data
//     is damaged; Read returns a nil PDU and the stream stays usable;
//   - *ProtocolError (DataSegmentLength above the limit): the stream cannot
//     be resynchronised, drop the connection.
func (r *Reader) Read() (*PDU, error) {
	p := &PDU{}
	if err := r.ReadHeader(p); err != nil {
		return nil, err
	}
	if err := r.ReadData(p); err != nil {
		return nil, err
	}
	return p, nil
}

// ReadHeader reads the next PDU's BHS, AHS and header digest into p and
// leaves its data segment unread: ReadData or ReadDataInto must follow,
// so that a caller can choose where the data goes once it has seen the
// header. It fails like Read; DataSegmentLength is checked against the
// limit here, before any data is read.
func (r *Reader) ReadHeader(p *PDU) error {
	*p = PDU{}
	if _, err := io.ReadFull(r.br, p.BHS[:]); err != nil {
		return err
	}
	if n := p.BHS.TotalAHSLength(); n > 0 {
		p.AHS = make([]byte, n)
		if err := r.readFull(p.AHS); err != nil {
			return err
		}
	}
	if r.headerDigest {
		if err := r.readFull(r.digest[:]); err != nil {
			return err
		}
		if binary.LittleEndian.Uint32(r.digest[:]) != CRC32C(p.BHS[:], p.AHS) {
			return ErrHeaderDigest
		}
	}
	if n := p.BHS.DataSegmentLength(); n > r.maxData {
		return protoErr("DataSegmentLength " + strconv.Itoa(n) +
			" exceeds MaxRecvDataSegmentLength " + strconv.Itoa(r.maxData))
	}
	return nil
}

// ReadData reads the data segment of the PDU whose header ReadHeader just
// returned into a pooled buffer (release it with p.Release). It fails like
// Read; on a *DataDigestError the error holds p.
func (r *Reader) ReadData(p *PDU) error {
	n := p.BHS.DataSegmentLength()
	if n == 0 {
		return nil
	}
	p.pooled = getBuffer(n + padLen(n))
	if err := r.readData(p, *p.pooled); err != nil {
		if _, digest := err.(*DataDigestError); !digest {
			p.Release()
		}
		return err
	}
	return nil
}

// ReadDataInto reads the data segment of the PDU whose header ReadHeader
// just returned into dst, which must be exactly DataSegmentLength bytes
// long, so a payload lands where it is needed without a copy. Padding and
// the data digest are consumed and checked. p.Data is dst afterwards. It
// fails like Read; on a *DataDigestError dst holds the damaged data.
func (r *Reader) ReadDataInto(p *PDU, dst []byte) error {
	n := p.BHS.DataSegmentLength()
	if len(dst) != n {
		return errDestinationLength
	}
	if n == 0 {
		return nil
	}
	return r.readData(p, dst)
}

var errDestinationLength = errors.New("iscsi: destination does not match the DataSegmentLength")

// readData reads DataSegmentLength bytes into buf, the padding (into buf
// when it has room for it, else into scratch) and the digest.
func (r *Reader) readData(p *PDU, buf []byte) error {
	n := p.BHS.DataSegmentLength()
	pad := padLen(n)
	body := buf[:n]
	if len(buf) >= n+pad {
		body = buf[:n+pad]
	}
	if err := r.readFull(body); err != nil {
		return err
	}
	padBytes := body[n:]
	if len(body) == n && pad > 0 {
		padBytes = r.pad[:pad]
		if err := r.readFull(padBytes); err != nil {
			return err
		}
	}
	p.Data = buf[:n]
	if r.dataDigest {
		if err := r.readFull(r.digest[:]); err != nil {
			return err
		}
		if binary.LittleEndian.Uint32(r.digest[:]) != CRC32C(p.Data, padBytes) {
			return &DataDigestError{PDU: p}
		}
	}
	return nil
}

// readFull reads inside a PDU, where a clean EOF is still a truncation.
func (r *Reader) readFull(b []byte) error {
	_, err := io.ReadFull(r.br, b)
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// NextBuffered reports whether the whole next PDU has been read ahead, so
// that reading it will not wait for the network.
func (r *Reader) NextBuffered() bool {
	n := r.br.Buffered()
	if n < BHSLen {
		return false
	}
	b, _ := r.br.Peek(BHSLen)
	bhs := (*BHS)(b)
	size := BHSLen + bhs.TotalAHSLength()
	if r.headerDigest {
		size += 4
	}
	if d := bhs.DataSegmentLength(); d > 0 {
		size += d + padLen(d)
		if r.dataDigest {
			size += 4
		}
	}
	return n >= size
}
