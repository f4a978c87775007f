//go:build pacific

package rbd

/*
#include "shim.h"
*/
import "C"

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"

	"github.com/rbdgw/rbdgw/rbdbackend"
	"github.com/rbdgw/rbdgw/rbdbackend/rbd/internal/rangelock"
)

// maxRequest bounds one librbd discard or write-same: librbd returns the
// byte count as an int, so it rejects lengths above INT_MAX with EINVAL.
// A variable only so that tests can exercise the chunking.
var maxRequest int64 = 1 << 30

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
	return res, i.check(opName, h, res.ret, r.off, want)
}

// check turns librbd's result of a request at off into an error: a
// negative errno (fail), or fewer bytes than want (want < 0: any count).
func (i *Image) check(opName string, h *handle, ret int64, off uint64, want int64) error {
	if ret < 0 {
		return i.fail(opName, h, int(ret))
	}
	if want >= 0 && ret != want {
		// The image shrank under us (another client); treat as out of range.
		return fmt.Errorf("rbd: %s %s: %d of %d bytes at %d: %w", opName, i.spec, ret, want, off, rbdbackend.ErrOutOfRange)
	}
	return nil
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

// ReadAtContext is ReadAt that returns ctx's error once ctx is done,
// leaving the request to complete in librbd (rbdbackend.ContextReader):
// the completion then unpins p and releases the image's read lock, so
// the image is not closed or reopened under a read still in flight.
func (i *Image) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	i.mu.RLock()
	h, err := i.begin("read", off, int64(len(p)))
	if err != nil || len(p) == 0 {
		i.mu.RUnlock()
		return 0, err
	}
	r := request{op: opRead, off: uint64(off), n: uint64(len(p)), buf: p}
	res, abandoned := doContext(ctx, h.img, r, &i.mu)
	if abandoned {
		return 0, ctx.Err()
	}
	i.mu.RUnlock()
	if err := i.check("read", h, res.ret, r.off, int64(len(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// ReadsFor returns i (see rbdbackend.ContextReader).
func (i *Image) ReadsFor() rbdbackend.Image { return i }

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
	chunk := max(maxRequest/int64(len(pattern)), 1) * int64(len(pattern))
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

// inFlight counts the requests submitted to librbd and not yet completed,
// and their bytes. A submitting thread waits in the Objecter while its
// in-flight throttle is full (objecter_inflight_ops, 1024, and
// objecter_inflight_op_bytes, 100 MiB, by default); requests started
// without a waiter (Image.start) come from a connection's serve loop,
// which must not wait there, so they are started only well below it.
var inFlight inFlightCount

type inFlightCount struct{ ops, bytes atomic.Int64 }

const (
	asyncMaxOps   = 256
	asyncMaxBytes = 32 << 20
)

// add counts a request of n bytes and returns n.
func (c *inFlightCount) add(n int64) int64 {
	c.ops.Add(1)
	c.bytes.Add(n)
	return n
}

// tryAdd counts a request of n bytes if the bounds for requests without a
// waiter allow it.
func (c *inFlightCount) tryAdd(n int64) bool {
	if c.ops.Load() >= asyncMaxOps || c.bytes.Load()+n > asyncMaxBytes {
		return false
	}
	c.add(n)
	return true
}

func (c *inFlightCount) done(n int64) {
	c.ops.Add(-1)
	c.bytes.Add(-n)
}

// asyncReq is what the completion of a request started by start needs.
type asyncReq struct {
	img  *Image
	h    *handle
	op   string
	off  int64
	want int64 // bytes a read must transfer; -1 for a write
	held *rangelock.Held
	done rbdbackend.Completer
}

// StartReadAt starts reading len(p) bytes at off (rbdbackend.AsyncIO).
func (i *Image) StartReadAt(p []byte, off int64, done rbdbackend.Completer) bool {
	return i.start(opRead, "read", p, off, int64(len(p)), done)
}

// StartWriteAt starts writing p at off (rbdbackend.AsyncIO).
func (i *Image) StartWriteAt(p []byte, off int64, done rbdbackend.Completer) bool {
	return i.start(opWrite, "write", p, off, -1, done)
}

// AsyncFor returns i (see rbdbackend.AsyncIO).
func (i *Image) AsyncFor() rbdbackend.Image { return i }

// start submits a read or write whose completion goes to done. It holds,
// until then, what ReadAt and WriteAt hold while they wait: the image's
// read lock (no reopen or close under the request) and, for a write, its
// range. Whatever it cannot take at once makes it report false.
func (i *Image) start(op C.int, name string, p []byte, off, want int64, done rbdbackend.Completer) bool {
	n := int64(len(p))
	if n == 0 || !i.mu.TryRLock() {
		return false
	}
	h, err := i.begin(name, off, n)
	if err != nil || completions() != nil || !inFlight.tryAdd(n) {
		i.mu.RUnlock()
		return false
	}
	var held *rangelock.Held
	if op == opWrite {
		var ok bool
		if held, ok = i.ranges.TryLock(off, n, false); !ok {
			inFlight.done(n)
			i.mu.RUnlock()
			return false
		}
	}
	pd := getPending()
	pd.async = asyncReq{img: i, h: h, op: name, off: off, want: want, held: held, done: done}
	if pd.submit(h.img, request{op: op, off: uint64(off), n: uint64(n), buf: p}, n) < 0 {
		// No completion follows; ReadAt or WriteAt reports the error.
		i.endAsync(held)
		return false
	}
	return true
}

// endAsync releases what start held.
func (i *Image) endAsync(held *rangelock.Held) {
	if held != nil {
		i.ranges.Unlock(held)
	}
	i.mu.RUnlock()
}

// complete ends a request started by start with librbd's result, as run
// would have.
func (a asyncReq) complete(ret int64, b *rbdbackend.Batch) {
	err := a.img.check(a.op, a.h, ret, uint64(a.off), a.want)
	a.img.endAsync(a.held)
	a.done.Complete(err, b)
}
