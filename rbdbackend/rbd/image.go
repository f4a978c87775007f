//go:build pacific

package rbd

import (
	"fmt"
	"runtime/cgo"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/ceph/go-ceph/rados"
	gorbd "github.com/ceph/go-ceph/rbd"

	"github.com/rbdgw/rbdgw/rbdbackend"
	"github.com/rbdgw/rbdgw/rbdbackend/rbd/internal/rangelock"
)

// Image is an open RBD image. It implements rbdbackend.Image and the
// Flusher, Discarder, WriteSamer, CompareAndWriter, AllocationReporter and
// Resizer capabilities; all methods are safe for concurrent use.
type Image struct {
	c    *Cluster
	pool string
	name string
	spec string // "pool/name", for errors and logs

	// mu is read-held for the whole of every operation that uses h, and
	// write-held to replace h (reconnect) or close it, so a handle is never
	// closed under an in-flight request.
	mu        sync.RWMutex
	h         *handle // nil after Close, or after a failed reopen
	closed    bool
	reopenErr error

	size       atomic.Int64
	features   atomic.Uint64
	objectSize atomic.Int64
	// lockGen is the client generation on which AcquireLock succeeded, or
	// 0: the managed exclusive lock is held iff lockGen == h.gen.
	lockGen atomic.Uint64

	// ranges orders this process's writes against compare-and-write.
	ranges rangelock.Table

	updates cgo.Handle    // identifies this Image to header-update callbacks
	updated chan struct{} // a header update arrived; refresh the size
	done    chan struct{}
	wg      sync.WaitGroup
}

// maxRequest bounds one librbd discard or write-same: librbd returns the
// byte count as an int, so it rejects lengths above INT_MAX with EINVAL.
// A variable only so that tests can exercise the chunking.
var maxRequest int64 = 1 << 30

// Open opens pool/name for I/O.
func (c *Cluster) Open(pool, name string) (*Image, error) {
	img := &Image{
		c:       c,
		pool:    pool,
		name:    name,
		spec:    pool + "/" + name,
		updated: make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	img.updates = cgo.NewHandle(img)
	err := c.withConn(func(conn *rados.Conn, gen uint64) error {
		h, err := img.openOn(conn, gen)
		if err != nil {
			return err
		}
		img.h = h
		c.register(img)
		return nil
	})
	if err != nil {
		img.updates.Delete()
		return nil, err
	}
	img.wg.Add(1)
	go img.watchSize()
	return img, nil
}

// openOn opens the image on conn and loads what the data path caches.
func (i *Image) openOn(conn *rados.Conn, gen uint64) (*handle, error) {
	h, rc := openHandle(radosHandle(conn), gen, i.pool, i.name, false, i.updates)
	if rc < 0 {
		return nil, opError("open", i.spec, rc, ctxAdmin)
	}
	size, rc := h.size()
	if rc >= 0 {
		var f uint64
		f, rc = h.features()
		i.features.Store(f)
	}
	if rc >= 0 {
		var objSize int64
		objSize, rc = h.objectSize()
		i.objectSize.Store(objSize)
	}
	if rc < 0 {
		h.close()
		return nil, opError("open", i.spec, rc, ctxAdmin)
	}
	i.size.Store(size)
	return h, nil
}

// reopen moves the image to a new rados client after a reconnect. The
// managed lock does not survive: it belonged to the old client.
func (i *Image) reopen(conn *rados.Conn, gen uint64) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed {
		return
	}
	if i.h != nil {
		i.h.close() // fails when fenced; the handle is released anyway
		i.h = nil
	}
	i.lockGen.Store(0)
	h, err := i.openOn(conn, gen)
	if err != nil {
		i.reopenErr = err
		i.c.log.Error("rbd: reopen after reconnect failed", "image", i.spec, "err", err)
		return
	}
	i.h, i.reopenErr = h, nil
}

// ensureOpen reopens the image on the current client if an earlier
// reopen (after a reconnect) failed.
func (i *Image) ensureOpen() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed || i.h != nil {
		return nil
	}
	return i.c.withConn(func(conn *rados.Conn, gen uint64) error {
		h, err := i.openOn(conn, gen)
		if err != nil {
			return err
		}
		i.h, i.reopenErr = h, nil
		return nil
	})
}

// Name returns "pool/name".
func (i *Image) Name() string { return i.spec }

// Size is the image size in bytes; it follows resizes made by any client.
func (i *Image) Size() int64 { return i.size.Load() }

