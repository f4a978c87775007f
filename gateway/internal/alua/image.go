package alua

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rbdgw/rbdgw/rbdbackend"
)

// Image is the storage image of a cluster disk: an RBD image and its
// exclusive lock. Its optional capabilities (rbdbackend.CapabilitiesOf)
// are forwarded by the wrapper, whatever they are.
type Image interface {
	rbdbackend.Image
	LockedImage
	// AcquireLock takes the lock as a managed lock, which librbd does not
	// hand over; ReleaseLock gives it back.
	AcquireLock() error
	ReleaseLock() error
}

// Wrap returns img as the logical unit of disk sees it: writes that wait
// too long for another client's lock trigger a takeover, and reads that
// fail because this gateway's client was just fenced are retried on the
// replacement client. Close unregisters it.
func (m *Manager) Wrap(disk string, img Image) rbdbackend.Image {
	w := &image{inner: img, caps: rbdbackend.CapabilitiesOf(img), m: m, disk: disk}
	m.register(disk, img)
	return w
}

// image has the capabilities of the image it wraps (Capabilities): the
// writes among them are guarded and the reads retried (guarded), the
// others (flush, resize, size watch, atomic write limits, ...) reach the
// inner image directly.
type image struct {
	inner Image
	caps  rbdbackend.Capabilities // the inner image's
	m     *Manager
	disk  string
	// cawMu serialises compare-and-writes that need the managed lock.
	cawMu sync.Mutex
}

// guarded holds the wrapper's implementations of the capabilities it
// intercepts. They are reachable only through Capabilities, and only for
// capabilities the inner image has.
type guarded struct{ *image }

var (
	_ rbdbackend.CapabilityForwarder = (*image)(nil)
	_ rbdbackend.ContextReader       = (*image)(nil)
	_ rbdbackend.Discarder           = guarded{}
	_ rbdbackend.WriteSamer          = guarded{}
	_ rbdbackend.CompareAndWriter    = guarded{}
	_ rbdbackend.AllocationReporter  = guarded{}
)

// Capabilities are the inner image's, with discard, write same and
// compare and write guarded like WriteAt and allocation reads retried like
// ReadAt.
func (i *image) Capabilities() rbdbackend.Capabilities {
	g := guarded{i}
	return i.caps.Intercept(rbdbackend.Capabilities{
		Discarder:          g,
		WriteSamer:         g,
		CompareAndWriter:   g,
		AllocationReporter: g,
	})
}

func (i *image) Size() int64 { return i.inner.Size() }

// recoverWait bounds how long a read waits for the replacement client (a
// variable for tests).
var recoverWait = 5 * time.Second

// guard runs a write. Each StallTimeout it keeps waiting, the manager
// looks at who holds the lock (stalled). A write that timed out may still
// be applied by an OSD later, after the writes of whoever holds the lock
// next, so this gateway's client is fenced (timedOut).
func (i *image) guard(write func() error) error {
	w := &stallWatch{}
	w.mu.Lock()
	w.t = time.AfterFunc(i.m.opts.StallTimeout, func() {
		i.m.stalled(i.disk)
		w.mu.Lock()
		if !w.done {
			w.t.Reset(i.m.opts.StallTimeout)
		}
		w.mu.Unlock()
	})
	w.mu.Unlock()
	err := write()
	w.mu.Lock()
	w.done = true
	w.t.Stop()
	w.mu.Unlock()
	if errors.Is(err, rbdbackend.ErrTimeout) {
		i.m.timedOut(i.disk)
	}
	return err
}

// stallWatch is the timer of one guarded write.
type stallWatch struct {
	mu   sync.Mutex
	t    *time.Timer
	done bool
}

// retryRead repeats a read once the client fenced under it is replaced:
// the initiator is only reading, and the old client can no longer reach
// the cluster.
func (i *image) retryRead(ctx context.Context, read func() error) error {
	err := read()
	c := i.m.opts.Client
	if err == nil || c == nil || !errors.Is(err, rbdbackend.ErrLockLost) {
		return err
	}
	deadline := time.Now().Add(recoverWait)
	for c.Fenced() && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	if c.Fenced() {
		return err
	}
	return read()
}

func (i *image) ReadAt(p []byte, off int64) (n int, err error) {
	err = i.retryRead(context.Background(), func() error {
		var e error
		n, e = i.inner.ReadAt(p, off)
		return e
	})
	return n, err
}

// ReadAtContext is ReadAt that stops waiting once ctx is done, through
// the inner image's own ReadAtContext when it has one: a read of a cluster
// disk needs no goroutine to wait beside it (rbdbackend.ContextReader).
func (i *image) ReadAtContext(ctx context.Context, p []byte, off int64) (n int, err error) {
	err = i.retryRead(ctx, func() error {
		var e error
		n, e = rbdbackend.ReadAtContext(ctx, i.inner, p, off)
		return e
	})
	return n, err
}

// ReadsFor returns i (see rbdbackend.ContextReader).
func (i *image) ReadsFor() rbdbackend.Image { return i }

func (g guarded) Extent(off, maxLength int64) (alloc bool, n int64, err error) {
	err = g.retryRead(context.Background(), func() error {
		var e error
		alloc, n, e = g.caps.AllocationReporter.Extent(off, maxLength)
		return e
	})
	return alloc, n, err
}

func (i *image) WriteAt(p []byte, off int64) (n int, err error) {
	err = i.guard(func() error {
		var e error
		n, e = i.inner.WriteAt(p, off)
		return e
	})
	return n, err
}

func (g guarded) Discard(off, length int64) error {
	return g.guard(func() error { return g.caps.Discarder.Discard(off, length) })
}

func (g guarded) WriteSame(off, length int64, pattern []byte) error {
	return g.guard(func() error { return g.caps.WriteSamer.WriteSame(off, length, pattern) })
}

// nativeCompareSector: librbd compares within one 512-byte sector on the
// OSD, atomically for every client; longer compares need the managed lock.
const nativeCompareSector = 512

func (g guarded) CompareAndWrite(off int64, cmp, data []byte) (mismatch int64, err error) {
	i, caw := g.image, g.caps.CompareAndWriter
	n := int64(len(data))
	if n <= nativeCompareSector && off/nativeCompareSector == (off+n-1)/nativeCompareSector {
		err = i.guard(func() error {
			var e error
			mismatch, e = caw.CompareAndWrite(off, cmp, data)
			return e
		})
		return mismatch, err
	}
	// Read, compare and write are atomic only while no other client can
	// take the lock: hold it as a managed lock for the command.
	i.cawMu.Lock()
	defer i.cawMu.Unlock()
	err = i.guard(func() error {
		if e := i.inner.AcquireLock(); e != nil {
			return e
		}
		var e error
		mismatch, e = caw.CompareAndWrite(off, cmp, data)
		// A lock lost meanwhile (fenced) needs no release.
		if re := i.inner.ReleaseLock(); re != nil && !errors.Is(re, rbdbackend.ErrLockLost) {
			i.m.log.Warn("cannot release the exclusive lock after compare and write", "disk", i.disk, "err", re)
		}
		return e
	})
	return mismatch, err
}

func (i *image) Close() error {
	i.m.unregister(i.disk, i.inner)
	return i.inner.Close()
}
