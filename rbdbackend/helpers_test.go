package rbdbackend

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
)

const mib = 1 << 20

// randomBytes returns n bytes that depend only on seed.
func randomBytes(seed uint64, n int) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}

func mustWrite(t testing.TB, img Image, p []byte, off int64) {
	t.Helper()
	n, err := img.WriteAt(p, off)
	if err != nil || n != len(p) {
		t.Fatalf("WriteAt(%d bytes, %d) = %d, %v", len(p), off, n, err)
	}
}

func mustRead(t testing.TB, img Image, off, n int64) []byte {
	t.Helper()
	p := make([]byte, n)
	got, err := img.ReadAt(p, off)
	if err != nil || got != len(p) {
		t.Fatalf("ReadAt(%d bytes, %d) = %d, %v", n, off, got, err)
	}
	return p
}

// checkBytes fails unless img holds want at off.
func checkBytes(t testing.TB, img Image, off int64, want []byte) {
	t.Helper()
	got := mustRead(t, img, off, int64(len(want)))
	if d := firstDifference(got, want); d >= 0 {
		t.Fatalf("at %d: byte %d is %#x, want %#x", off, off+int64(d), got[d], want[d])
	}
}

// checkExactExtents checks that an image tracking allocation at 1 MiB or
// finer reports exactly the MiB written, and nothing once it is discarded.
// The image must be at least 4 MiB and empty.
func checkExactExtents(t *testing.T, img interface {
	Image
	Discarder
	AllocationReporter
}) {
	t.Helper()
	size := img.Size()
	check := func(off, maxLength int64, wantAllocated bool, wantN int64) {
		t.Helper()
		allocated, n, err := img.Extent(off, maxLength)
		if err != nil || allocated != wantAllocated || n != wantN {
			t.Fatalf("Extent(%d, %d) = %v, %d, %v; want %v, %d", off, maxLength, allocated, n, err, wantAllocated, wantN)
		}
	}
	const all = int64(1) << 62
	mustWrite(t, img, randomBytes(1, mib), mib)
	check(0, all, false, mib)
	check(mib, all, true, mib)
	check(mib+4096, 4096, true, 4096)
	check(2*mib, all, false, size-2*mib)
	if err := img.Discard(mib, mib); err != nil {
		t.Fatalf("Discard: %v", err)
	}
	check(0, all, false, size)
	check(size, 1, false, 0)
}

func TestCheckIORange(t *testing.T) {
	tests := []struct {
		off, n, size int64
		ok           bool
	}{
		{0, 0, 0, true},
		{0, 10, 10, true},
		{10, 0, 10, true},
		{9, 1, 10, true},
		{9, 2, 10, false},
		{11, 0, 10, false},
		{-1, 1, 10, false},
		{0, -1, 10, false},
		{1, 1<<63 - 1, 10, false}, // off+n overflows
	}
	for _, tc := range tests {
		err := checkIORange("read", tc.off, tc.n, tc.size)
		if tc.ok != (err == nil) || err != nil && !errors.Is(err, ErrOutOfRange) {
			t.Errorf("checkIORange(%d, %d, %d) = %v", tc.off, tc.n, tc.size, err)
		}
	}
}
