//go:build pacific

package rbd

import (
	"fmt"
	"runtime/cgo"
	"sync"
	"sync/atomic"

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

	onResize atomic.Pointer[func(int64)] // SizeWatcher callback

	updates cgo.Handle    // identifies this Image to header-update callbacks
	updated chan struct{} // a header update arrived; refresh the size
	done    chan struct{}
	wg      sync.WaitGroup
}

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

// watchSize keeps Size (and the feature mask) current when any client
// resizes the image or changes its features.
func (i *Image) watchSize() {
	defer i.wg.Done()
	for {
		select {
		case <-i.done:
			return
		case <-i.updated:
			i.refreshHeader()
		}
	}
}

// OnResize registers fn to run when the image's size changes, whoever
// resized it (rbdbackend.SizeWatcher).
func (i *Image) OnResize(fn func(size int64)) { i.onResize.Store(&fn) }

// refreshHeader reloads what the data path caches from the header.
func (i *Image) refreshHeader() {
	i.mu.RLock()
	defer i.mu.RUnlock()
	h, err := i.use("refresh")
	if err != nil {
		return
	}
	size, rc := h.size()
	if rc >= 0 {
		old := i.size.Swap(size)
		if fn := i.onResize.Load(); fn != nil && old != size {
			(*fn)(size)
		}
		var f uint64
		if f, rc = h.features(); rc >= 0 {
			i.features.Store(f)
		}
	}
	if rc < 0 {
		i.c.log.Debug("rbd: header refresh failed", "image", i.spec, "err", opError("refresh", i.spec, rc, ctxIO))
	}
}

// Compile-time checks of the capabilities the SCSI layer probes for.
var (
	_ rbdbackend.Image              = (*Image)(nil)
	_ rbdbackend.Flusher            = (*Image)(nil)
	_ rbdbackend.Discarder          = (*Image)(nil)
	_ rbdbackend.SizeWatcher        = (*Image)(nil)
	_ rbdbackend.WriteSamer         = (*Image)(nil)
	_ rbdbackend.CompareAndWriter   = (*Image)(nil)
	_ rbdbackend.AllocationReporter = (*Image)(nil)
	_ rbdbackend.Resizer            = (*Image)(nil)
)

// hasFeature reports whether the image has an RBD feature bit.
func (i *Image) hasFeature(bit uint64) bool { return i.features.Load()&bit != 0 }

var featureExclusiveLock = gorbd.FeatureExclusiveLock
