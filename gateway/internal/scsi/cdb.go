package scsi

import "encoding/binary"

// Byte-order helpers: every SCSI field is big-endian.

func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
func be24(b []byte) uint32 { return uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]) }
func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }
func be64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

func put16(b []byte, v uint16) { binary.BigEndian.PutUint16(b, v) }
func put24(b []byte, v uint32) { b[0], b[1], b[2] = byte(v>>16), byte(v>>8), byte(v) }
func put32(b []byte, v uint32) { binary.BigEndian.PutUint32(b, v) }
func put64(b []byte, v uint64) { binary.BigEndian.PutUint64(b, v) }

// cut returns data limited to the allocation length of the CDB.
func cut(data []byte, alloc uint32) []byte {
	if uint64(len(data)) > uint64(alloc) {
		return data[:alloc]
	}
	return data
}

// clampU32 saturates v to 32 bits (capacity and count fields).
func clampU32(v uint64) uint32 {
	if v > 0xffffffff {
		return 0xffffffff
	}
	return uint32(v)
}

// blockRange is the LBA range of a media command and where its fields sit
// in the CDB (for the sense-key specific field pointer).
type blockRange struct {
	lba    uint64
	blocks uint64
	// lenField is the first CDB byte of the TRANSFER LENGTH field.
	lenField int
}

// rangeOf decodes the LBA and transfer length of the media commands by CDB
// layout (SBC-3 4.2.2): 6-byte (21-bit LBA, 256 blocks for zero), 10-byte
// (32-bit LBA, 16-bit length), 12-byte (32/32) and 16-byte (64/32).
func rangeOf(cdb []byte) blockRange {
	switch cdb[0] {
	case opRead6, opWrite6:
		n := uint64(cdb[4])
		if n == 0 {
			n = 256
		}
		return blockRange{lba: uint64(cdb[1]&0x1f)<<16 | uint64(be16(cdb[2:4])), blocks: n, lenField: 4}
	case opRead12, opWrite12, opWriteVerify12, opVerify12:
		return blockRange{lba: uint64(be32(cdb[2:6])), blocks: uint64(be32(cdb[6:10])), lenField: 6}
	case opCompareAndWrite:
		return blockRange{lba: be64(cdb[2:10]), blocks: uint64(cdb[13]), lenField: 13}
	case opWriteAtomic16:
		return blockRange{lba: be64(cdb[2:10]), blocks: uint64(be16(cdb[12:14])), lenField: 12}
	}
	if len(cdb) >= 16 && cdb[0]>>5 == 4 { // group 4: 16-byte CDBs
		return blockRange{lba: be64(cdb[2:10]), blocks: uint64(be32(cdb[10:14])), lenField: 10}
	}
	return blockRange{lba: uint64(be32(cdb[2:6])), blocks: uint64(be16(cdb[7:9])), lenField: 7}
}

// check verifies that the range lies within capacity blocks. A zero-length
// range may start at capacity (one past the last LBA) but not beyond.
func (r blockRange) check(capacity uint64) *senseError {
	if r.lba > capacity || r.blocks > capacity-r.lba {
		return errLBAOutOfRange()
	}
	return nil
}