// ObjectSize is the RADOS object size: the natural unit for UNMAP
// granularity and optimal transfer length.
func (i *Image) ObjectSize() int64 { return i.objectSize.Load() }

// Features is the image's RBD feature mask.
func (i *Image) Features() uint64 { return i.features.Load() }

// use returns the handle for an operation; i.mu must be read-held.
func (i *Image) use(op string) (*handle, error) {
	switch {
	case i.closed:
		return nil, fmt.Errorf("rbd: %s %s: %w", op, i.spec, rbdbackend.ErrClosed)
	case i.h == nil:
		return nil, fmt.Errorf("rbd: %s %s: not reopened after reconnect (%v): %w", op, i.spec, i.reopenErr, rbdbackend.ErrLockLost)
	case i.c.fenced(i.h.gen):
		return nil, fmt.Errorf("rbd: %s %s: client blocklisted, reconnecting: %w", op, i.spec, rbdbackend.ErrLockLost)
	}
	return i.h, nil
}

// begin is use plus the range check of a data operation.
func (i *Image) begin(op string, off, n int64) (*handle, error) {
	h, err := i.use(op)
	if err != nil {
		return nil, err
	}
	if size := i.size.Load(); off < 0 || n < 0 || off > size || n > size-off {
		return nil, fmt.Errorf("rbd: %s of %d bytes at %d on %s (%d bytes): %w", op, n, off, i.spec, size, rbdbackend.ErrOutOfRange)
	}
	return h, nil
}

// fail turns a failed data-path call into an error and reacts to fencing
// and to a lost lock.
func (i *Image) fail(op string, h *handle, ret int) error {
	switch {
	case fencing(ret):
		i.lockGen.CompareAndSwap(h.gen, 0)
		i.c.noteFenced(h.gen)
	case ret == -int(syscall.EROFS):
		i.lockGen.CompareAndSwap(h.gen, 0)
	}
	return opError(op, i.spec, ret, ctxIO)
}

// run submits one request and, for reads, checks that it transferred want
// bytes; want < 0 accepts any non-negative result (librbd's asynchronous
// writes complete with 0, not a byte count).
func (i *Image) run(opName string, h *handle, r request, want int64) (result, error) {
	res := h.do(r)
	if res.ret < 0 {
		return res, i.fail(opName, h, int(res.ret))
	}
	if want >= 0 && res.ret != want {
		// The image shrank under us (another client); treat as out of range.
		return res, fmt.Errorf("rbd: %s %s: %d of %d bytes at %d: %w", opName, i.spec, res.ret, want, r.off, rbdbackend.ErrOutOfRange)
	}
	return res, nil
}

