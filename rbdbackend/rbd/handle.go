//go:build pacific

package rbd

/*
#include <errno.h>
#include "shim.h"
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

// handle is one open librbd image (and its ioctx) on one rados client.
// Its methods return raw librbd results (negative errno on failure); the
// callers map them to errors in one place (errors.go).
type handle struct {
	ioctx C.rados_ioctx_t
	img   C.rbd_image_t
	// gen is the generation of the rados client the image was opened on;
	// once the Cluster marks that generation fenced, no I/O may use it.
	gen      uint64
	watch    C.uint64_t
	watching bool
}

// openHandle opens pool/name on the rados client cluster and registers
// header-update notifications for img.
func openHandle(cluster C.rados_t, gen uint64, pool, name string, readOnly bool, updates cgo.Handle) (*handle, int) {
	cpool, cname := C.CString(pool), C.CString(name)
	defer C.free(unsafe.Pointer(cpool))
	defer C.free(unsafe.Pointer(cname))
	h := &handle{gen: gen}
	ro := C.int(0)
	if readOnly {
		ro = 1
	}
	if rc := C.rbdgw_open(cluster, cpool, cname, ro, &h.ioctx, &h.img); rc < 0 {
		return nil, int(rc)
	}
	if rc := C.rbdgw_update_watch(h.img, &h.watch, C.uintptr_t(updates)); rc < 0 {
		C.rbdgw_close(h.ioctx, h.img)
		return nil, int(rc)
	}
	h.watching = true
	return h, 0
}

// close stops header notifications (no callback runs after it returns)
// and closes the image. librbd releases the exclusive lock if held.
func (h *handle) close() int {
	if h.watching {
		C.rbd_update_unwatch(h.img, h.watch)
		h.watching = false
	}
	return int(C.rbdgw_close(h.ioctx, h.img))
}

func (h *handle) do(r request) result { return do(h.img, r) }

func (h *handle) size() (int64, int) {
	var size C.uint64_t
	if rc := C.rbd_get_size(h.img, &size); rc < 0 {
		return 0, int(rc)
	}
	return int64(size), 0
}

func (h *handle) features() (uint64, int) {
	var f C.uint64_t
	if rc := C.rbd_get_features(h.img, &f); rc < 0 {
		return 0, int(rc)
	}
	return uint64(f), 0
}

// fastDiff reports whether extent queries are answered from a valid
// object map (fast-diff enabled and not flagged invalid).
func (h *handle) fastDiff() (bool, int) {
	f, rc := h.features()
	if rc < 0 || f&C.RBD_FEATURE_FAST_DIFF == 0 {
		return false, rc
	}
	var flags C.uint64_t
	if rc := C.rbd_get_flags(h.img, &flags); rc < 0 {
		return false, int(rc)
	}
	return flags&(C.RBD_FLAG_OBJECT_MAP_INVALID|C.RBD_FLAG_FAST_DIFF_INVALID) == 0, 0
}

func (h *handle) objectSize() (int64, int) {
	var info C.rbd_image_info_t
	if rc := C.rbd_stat(h.img, &info, C.size_t(unsafe.Sizeof(info))); rc < 0 {
		return 0, int(rc)
	}
	return int64(info.obj_size), 0
}

func (h *handle) resize(size int64) int {
	return int(C.rbd_resize2(h.img, C.uint64_t(size), false, nil, nil))
}

func (h *handle) lockAcquire() int {
	return int(C.rbd_lock_acquire(h.img, C.RBD_LOCK_MODE_EXCLUSIVE))
}

func (h *handle) lockRelease() int { return int(C.rbd_lock_release(h.img)) }

func (h *handle) isLockOwner() (bool, int) {
	var owner C.int
	if rc := C.rbd_is_exclusive_lock_owner(h.img, &owner); rc < 0 {
		return false, int(rc)
	}
	return owner != 0, 0
}

// lockOwners returns the client addresses holding the exclusive lock.
func (h *handle) lockOwners() ([]string, int) {
	var mode C.rbd_lock_mode_t
	n := C.size_t(4)
	for {
		owners := make([]*C.char, n)
		got := n
		rc := C.rbd_lock_get_owners(h.img, &mode, &owners[0], &got)
		switch {
		case rc == -C.ERANGE && got > n:
			n = got
			continue
		case rc == -C.ENOENT:
			return nil, 0 // nobody holds the lock
		case rc < 0:
			return nil, int(rc)
		}
		out := make([]string, got)
		for i := range out {
			out[i] = C.GoString(owners[i])
		}
		C.rbd_lock_get_owners_cleanup(&owners[0], got)
		return out, 0
	}
}

func (h *handle) lockBreak(owner string) int {
	cowner := C.CString(owner)
	defer C.free(unsafe.Pointer(cowner))
	return int(C.rbd_lock_break(h.img, C.RBD_LOCK_MODE_EXCLUSIVE, cowner))
}

// extent is an allocated byte range reported by extents.
type extent struct{ off, n int64 }

// extents returns the allocated extents in [off, off+n), merged and in
// order, at most max of them; more is true when the scan stopped early.
func (h *handle) extents(off, n int64, max int) (list []extent, more bool, rc int) {
	offs := make([]C.uint64_t, max)
	lens := make([]C.uint64_t, max)
	var got C.int
	r := C.rbdgw_extents(h.img, C.uint64_t(off), C.uint64_t(n), &offs[0], &lens[0], C.int(max), &got)
	if r < 0 {
		return nil, false, int(r)
	}
	list = make([]extent, got)
	for i := range list {
		list[i] = extent{int64(offs[i]), int64(lens[i])}
	}
	return list, r == 1, 0
}
