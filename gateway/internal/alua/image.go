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
	w := &image{inner: img, caps: rbdbackend.CapabilitiesOf(img), async: rbdbackend.AsyncOf(img), m: m, disk: disk}
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
	async rbdbackend.AsyncIO      // the inner image's, or nil
	m     *Manager
	disk  string
	// cawMu serialises compare-and-writes that need the managed lock.
	cawMu sync.Mutex
	// writes are the writes in flight, watched for stalls.
	writes writeWatch
}

// guarded holds the wrapper's implementations of the capabilities it
// intercepts. They are reachable only through Capabilities, and only for
// capabilities the inner image has.
type guarded struct{ *image }

var (
	_ rbdbackend.CapabilityForwarder = (*image)(nil)
	_ rbdbackend.ContextReader       = (*image)(nil)
	_ rbdbackend.AsyncIO             = (*image)(nil)
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
	w := i.writes.begin(i)
	err := write()
	if i.writes.end(w, err) {
		i.m.timedOut(i.disk)
	}
	return err
}

// writeWatch follows the writes in flight on one image, oldest first, so
// that one timer per image finds those waiting longer than StallTimeout:
// a timer per write cost a timer set and stopped, and allocations, for
// every write of the data path.
type writeWatch struct {
	mu         sync.Mutex
	head, tail *watchedWrite
	timer      *time.Timer
	armed      bool // the timer will fire
	closed     bool
}

// watchedWrite is one write in flight; those of started writes are also
// their completers (asyncWrite). They are pooled.
type watchedWrite struct {
	prev, next *watchedWrite
	since      time.Time
	i          *image
	done       rbdbackend.Completer
}

var watchedWrites = sync.Pool{New: func() any { return new(watchedWrite) }}

// begin adds a write of i starting now.
func (ww *writeWatch) begin(i *image) *watchedWrite {
	w := watchedWrites.Get().(*watchedWrite)
	w.i = i
	ww.mu.Lock()
	w.since = time.Now()
	w.prev = ww.tail
	if ww.tail != nil {
		ww.tail.next = w
	} else {
		ww.head = w
	}
	ww.tail = w
	if !ww.armed && !ww.closed {
		ww.armed = true
		if ww.timer == nil {
			ww.timer = time.AfterFunc(i.m.opts.StallTimeout, i.checkStalls)
		} else {
			ww.timer.Reset(i.m.opts.StallTimeout)
		}
	}
	ww.mu.Unlock()
	return w
}

// end removes a write that ended with err and reports whether it timed
// out: then this gateway's client must be fenced. w is reused after.
func (ww *writeWatch) end(w *watchedWrite, err error) bool {
	ww.mu.Lock()
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		ww.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		ww.tail = w.prev
	}
	ww.mu.Unlock()
	*w = watchedWrite{}
	watchedWrites.Put(w)
	return errors.Is(err, rbdbackend.ErrTimeout)
}

// checkStalls runs when the oldest write in flight may have waited
// StallTimeout: if it has, the manager looks at the lock (stalled), once
// for the image however many writes wait. It runs again when the oldest
// write will have waited that long, or StallTimeout after a look, and no
// more once none is in flight. The timer stays armed meanwhile, so looks
// at one image never overlap.
func (i *image) checkStalls() {
	ww, stall := &i.writes, i.m.opts.StallTimeout
	ww.mu.Lock()
	defer ww.mu.Unlock()
	if ww.head != nil && !ww.closed {
		wait := stall - time.Since(ww.head.since)
		if wait > 0 {
			ww.timer.Reset(wait)
			return
		}
		ww.mu.Unlock()
		i.m.stalled(i.disk)
		ww.mu.Lock()
		if ww.head != nil && !ww.closed {
			ww.timer.Reset(stall)
			return
		}
	}
	ww.armed = false
}

// stop ends the timer for good (the image is closed).
func (ww *writeWatch) stop() {
	ww.mu.Lock()
	defer ww.mu.Unlock()
	ww.closed = true
	if ww.timer != nil {
		ww.timer.Stop()
	}
}

// retryRead repeats a read once the client fenced under it is replaced:
// the initiator is only reading, and the old client can no longer reach
// the cluster.
func (i *image) retryRead(ctx context.Context, read func() error) error {
	err := read()
	if !i.retries(err) {
		return err
	}
	return i.retryAfter(ctx, err, read)
}

// retries reports whether a read that failed with err is retried.
func (i *image) retries(err error) bool {
	return err != nil && i.m.opts.Client != nil && errors.Is(err, rbdbackend.ErrLockLost)
}

// retryAfter waits for the replacement of the fenced client and reads
// again; err is the first read's error.
func (i *image) retryAfter(ctx context.Context, err error, read func() error) error {
	c := i.m.opts.Client
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

// AsyncFor returns i, or nil when the inner image cannot start requests
// itself (then rbdbackend.AsyncOf(i) is nil too, and nobody tries).
func (i *image) AsyncFor() rbdbackend.Image {
	if i.async == nil {
		return nil
	}
	return i
}

// StartReadAt starts a read through the inner image's AsyncIO. A read that
// fails because the client was fenced is retried as ReadAt retries it, on
// a goroutine of its own: the retry waits for the replacement client.
func (i *image) StartReadAt(p []byte, off int64, done rbdbackend.Completer) bool {
	if i.async == nil {
		return false
	}
	r := asyncReads.Get().(*asyncRead)
	*r = asyncRead{i: i, p: p, off: off, done: done}
	if !i.async.StartReadAt(p, off, r) {
		*r = asyncRead{}
		asyncReads.Put(r)
		return false
	}
	return true
}

// asyncRead is the completer of a started read; they are pooled.
type asyncRead struct {
	i    *image
	p    []byte
	off  int64
	done rbdbackend.Completer
}

var asyncReads = sync.Pool{New: func() any { return new(asyncRead) }}

func (r *asyncRead) Complete(err error, b *rbdbackend.Batch) {
	req := *r
	*r = asyncRead{}
	asyncReads.Put(r)
	if !req.i.retries(err) {
		req.done.Complete(err, b)
		return
	}
	go func() {
		req.done.Complete(req.i.retryAfter(context.Background(), err, func() error {
			_, e := req.i.inner.ReadAt(req.p, req.off)
			return e
		}), nil)
	}()
}

// StartWriteAt starts a write through the inner image's AsyncIO, watched
// for stalls as WriteAt is.
func (i *image) StartWriteAt(p []byte, off int64, done rbdbackend.Completer) bool {
	if i.async == nil {
		return false
	}
	w := i.writes.begin(i)
	w.done = done
	if !i.async.StartWriteAt(p, off, (*asyncWrite)(w)) {
		i.writes.end(w, nil)
		return false
	}
	return true
}

// asyncWrite is the completer of a started write: its watchedWrite.
type asyncWrite watchedWrite

func (a *asyncWrite) Complete(err error, b *rbdbackend.Batch) {
	w := (*watchedWrite)(a)
	i, done := w.i, w.done
	if !i.writes.end(w, err) {
		done.Complete(err, b)
		return
	}
	// As WriteAt does, fence this client before the write is reported
	// failed; fencing waits for the monitors.
	go func() {
		i.m.timedOut(i.disk)
		done.Complete(err, nil)
	}()
}

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
	i.writes.stop()
	i.m.unregister(i.disk, i.inner)
	return i.inner.Close()
}
