package iscsi

import (
	"sync"
	"sync/atomic"
)

// Byte budgets of command buffers (issue 11, item 5; docs/operations.md,
// "Resource limits").
//
// Every buffer a connection holds for a command's data is charged to the
// connection's budget and to the gateway's: Data-Out being received
// (immediate, unsolicited and solicited) and Data-In waiting to be
// written. A buffer is charged at its pooled size from the moment it is
// taken until it goes back.
//
// The budgets act three ways:
//   - MaxCmdSN stops advancing while either budget is spent, so a
//     well-behaved initiator stops sending commands; a NOP-In carries the
//     new MaxCmdSN once buffers came back (windowUpdate).
//   - Buffers the target decides to fill, for solicited Data-Out (before
//     its R2Ts go out) and for a READ's Data-In (before it runs), are
//     granted only within both budgets; a command that gets none waits
//     (conn.memWait) and is retried when buffers come back.
//   - Immediate and unsolicited data arrive whether the target likes it or
//     not. They grow the command's buffer as they arrive (never more than
//     twice what arrived), charged without waiting, but never beyond the
//     gateway's hard limit: past it the command ends with TASK SET FULL
//     once its data is in. The window stop bounds them to one window of
//     FirstBurstLength per connection.
//
// So that a connection whose budget is all unsolicited data waiting for
// solicitation cannot stall itself, a connection holding no granted buffer
// always gets its next grant, even beyond its own budget; the gateway's
// hard limit (budget plus a quarter) bounds those too. The gateway's
// buffers thus stay below gateway_buffer_mib * 5/4.

// gatewayBudget is the process-wide budget.
type gatewayBudget struct {
	limit int64 // grants and the window stay below it
	hard  int64 // progress grants and unsolicited data stay below it
	used  atomic.Int64

	// Connections waiting for the gateway's buffers to come back.
	nwait   atomic.Int32
	mu      sync.Mutex
	waiters map[*connBudget]struct{}
}

func newGatewayBudget(limit int64) *gatewayBudget {
	return &gatewayBudget{limit: limit, hard: limit + limit/4, waiters: make(map[*connBudget]struct{})}
}

// take charges n if used stays at most lim.
func (g *gatewayBudget) take(n, lim int64) bool {
	for {
		u := g.used.Load()
		if u+n > lim {
			return false
		}
		if g.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

func (g *gatewayBudget) release(n int64) {
	g.used.Add(-n)
	if g.nwait.Load() > 0 {
		g.wakeAll()
	}
}

func (g *gatewayBudget) wait(b *connBudget) {
	g.mu.Lock()
	if _, ok := g.waiters[b]; !ok {
		g.waiters[b] = struct{}{}
		g.nwait.Add(1)
	}
	g.mu.Unlock()
}

func (g *gatewayBudget) unwait(b *connBudget) {
	g.mu.Lock()
	if _, ok := g.waiters[b]; ok {
		delete(g.waiters, b)
		g.nwait.Add(-1)
	}
	g.mu.Unlock()
}

func (g *gatewayBudget) wakeAll() {
	g.mu.Lock()
	for b := range g.waiters {
		b.signal()
		delete(g.waiters, b)
	}
	g.nwait.Store(0)
	g.mu.Unlock()
}

// connBudget is one connection's budget. Grants and charges come from the
// serve loop; releases from any goroutine (the writer, task goroutines).
type connBudget struct {
	gw    *gatewayBudget
	limit int64

	mu     sync.Mutex
	used   int64
	grants int // granted buffers not yet back
	closed bool

	// waiting: the serve loop waits for buffers (a command in memWait, or
	// the window held); a release then wakes it.
	waiting atomic.Bool
	wake    chan struct{}
}

func newConnBudget(gw *gatewayBudget, limit int64) *connBudget {
	return &connBudget{gw: gw, limit: limit, wake: make(chan struct{}, 1)}
}

func (b *connBudget) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// grant charges n bytes for a buffer the target chooses to fill. It fails
// when a budget is spent, except that a connection holding no granted
// buffer gets one as long as the gateway stays below its hard limit. A
// failure marks the connection waiting.
func (b *connBudget) grant(n int64) bool {
	b.mu.Lock()
	ok := b.used+n <= b.limit && b.gw.take(n, b.gw.limit) ||
		b.grants == 0 && b.gw.take(n, b.gw.hard)
	if ok {
		b.used += n
		b.grants++
	}
	b.mu.Unlock()
	if !ok {
		b.await()
	}
	return ok
}

// tryGrant is grant within both budgets only, and without marking the
// connection waiting: for a buffer that would merely save copies.
func (b *connBudget) tryGrant(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.limit || !b.gw.take(n, b.gw.limit) {
		return false
	}
	b.used += n
	b.grants++
	return true
}

// charge charges n bytes of data that arrived unasked; it fails only
// beyond the gateway's hard limit.
func (b *connBudget) charge(n int64) bool {
	if !b.gw.take(n, b.gw.hard) {
		return false
	}
	b.mu.Lock()
	b.used += n
	b.mu.Unlock()
	return true
}

// release returns n bytes charged by grant (granted) or charge. After
// close it does nothing: close returned everything.
func (b *connBudget) release(n int64, granted bool) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.used -= n
	if granted {
		b.grants--
	}
	b.mu.Unlock()
	b.gw.release(n)
	if b.waiting.Load() {
		b.signal()
	}
}

// open reports whether both budgets have room: the window may advance.
// When not, the connection is marked waiting.
func (b *connBudget) open() bool {
	if b.roomy() {
		return true
	}
	b.await()
	// A release between the check and the mark would not have woken us.
	return b.roomy()
}

func (b *connBudget) roomy() bool {
	b.mu.Lock()
	ok := b.used < b.limit
	b.mu.Unlock()
	return ok && b.gw.used.Load() < b.gw.limit
}

// await marks the connection waiting for buffers, here and at the gateway.
func (b *connBudget) await() {
	b.waiting.Store(true)
	b.gw.wait(b)
}

// woken clears the waiting mark; the serve loop calls it before retrying.
func (b *connBudget) woken() {
	b.waiting.Store(false)
	b.gw.unwait(b)
}

// close returns everything still charged to the gateway: buffers dropped
// to the garbage collector (an aborted read's) or still held by goroutines
// that end later. Later releases do nothing.
func (b *connBudget) close() {
	b.mu.Lock()
	n := b.used
	b.used, b.grants, b.closed = 0, 0, true
	b.mu.Unlock()
	b.gw.unwait(b)
	if n != 0 {
		b.gw.release(n)
	}
}

// bufCharge is what a pooled buffer costs: its capacity.
func bufCharge(buf *[]byte) int64 {
	if buf == nil {
		return 0
	}
	return int64(cap(*buf))
}
