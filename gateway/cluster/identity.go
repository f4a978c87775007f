package cluster

import (
	"crypto/rand"
	"encoding/hex"
)

// newDiskIdentity draws a disk's unit serial (32 hex digits) and WWN (16
// hex digits, the vendor specific identifier extension of its NAA-6
// designator). They are random rather than derived from the name so that a
// disk deleted and re-created under the same name is a new device to
// initiators, and stored so that every gateway reports the same identity.
func newDiskIdentity() (serial, wwn string) {
	var b [24]byte
	rand.Read(b[:]) // never returns an error (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b[8:]), hex.EncodeToString(b[:8])
}
