package pdu

import (
	"encoding/binary"
	"fmt"
)

// BHSLen is the size of the Basic Header Segment.
const BHSLen = 48

// MaxDataSegmentLength is the largest value the 24-bit DataSegmentLength
// field can hold.
const MaxDataSegmentLength = 1<<24 - 1

// BHS is the Basic Header Segment, kept as raw bytes so that a Reject can
// echo it unchanged.
type BHS [BHSLen]byte

// Opcode returns the opcode (byte 0, low 6 bits).
func (b *BHS) Opcode() Opcode { return Opcode(b[0] & 0x3f) }

// Immediate reports the I bit (byte 0, 0x40).
func (b *BHS) Immediate() bool { return b[0]&0x40 != 0 }

// Final reports the F bit (byte 1, 0x80).
func (b *BHS) Final() bool { return b[1]&0x80 != 0 }

// TotalAHSLength returns the AHS length in bytes (byte 4 counts 4-byte words).
func (b *BHS) TotalAHSLength() int { return int(b[4]) * 4 }

// DataSegmentLength returns the data segment length without padding.
func (b *BHS) DataSegmentLength() int {
	return int(b[5])<<16 | int(b[6])<<8 | int(b[7])
}

// ITT returns the Initiator Task Tag (bytes 16..19).
func (b *BHS) ITT() uint32 { return binary.BigEndian.Uint32(b[16:20]) }

// SetDataSegmentLength stores n (which must fit in 24 bits) in bytes 5..7.
func (b *BHS) SetDataSegmentLength(n int) {
	b[5] = byte(n >> 16)
	b[6] = byte(n >> 8)
	b[7] = byte(n)
}

// setTotalAHSLength stores an AHS length in bytes (a multiple of 4).
func (b *BHS) setTotalAHSLength(n int) { b[4] = byte(n / 4) }

func (b *BHS) u32(off int) uint32 { return binary.BigEndian.Uint32(b[off : off+4]) }
func (b *BHS) u16(off int) uint16 { return binary.BigEndian.Uint16(b[off : off+2]) }
func (b *BHS) u64(off int) uint64 { return binary.BigEndian.Uint64(b[off : off+8]) }

func (b *BHS) put32(off int, v uint32) { binary.BigEndian.PutUint32(b[off:off+4], v) }
func (b *BHS) put16(off int, v uint16) { binary.BigEndian.PutUint16(b[off:off+2], v) }
func (b *BHS) put64(off int, v uint64) { binary.BigEndian.PutUint64(b[off:off+8], v) }

// PDU is one PDU as read from or written to the wire.
type PDU struct {
	BHS  BHS
	AHS  []byte // raw AHS bytes (TotalAHSLength)
	Data []byte // data segment without padding

	pooled *[]byte // buffer backing Data when it came from the pool
}

// Release returns Data to the buffer pool when it came from Reader.Read.
// Data must not be used afterwards. Safe to call twice and on PDUs whose
// Data did not come from the pool.
func (p *PDU) Release() {
	if p == nil {
		return
	}
	if p.pooled != nil {
		putBuffer(p.pooled)
		p.pooled = nil
	}
	p.Data = nil
}

// newPDU starts an outgoing PDU with the opcode and the fixed byte-1 bits.
func newPDU(op Opcode, byte1 uint8, data []byte) *PDU {
	p := &PDU{}
	initPDU(p, op, byte1, data)
	return p
}

// initPDU is newPDU into a PDU the caller holds; whatever p held is
// overwritten.
func initPDU(p *PDU, op Opcode, byte1 uint8, data []byte) {
	*p = PDU{Data: data}
	p.BHS[0] = byte(op)
	p.BHS[1] = byte1
	p.BHS.SetDataSegmentLength(len(data))
}

func flag(on bool, bit uint8) uint8 {
	if on {
		return bit
	}
	return 0
}

// String is a one-line summary for PDU traces; it never includes data.
func (p *PDU) String() string {
	return fmt.Sprintf("%v itt=%#x ahs=%d dsl=%d", p.BHS.Opcode(), p.BHS.ITT(),
		p.BHS.TotalAHSLength(), p.BHS.DataSegmentLength())
}
