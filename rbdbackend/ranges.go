package rbdbackend

import (
	"bytes"
	"errors"
	"fmt"
)

// checkIORange returns ErrOutOfRange unless [off, off+n) lies within an
// image of size bytes. A zero-length range at the very end is valid.
func checkIORange(op string, off, n, size int64) error {
	if off < 0 || n < 0 || off > size || n > size-off {
		return fmt.Errorf("rbdbackend: %s of %d bytes at %d on a %d-byte image: %w", op, n, off, size, ErrOutOfRange)
	}
	return nil
}

// errBadPattern is returned by WriteSame when the pattern cannot tile the
// range; the SCSI layer never sends such a request.
var errBadPattern = errors.New("rbdbackend: write same pattern must be non-empty and tile the range exactly")

func checkPattern(length int64, pattern []byte) error {
	if len(pattern) == 0 || length%int64(len(pattern)) != 0 {
		return fmt.Errorf("%w (pattern %d bytes, range %d bytes)", errBadPattern, len(pattern), length)
	}
	return nil
}

// fillPattern fills dst with pattern repeated, starting phase bytes into it.
func fillPattern(dst, pattern []byte, phase int) {
	k := copy(dst, pattern[phase:])
	k += copy(dst[k:], pattern[:phase])
	// dst[:k] is now a whole number of periods; doubling keeps it so.
	for k < len(dst) {
		k += copy(dst[k:], dst[:k])
	}
}

// firstDifference returns the index of the first byte where a and b
// differ, or -1 when they are equal (len(a) == len(b)).
func firstDifference(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

func checkCompareLengths(cmp, data []byte) error {
	if len(cmp) != len(data) {
		return fmt.Errorf("rbdbackend: compare and write: compare buffer is %d bytes, data is %d", len(cmp), len(data))
	}
	return nil
}
