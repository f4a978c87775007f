package pdu

import "hash/crc32"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CRC32C is the iSCSI digest (hash/crc32 Castagnoli, hardware accelerated)
// over the given slices in order. On the wire it is sent least significant
// byte first (RFC 7143 section 13.1 and its test vectors).
func CRC32C(b ...[]byte) uint32 {
	var crc uint32
	for _, s := range b {
		crc = crc32.Update(crc, castagnoli, s)
	}
	return crc
}

// zeroPad supplies padding bytes; it is only ever read.
var zeroPad [4]byte

// padLen is the number of bytes needed to round n up to a multiple of 4.
func padLen(n int) int { return (4 - n&3) & 3 }
