//go:build pacific

package rbd

/*
#cgo LDFLAGS: -lrbd -lrados
#include "shim.h"
*/
import "C"

import (
	"runtime"
	"runtime/cgo"
	"sync"
	"unsafe"
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

// pending is the Go side of one in-flight operation; the completion
// callback finds it through a cgo.Handle.
type pending struct{ done chan result }

var pendingPool = sync.Pool{New: func() any { return &pending{done: make(chan result, 1)} }}

//export rbdgwComplete
func rbdgwComplete(tag C.uintptr_t, ret C.ssize_t, mismatch C.uint64_t) {
	p := cgo.Handle(tag).Value().(*pending)
	p.done <- result{ret: int64(ret), mismatch: uint64(mismatch)}
}

//export rbdgwUpdated
func rbdgwUpdated(tag C.uintptr_t) {
	cgo.Handle(tag).Value().(*Image).headerUpdated()
}

// waitInC selects how a goroutine waits for librbd: false parks it on a
// channel that the completion callback signals (no OS thread is held while
// the request is in flight); true blocks the thread in
// rbd_aio_wait_for_complete. See the benchmarks in aio_bench_test.go.
var waitInC = false

// do runs r on image and waits for its completion. The buffers are pinned
// for as long as librbd may touch them.
func do(image C.rbd_image_t, r request) result {
	var pin runtime.Pinner
	defer pin.Unpin()
	buf := pinned(&pin, r.buf)
	cmp := pinned(&pin, r.cmp)
	aux := C.uint64_t(0)
	if r.op == opWriteSame {
		aux = C.uint64_t(len(r.buf))
	}
	if waitInC {
		var mismatch C.uint64_t
		ret := C.rbdgw_run(image, r.op, C.uint64_t(r.off), C.uint64_t(r.n), buf, cmp, aux, &mismatch)
		return result{ret: int64(ret), mismatch: uint64(mismatch)}
	}
	p := pendingPool.Get().(*pending)
	tag := cgo.NewHandle(p)
	defer tag.Delete()
	if rc := C.rbdgw_submit(image, r.op, C.uint64_t(r.off), C.uint64_t(r.n), buf, cmp, aux, C.uintptr_t(tag)); rc < 0 {
		pendingPool.Put(p)
		return result{ret: int64(rc)}
	}
	res := <-p.done
	pendingPool.Put(p)
	return res
}

func pinned(pin *runtime.Pinner, b []byte) *C.char {
	if len(b) == 0 {
		return nil
	}
	pin.Pin(&b[0])
	return (*C.char)(unsafe.Pointer(&b[0]))
}
