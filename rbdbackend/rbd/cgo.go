//go:build pacific

package rbd

/*
#cgo LDFLAGS: -lrbd -lrados
#include "shim.h"
*/
import "C"

import (
	"context"
	"os"
	"runtime"
	"runtime/cgo"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/rbdgw/rbdgw/rbdbackend"
)

// Operation codes understood by rbdgw_submit.
const (
	opRead            = C.RBDGW_OP_READ
	opWrite           = C.RBDGW_OP_WRITE
	opDiscard         = C.RBDGW_OP_DISCARD
	opWriteSame       = C.RBDGW_OP_WRITESAME
	opCompareAndWrite = C.RBDGW_OP_COMPARE_AND_WRITE
	opFlush           = C.RBDGW_OP_FLUSH
)

// request is one asynchronous librbd operation.
type request struct {
	op  C.int
	off uint64
	n   uint64
	buf []byte // read target, write source, write-same pattern, new data
	cmp []byte // compare-and-write: the expected data
}

// result is what librbd reports at completion: a byte count or a negative
// errno, and for a miscompare the absolute image offset of the first
// differing byte.
type result struct {
	ret      int64
	mismatch uint64
}

// pending is the Go side of one in-flight operation; its completion
// finds it by its number in pendings (tag). The pinner keeps the
// request's buffers in place until librbd is done with them.
type pending struct {
	done  chan result
	state atomic.Uint32
	pin   runtime.Pinner
	tag   uintptr // its number in pendings, fixed
	// unlock, read-held by the submitter, is released by the completion
	// of an abandoned request (doContext).
	unlock *sync.RWMutex
	// charged is what the request counts in inFlight.
	charged int64
	// async is set for a request started without a waiter (Image.start):
	// its completion goes to the image, not to done.
	async asyncReq
}

// pending.state: the submitter waits until librbd completes the request,
// or abandons it first (its context ended); whoever moves first decides
// who cleans up.
const (
	pendingWaiting uint32 = iota
	pendingCompleted
	pendingAbandoned
)

// pendings numbers the pendings for the C side, which hands a
// completion's number back (tag). A pending is made once and reused, never
// freed, so that neither a request nor its completion allocates (a
// cgo.Handle did, per request): there are never more of them than
// requests were once being submitted or in flight together.
var pendings struct {
	mu   sync.Mutex
	all  []*pending // by number
	free []*pending
}

// getPending returns a pending not in use.
func getPending() *pending {
	pendings.mu.Lock()
	defer pendings.mu.Unlock()
	if n := len(pendings.free); n > 0 {
		p := pendings.free[n-1]
		pendings.free = pendings.free[:n-1] // all keeps it anyway
		return p
	}
	p := &pending{done: make(chan result, 1), tag: uintptr(len(pendings.all))}
	pendings.all = append(pendings.all, p)
	return p
}

// putPending takes back a pending nobody uses any more.
func putPending(p *pending) {
	pendings.mu.Lock()
	pendings.free = append(pendings.free, p)
	pendings.mu.Unlock()
}

// pendingOf returns the pending numbered tag.
func pendingOf(tag C.uintptr_t) *pending {
	pendings.mu.Lock()
	defer pendings.mu.Unlock()
	return pendings.all[tag]
}

// rbdgwComplete delivers a completion the C side could not queue.
//
//export rbdgwComplete
func rbdgwComplete(tag C.uintptr_t, ret C.ssize_t, mismatch C.uint64_t) {
	finish(tag, ret, mismatch, nil)
}

// completions starts, once, the goroutine that delivers what librbd
// completed (shim.c's queue).
var completions = sync.OnceValue(func() error {
	fd := C.rbdgw_completions_init()
	if fd < 0 {
		return syscall.Errno(-fd)
	}
	// Non-blocking, so os.File waits for it through the netpoller.
	go drainCompletions(os.NewFile(uintptr(fd), "rbdgw-completions"))
	return nil
})

// drainCompletions hands each completed request to its waiter. The waiter
// becomes runnable on this goroutine's P, so it usually runs on this
// thread as soon as the batch is delivered: one thread wake-up per batch.
// The eventfd is read with a raw read(2), as the gateway's sockets are
// (docs/adr/0009): a read through os.File enters the runtime's system
// call state and wakes its monitor thread after every idle moment.
func drainCompletions(f *os.File) {
	rc, err := f.SyscallConn()
	if err != nil {
		panic("rbd: the completion eventfd: " + err.Error())
	}
	var counter [8]byte
	readCounter := func(fd uintptr) bool {
		_, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&counter[0])), uintptr(len(counter)))
		return e != syscall.EAGAIN // else wait in the netpoller
	}
	var batch [64]C.struct_rbdgw_done
	var b rbdbackend.Batch
	for {
		// Read before draining: a completion queued after the drain
		// writes the eventfd again, so none waits unnoticed.
		if err := rc.Read(readCounter); err != nil {
			panic("rbd: reading the completion eventfd: " + err.Error())
		}
		for {
			n := int(C.rbdgw_drain(&batch[0], C.int(len(batch))))
			for _, d := range batch[:n] {
				finish(d.tag, d.ret, d.mismatch, &b)
			}
			if n < len(batch) {
				break
			}
		}
		b.End() // what the completers left for the end of the batch
	}
}

