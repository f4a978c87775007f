//go:build pacific

package rbd

import (
	"fmt"

	"github.com/rbdgw/rbdgw/rbdbackend"
)

// slowExtentObjects bounds one Extent scan on images without fast-diff.
const slowExtentObjects = 256

// Extent reports whether the byte at off is allocated and how long the run
// of that state is (at most maxLength). Allocation is tracked per RADOS
// object (diff-iterate with whole_object, answered from the object map when
// fast-diff is enabled): an object holding any data counts as allocated
// over its whole length, so "allocated" may include zeroes, while
// "unallocated" always reads as zeroes.
func (i *Image) Extent(off, maxLength int64) (bool, int64, error) {
	i.mu.RLock()
	defer i.mu.RUnlock()
	h, err := i.use("extent")
	if err != nil {
		return false, 0, err
	}
	size := i.size.Load()
	if off < 0 || maxLength < 0 || off > size {
		return false, 0, fmt.Errorf("rbd: extent at %d (max %d) on %s (%d bytes): %w", off, maxLength, i.spec, size, rbdbackend.ErrOutOfRange)
	}
	end := off + min(maxLength, size-off)
	if end == off {
		return false, 0, nil
	}
	// Without a valid object map librbd asks the OSDs object by object:
	// bound the scan and report a shorter run (the caller asks again).
	fast, rc := h.fastDiff()
	if rc < 0 {
		return false, 0, i.fail("extent", h, rc)
	}
	if objSize := i.objectSize.Load(); !fast && objSize > 0 {
		end = min(end, off+slowExtentObjects*objSize)
	}
	// Two extents are enough: the one at or after off, and proof that it
	// ended (the shim merges adjacent objects into one extent).
	list, _, rc := h.extents(off, end-off, 2)
	if rc < 0 {
		return false, 0, i.fail("extent", h, rc)
	}
	for _, e := range list {
		eEnd := e.off + e.n
		if eEnd <= off {
			continue
		}
		if e.off > off {
			return false, min(e.off, end) - off, nil
		}
		return true, min(eEnd, end) - off, nil
	}
	return false, end - off, nil
}
