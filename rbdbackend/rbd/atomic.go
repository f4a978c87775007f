//go:build pacific

package rbd

/*
#include "shim.h"
*/
import "C"

import "github.com/rbdgw/rbdgw/rbdbackend"

var _ rbdbackend.AtomicWriter = (*Image)(nil)

// AtomicWriteLimits reports the writes that are atomic on this image: those
// that stay within one run of bytes stored contiguously in one RADOS
// object, i.e. at most that long and starting at a multiple of it. Such a
// write is one OSD operation (with a copy-up from the parent, when there
// is one, in the same operation), and an OSD applies an operation as one
// transaction: a read of the object, also one operation, sees all of it
// or none, and a failure never leaves half of it. The client-side cache,
// which could split or reorder writes, is disabled (Connect). On an image
// that cannot be queried the limits are zero: no write is promised atomic.
func (i *Image) AtomicWriteLimits() (maxBytes, alignmentBytes, granularityBytes int64) {
	i.mu.RLock()
	defer i.mu.RUnlock()
	h, err := i.use("atomic write limits")
	if err != nil {
		return 0, 0, 0
	}
	run, rc := h.contiguousObjectBytes()
	if rc < 0 || run <= 0 {
		return 0, 0, 0
	}
	return run, run, 0
}

// contiguousObjectBytes is the length of the runs of image bytes that one
// object stores contiguously: the object size, or the stripe unit when the
// image is striped over several objects ("fancy" striping, stripe count
// above 1), whose consecutive stripe units go to different objects.
func (h *handle) contiguousObjectBytes() (int64, int) {
	var unit, count C.uint64_t
	if rc := C.rbd_get_stripe_unit(h.img, &unit); rc < 0 {
		return 0, int(rc)
	}
	if rc := C.rbd_get_stripe_count(h.img, &count); rc < 0 {
		return 0, int(rc)
	}
	if count > 1 {
		return int64(unit), 0
	}
	return h.objectSize()
}