// ReadAt reads len(p) bytes at off.
func (i *Image) ReadAt(p []byte, off int64) (int, error) {
	i.mu.RLock()
	defer i.mu.RUnlock()
	h, err := i.begin("read", off, int64(len(p)))
	if err != nil || len(p) == 0 {
		return 0, err
	}
	if _, err := i.run("read", h, request{op: opRead, off: uint64(off), n: uint64(len(p)), buf: p}, int64(len(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// WriteAt writes p at off.
func (i *Image) WriteAt(p []byte, off int64) (int, error) {
	i.mu.RLock()
	defer i.mu.RUnlock()
	h, err := i.begin("write", off, int64(len(p)))
	if err != nil || len(p) == 0 {
		return 0, err
	}
	held := i.ranges.Lock(off, int64(len(p)), false)
	defer i.ranges.Unlock(held)
	if _, err := i.run("write", h, request{op: opWrite, off: uint64(off), n: uint64(len(p)), buf: p}, -1); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush waits until every completed write is durable.
func (i *Image) Flush() error {
	i.mu.RLock()
	defer i.mu.RUnlock()
	h, err := i.use("flush")
	if err != nil {
		return err
	}
	_, err = i.run("flush", h, request{op: opFlush}, -1)
	return err
}

// Discard deallocates [off, off+length); the range then reads as zeroes,
// including unaligned heads and tails (librbd zeroes those).
func (i *Image) Discard(off, length int64) error {
	i.mu.RLock()
	defer i.mu.RUnlock()
	h, err := i.begin("discard", off, length)
	if err != nil || length == 0 {
		return err
	}
	held := i.ranges.Lock(off, length, false)
	defer i.ranges.Unlock(held)
	for done := int64(0); done < length; {
		n := min(length-done, maxRequest)
		r := request{op: opDiscard, off: uint64(off + done), n: uint64(n)}
		if _, err := i.run("discard", h, r, -1); err != nil {
			return err
		}
		done += n
	}
	return nil
}

// WriteSame writes pattern repeatedly over [off, off+length); length must
// be a multiple of len(pattern).
func (i *Image) WriteSame(off, length int64, pattern []byte) error {
	i.mu.RLock()
	defer i.mu.RUnlock()
	h, err := i.begin("write same", off, length)
	if err != nil || length == 0 {
		return err
	}
	if len(pattern) == 0 || length%int64(len(pattern)) != 0 {
		return fmt.Errorf("rbd: write same %s: %d-byte pattern does not tile %d bytes: %w", i.spec, len(pattern), length, ErrInvalid)
	}
	held := i.ranges.Lock(off, length, false)
	defer i.ranges.Unlock(held)
	chunk := maxRequest / int64(len(pattern)) * int64(len(pattern))
	for done := int64(0); done < length; {
		n := min(length-done, chunk)
		r := request{op: opWriteSame, off: uint64(off + done), n: uint64(n), buf: pattern}
		if _, err := i.run("write same", h, r, -1); err != nil {
			return err
		}
		done += n
	}
	return nil
}

// Resize grows the image to size bytes; shrinking is refused (ErrShrink).
func (i *Image) Resize(size int64) error {
	i.mu.RLock()
	defer i.mu.RUnlock()
	h, err := i.use("resize")
	if err != nil {
		return err
	}
	cur, rc := h.size()
	if rc < 0 {
		return i.fail("resize", h, rc)
	}
	i.size.Store(cur)
	switch {
	case size < cur:
		return fmt.Errorf("rbd: resize %s from %d to %d bytes: %w", i.spec, cur, size, ErrShrink)
	case size == cur:
		return nil
	}
	if rc := h.resize(size); rc < 0 {
		return opError("resize", i.spec, rc, ctxAdmin)
	}
	i.size.Store(size)
	return nil
}

// Close releases the image (and the exclusive lock if this client holds
// it). No call may follow; further calls return ErrClosed.
func (i *Image) Close() error {
	i.mu.Lock()
	if i.closed {
		i.mu.Unlock()
		return fmt.Errorf("rbd: close %s: %w", i.spec, rbdbackend.ErrClosed)
	}
	i.closed = true
	h := i.h
	i.h = nil
	var err error
	if h != nil {
		if rc := h.close(); rc < 0 && !i.c.fenced(h.gen) && !fencing(rc) {
			err = opError("close", i.spec, rc, ctxAdmin)
		}
	}
	i.mu.Unlock()
	close(i.done)
	i.wg.Wait()
	i.updates.Delete()
	i.c.unregister(i)
	return err
}

// headerUpdated runs on a librbd thread when the image header changes.
func (i *Image) headerUpdated() {
	select {
	case i.updated <- struct{}{}:
	default: // a refresh is already pending
	}
}

// watchSize keeps Size current when any client resizes the image.
func (i *Image) watchSize() {
	defer i.wg.Done()
	for {
		select {
		case <-i.done:
			return
		case <-i.updated:
			i.refreshSize()
		}
	}
}

func (i *Image) refreshSize() {
	i.mu.RLock()
	defer i.mu.RUnlock()
	h, err := i.use("refresh")
	if err != nil {
		return
	}
	size, rc := h.size()
	if rc < 0 {
		i.c.log.Debug("rbd: size refresh failed", "image", i.spec, "err", opError("get size", i.spec, rc, ctxIO))
		return
	}
	i.size.Store(size)
}

// Compile-time checks of the capabilities the SCSI layer probes for.
var (
	_ rbdbackend.Image              = (*Image)(nil)
	_ rbdbackend.Flusher            = (*Image)(nil)
	_ rbdbackend.Discarder          = (*Image)(nil)
	_ rbdbackend.WriteSamer         = (*Image)(nil)
	_ rbdbackend.CompareAndWriter   = (*Image)(nil)
	_ rbdbackend.AllocationReporter = (*Image)(nil)
	_ rbdbackend.Resizer            = (*Image)(nil)
)

// hasFeature reports whether the image has an RBD feature bit.
func (i *Image) hasFeature(bit uint64) bool { return i.features.Load()&bit != 0 }

var featureExclusiveLock = gorbd.FeatureExclusiveLock
