package pdu

import "encoding/binary"

// AHS types (RFC 7143 section 11.2.2).
const (
	AHSExtendedCDB    = 1
	AHSBidiReadLength = 2
)

// MaxAHSLength is the largest AHS: TotalAHSLength is one byte of 4-byte words.
const MaxAHSLength = 255 * 4

// ahsFields holds what a SCSI Command may carry in its AHS.
type ahsFields struct {
	extCDB      []byte
	bidiReadLen uint32
	hasBidi     bool
}

// parseAHS walks the AHS list. Each entry is AHSLength(2) AHSType(1) followed
// by AHSLength bytes (the first of which is type-specific), padded to 4.
func parseAHS(ahs []byte) (ahsFields, error) {
	var f ahsFields
	var seenCDB bool
	for len(ahs) > 0 {
		if len(ahs) < 4 {
			return f, protoErr("truncated AHS header")
		}
		n := int(binary.BigEndian.Uint16(ahs[0:2]))
		typ := ahs[2] & 0x3f
		total := 3 + n + padLen(3+n)
		if total > len(ahs) {
			return f, protoErr("AHS entry longer than TotalAHSLength")
		}
		body := ahs[3 : 3+n]
		switch typ {
		case AHSExtendedCDB:
			if seenCDB || n < 2 {
				return f, protoErr("bad extended CDB AHS")
			}
			seenCDB = true
			f.extCDB = body[1:]
		case AHSBidiReadLength:
			if f.hasBidi || n != 5 {
				return f, protoErr("bad bidirectional read length AHS")
			}
			f.hasBidi = true
			f.bidiReadLen = binary.BigEndian.Uint32(body[1:5])
		default:
			return f, protoErr("unsupported AHS type")
		}
		ahs = ahs[total:]
	}
	return f, nil
}

// appendExtendedCDBAHS appends an extended CDB AHS carrying ext (the CDB bytes
// beyond the first 16).
func appendExtendedCDBAHS(dst, ext []byte) []byte {
	n := len(ext) + 1
	dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	dst = append(dst, AHSExtendedCDB, 0)
	dst = append(dst, ext...)
	return append(dst, zeroPad[:padLen(3+n)]...)
}

// appendBidiReadLengthAHS appends an expected bidirectional read length AHS.
func appendBidiReadLengthAHS(dst []byte, length uint32) []byte {
	dst = binary.BigEndian.AppendUint16(dst, 5)
	dst = append(dst, AHSBidiReadLength, 0)
	return binary.BigEndian.AppendUint32(dst, length)
}