// finish completes the request of tag; b is the batch it was delivered in
// (nil: alone).
func finish(tag C.uintptr_t, ret C.ssize_t, mismatch C.uint64_t, b *rbdbackend.Batch) {
	p := pendingOf(tag)
	inFlight.done(p.charged)
	if a := p.async; a.img != nil {
		p.release()
		a.complete(int64(ret), b) // what ReadAt or WriteAt would have waited for
		return
	}
	if p.state.CompareAndSwap(pendingWaiting, pendingCompleted) {
		p.done <- result{ret: int64(ret), mismatch: uint64(mismatch)}
		return
	}
	// The submitter gave up waiting and no longer looks at p: release
	// what it left held.
	if p.unlock != nil {
		p.unlock.RUnlock()
	}
	p.release()
}

//export rbdgwUpdated
func rbdgwUpdated(tag C.uintptr_t) {
	cgo.Handle(tag).Value().(*Image).headerUpdated()
}

// waitInC selects how a goroutine waits for librbd: false parks it on a
// channel that drainCompletions signals (no OS thread is held while
// the request is in flight); true blocks the thread in
// rbd_aio_wait_for_complete. See the benchmarks in aio_bench_test.go.
var waitInC = false

// do runs r on image and waits for its completion. The buffers are pinned
// for as long as librbd may touch them.
func do(image C.rbd_image_t, r request) result {
	res, _ := doContext(context.Background(), image, r, nil)
	return res
}

// doContext is do that stops waiting when ctx is done; it
// then reports abandoned, and the completion, when it comes, unpins the
// buffers and read-unlocks unlock (held by the caller, which must not
// unlock it itself then), so that the image is not closed under librbd.
func doContext(ctx context.Context, image C.rbd_image_t, r request, unlock *sync.RWMutex) (res result, abandoned bool) {
	if waitInC {
		var pin runtime.Pinner
		defer pin.Unpin()
		buf := pinned(&pin, r.buf)
		cmp := pinned(&pin, r.cmp)
		var mismatch C.uint64_t
		ret := C.rbdgw_run(image, r.op, C.uint64_t(r.off), C.uint64_t(r.n), buf, cmp, auxOf(r), &mismatch)
		return result{ret: int64(ret), mismatch: uint64(mismatch)}, false
	}
	if err := completions(); err != nil {
		return result{ret: -int64(err.(syscall.Errno))}, false
	}
	p := getPending()
	p.state.Store(pendingWaiting)
	p.unlock = unlock
	if rc := p.submit(image, r, inFlight.add(int64(len(r.buf)))); rc < 0 {
		return result{ret: int64(rc)}, false
	}
	if ctx.Done() == nil { // never cancelled
		res = <-p.done
		p.release()
		return res, false
	}
	select {
	case res = <-p.done:
	case <-ctx.Done():
		if p.state.CompareAndSwap(pendingWaiting, pendingAbandoned) {
			return result{}, true
		}
		res = <-p.done // completed meanwhile
	}
	p.release()
	return res, false
}

// submit pins r's buffers and starts r, whose completion finds p; charged
// is what r already counts in inFlight. When librbd refuses r (< 0), no
// completion follows: r is uncounted and p released.
func (p *pending) submit(image C.rbd_image_t, r request, charged int64) C.int {
	p.charged = charged
	buf := pinned(&p.pin, r.buf)
	cmp := pinned(&p.pin, r.cmp)
	rc := C.rbdgw_submit(image, r.op, C.uint64_t(r.off), C.uint64_t(r.n), buf, cmp, auxOf(r), C.uintptr_t(p.tag))
	if rc < 0 {
		inFlight.done(charged)
		p.release()
	}
	return rc
}

// release returns a pending whose request completed (or never started).
func (p *pending) release() {
	p.pin.Unpin()
	p.unlock = nil
	p.charged = 0
	p.async = asyncReq{}
	putPending(p)
}

func auxOf(r request) C.uint64_t {
	if r.op == opWriteSame {
		return C.uint64_t(len(r.buf))
	}
	return 0
}

func pinned(pin *runtime.Pinner, b []byte) *C.char {
	if len(b) == 0 {
		return nil
	}
	pin.Pin(&b[0])
	return (*C.char)(unsafe.Pointer(&b[0]))
}
