package pdu

import (
	"bufio"
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
	br           *bufio.Reader
	headerDigest bool
	dataDigest   bool
	maxData      int
	digest       [4]byte
}

// NewReader wraps r in a 64 KiB bufio.Reader. Digests start off and the data
// segment limit starts at DefaultMaxDataSegmentLength.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, readBufferSize), maxData: DefaultMaxDataSegmentLength}
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
	if _, err := io.ReadFull(r.br, p.BHS[:]); err != nil {
		return nil, err
	}
	if n := p.BHS.TotalAHSLength(); n > 0 {
		p.AHS = make([]byte, n)
		if err := r.readFull(p.AHS); err != nil {
			return nil, err
		}
	}
	if r.headerDigest {
		if err := r.readFull(r.digest[:]); err != nil {
			return nil, err
		}
		if binary.LittleEndian.Uint32(r.digest[:]) != CRC32C(p.BHS[:], p.AHS) {
			return nil, ErrHeaderDigest
		}
	}
	n := p.BHS.DataSegmentLength()
	if n == 0 {
		return p, nil
	}
	if n > r.maxData {
		return nil, protoErr("DataSegmentLength " + strconv.Itoa(n) +
			" exceeds MaxRecvDataSegmentLength " + strconv.Itoa(r.maxData))
	}
	padded := n + padLen(n)
	p.pooled = getBuffer(padded)
	buf := *p.pooled
	if err := r.readFull(buf); err != nil {
		p.Release()
		return nil, err
	}
	p.Data = buf[:n]
	if r.dataDigest {
		if err := r.readFull(r.digest[:]); err != nil {
			p.Release()
			return nil, err
		}
		if binary.LittleEndian.Uint32(r.digest[:]) != CRC32C(buf) {
			return nil, &DataDigestError{PDU: p}
		}
	}
	return p, nil
}

// readFull reads inside a PDU, where a clean EOF is still a truncation.
func (r *Reader) readFull(b []byte) error {
	_, err := io.ReadFull(r.br, b)
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
