//go:build pacific

package rbd

import (
	"bytes"
	"fmt"
	"syscall"

	"github.com/rbdgw/rbdgw/rbdbackend"
)

// nativeCompareSector is the largest request librbd 16.2 compares
// atomically: it rejects (EINVAL) a compare-and-write that is longer than
// 512 bytes or crosses a 512-byte boundary.
const nativeCompareSector = 512

func nativeCompareAndWrite(off, n int64) bool {
	return n <= nativeCompareSector && off/nativeCompareSector == (off+n-1)/nativeCompareSector
}

// CompareAndWrite writes data at off only if the image holds cmp there.
// On a miscompare it returns the offset of the first differing byte
// (relative to off) and an error matching rbdbackend.ErrMiscompare.
//
// Atomicity:
//   - Within one 512-byte sector librbd sends the compare and the write to
//     the OSD as one operation (cmpext + write): atomic against every
//     client of the cluster.
//   - Larger or unaligned requests are read, compared and written here.
//     That is atomic only because (1) this client holds the image's
//     exclusive lock as a managed lock (AcquireLock), so no other client
//     can write the image: librbd refuses to hand the lock over, others'
//     writes fail with EROFS, and the only way to take the lock is to
//     break it, which blocklists this client first so that a write of ours
//     issued after the break is rejected by the OSDs; and (2) the range is
//     locked exclusively against this process's own writes, which hold
//     shared range locks. Without the lock this returns ErrLockLost (path
//     in transition); on an image without the exclusive-lock feature it
//     returns ErrUnsupported.
func (i *Image) CompareAndWrite(off int64, cmp, data []byte) (int64, error) {
	if len(cmp) != len(data) {
		return 0, fmt.Errorf("rbd: compare and write %s: %d-byte compare buffer, %d-byte data: %w", i.spec, len(cmp), len(data), ErrInvalid)
	}
	n := int64(len(data))
	i.mu.RLock()
	defer i.mu.RUnlock()
	h, err := i.begin("compare and write", off, n)
	if err != nil || n == 0 {
		return 0, err
	}
	if nativeCompareAndWrite(off, n) {
		return i.compareAndWriteNative(h, off, cmp, data)
	}
	return i.compareAndWriteLocked(h, off, cmp, data)
}

func (i *Image) compareAndWriteNative(h *handle, off int64, cmp, data []byte) (int64, error) {
	n := int64(len(data))
	held := i.ranges.Lock(off, n, false)
	defer i.ranges.Unlock(held)
	res := h.do(request{op: opCompareAndWrite, off: uint64(off), n: uint64(n), buf: data, cmp: cmp})
	if res.ret == -int64(syscall.EILSEQ) {
		return mismatchOffset(res.mismatch, off, n, i.objectSize.Load()), opError("compare and write", i.spec, int(res.ret), ctxIO)
	}
	if res.ret < 0 {
		return 0, i.fail("compare and write", h, int(res.ret))
	}
	return 0, nil
}

// mismatchOffset turns librbd's miscompare offset into one relative to
// the request at off. librbd 16.2 adds the OSD's offset, which is relative
// to the request, to the image offset of the start of the object instead
// of to off (ObjectCompareAndWriteRequest::filter_write_result passes it to
// Striper::extent_to_file as an object offset). Images here are not
// "fancy"-striped, so the object starts at off rounded down to the object
// size. An offset outside the request (a librbd that reports it
// differently) is clamped to 0 rather than trusted.
func mismatchOffset(reported uint64, off, n, objectSize int64) int64 {
	objectStart := off
	if objectSize > 0 {
		objectStart -= off % objectSize
	}
	rel := int64(reported) - objectStart
	if rel < 0 || rel >= n {
		return 0
	}
	return rel
}

func (i *Image) compareAndWriteLocked(h *handle, off int64, cmp, data []byte) (int64, error) {
	n := int64(len(data))
	if !i.hasFeature(featureExclusiveLock) {
		return 0, fmt.Errorf("rbd: compare and write %s: %d bytes at %d need the exclusive-lock feature: %w", i.spec, n, off, rbdbackend.ErrUnsupported)
	}
	held := i.ranges.Lock(off, n, true)
	defer i.ranges.Unlock(held)
	// Checked under the range lock: a lock loss before this point is seen
	// here, one after it makes the write below fail.
	if i.lockGen.Load() != h.gen {
		return 0, fmt.Errorf("rbd: compare and write %s: %d bytes at %d need this gateway to hold the exclusive lock: %w", i.spec, n, off, rbdbackend.ErrLockLost)
	}
	cur := make([]byte, n)
	if _, err := i.run("compare and write (read)", h, request{op: opRead, off: uint64(off), n: uint64(n), buf: cur}, n); err != nil {
		return 0, err
	}
	if d := firstDifference(cur, cmp); d >= 0 {
		return d, fmt.Errorf("rbd: compare and write %s: byte %d differs: %w", i.spec, off+d, rbdbackend.ErrMiscompare)
	}
	if _, err := i.run("compare and write (write)", h, request{op: opWrite, off: uint64(off), n: uint64(n), buf: data}, -1); err != nil {
		return 0, err
	}
	return 0, nil
}

// firstDifference is the index of the first byte where a and b differ,
// or -1 (len(a) == len(b)).
func firstDifference(a, b []byte) int64 {
	if bytes.Equal(a, b) {
		return -1
	}
	for k := range a {
		if a[k] != b[k] {
			return int64(k)
		}
	}
	return -1
}
