package iscsi

import (
	"sync"

	"github.com/rbdgw/rbdgw/gateway/internal/pdu"
)

// maxQueuedControl bounds responses the initiator can provoke without
// spending CmdSN window (NOP-In echoes, Rejects): an initiator that floods
// them without reading loses its connection instead of our memory.
const maxQueuedControl = 4096

// maxQueuedControlBytes bounds the data those responses hold (a NOP-In
// echoes its ping's data, up to MaxRecvDataSegmentLength).
const maxQueuedControlBytes = 4 << 20

// outItem is one queued PDU. release, when set, is a received PDU whose
// pooled data the outgoing PDU aliases (a NOP-In echoing ping data); buf is
// a pooled buffer the PDUs of a command alias (Data-In). Both are released
// once written. done, when set, is closed after the write.
type outItem struct {
	p *pdu.PDU
	// own: the PDU is hdr, encoded into the item itself (sendOwn), so a
	// response costs no allocation; p is nil then.
	own     bool
	hdr     pdu.PDU
	release *pdu.PDU
	buf     *[]byte
	bud     *connBudget // set: buf was granted from this budget
	control bool
	done    chan struct{}
}

// dispose releases what the item holds once it was written or dropped.
func (it *outItem) dispose() {
	it.release.Release()
	if it.bud != nil {
		it.bud.release(bufCharge(it.buf), true)
	}
	putWriteBuf(it.buf)
	if it.done != nil {
		close(it.done)
	}
}

// disposeAll disposes items once written or dropped.
func disposeAll(items []outItem) {
	for i := range items {
		items[i].dispose()
	}
}

// sendQueue feeds the connection's writer goroutine. Producers never block:
// the serve loop appends under a short mutex and the writer drains
// everything queued into one writev. wmu is held by whoever writes to the
// socket: the writer goroutine, or the serve loop writing its responses
// itself when the writer is idle and nothing is queued (tryOwn).
type sendQueue struct {
	mu           sync.Mutex
	items        []outItem
	control      int
	controlBytes int
	wake         chan struct{}
	closed       bool

	// unfinished holds the items of a direct write the socket did not
	// take whole (tryWriteOwned); the writer goroutine finishes the write
	// before anything else, then disposes them. Guarded by mu.
	unfinished []outItem

	wmu  sync.Mutex
	pdus []*pdu.PDU // WriteBatch's argument, reused under wmu
}

func newSendQueue() *sendQueue {
	return &sendQueue{wake: make(chan struct{}, 1)}
}

// push queues items; it reports false when the queue is closed or the
// control bound is exceeded.
func (q *sendQueue) push(items ...outItem) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	for _, it := range items {
		if it.control {
			q.control++
			q.controlBytes += len(it.p.Data)
		}
	}
	q.items = append(q.items, items...)
	overloaded := q.control > maxQueuedControl || q.controlBytes > maxQueuedControlBytes
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return !overloaded
}

// take swaps the queued items out, handing back spare for reuse.
func (q *sendQueue) take(spare []outItem) []outItem {
	q.mu.Lock()
	items := q.items
	q.items = spare[:0]
	for _, it := range items {
		if it.control {
			q.control--
			q.controlBytes -= len(it.p.Data)
		}
	}
	q.mu.Unlock()
	return items
}

// close stops the queue; it returns what was never written so the caller
// can release it.
func (q *sendQueue) close() []outItem {
	q.mu.Lock()
	q.closed = true
	items := append(q.unfinished, q.items...)
	q.items, q.unfinished = nil, nil
	q.mu.Unlock()
	return items
}

// tryOwn takes the socket for a direct write when the writer goroutine is
// idle and nothing is queued, so that what the caller writes next cannot
// overtake anything. On true the caller must call tryWriteOwned.
func (q *sendQueue) tryOwn() bool {
	if !q.wmu.TryLock() {
		return false
	}
	q.mu.Lock()
	idle := len(q.items) == 0 && q.unfinished == nil && !q.closed
	q.mu.Unlock()
	if !idle {
		q.wmu.Unlock()
	}
	return idle
}

// tryWriteOwned writes items with one batch, disposes them and gives the
// socket back (see tryOwn), without waiting for the socket: what it does
// not take now is left to the writer goroutine, which then owns items
// (whole is false: the caller must not reuse their array).
func (q *sendQueue) tryWriteOwned(w *pdu.Writer, items []outItem) (whole bool, err error) {
	whole, err = w.TryWriteBatch(q.collect(items))
	q.dropPDUs()
	if whole || err != nil {
		disposeAll(items)
		q.wmu.Unlock()
		return true, err
	}
	q.mu.Lock()
	q.unfinished = items
	q.mu.Unlock()
	q.wmu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return false, nil
}

// finish completes the write tryWriteOwned left unfinished, if any, and
// disposes its items; wmu is held.
func (q *sendQueue) finish(w *pdu.Writer) error {
	q.mu.Lock()
	items := q.unfinished
	q.unfinished = nil
	q.mu.Unlock()
	if items == nil {
		return nil
	}
	err := w.Finish()
	disposeAll(items)
	return err
}

// collect returns the PDUs of items for WriteBatch, in q.pdus; wmu is
// held.
func (q *sendQueue) collect(items []outItem) []*pdu.PDU {
	pdus := q.pdus[:0]
	for i := range items {
		switch {
		case items[i].own:
			// items is not appended to while it is written: the pointer
			// stays valid.
			pdus = append(pdus, &items[i].hdr)
		case items[i].p != nil: // nil: a flush marker
			pdus = append(pdus, items[i].p)
		}
	}
	q.pdus = pdus
	return pdus
}

func (q *sendQueue) dropPDUs() {
	clear(q.pdus)
	q.pdus = q.pdus[:0]
}

// write writes items with one WriteBatch and disposes them; wmu is held.
func (q *sendQueue) write(w *pdu.Writer, items []outItem) error {
	var err error
	if pdus := q.collect(items); len(pdus) > 0 {
		err = w.WriteBatch(pdus)
	}
	q.dropPDUs()
	disposeAll(items)
	return err
}

// runWriter drains q onto w until stop is closed or a write fails. Each wake
// writes everything queued so far with one WriteBatch.
func runWriter(q *sendQueue, w *pdu.Writer, stop <-chan struct{}) error {
	var spare []outItem
	for {
		select {
		case <-q.wake:
		case <-stop:
			return nil
		}
		q.wmu.Lock()
		if err := q.finish(w); err != nil {
			q.wmu.Unlock()
			return err
		}
		items := q.take(spare)
		if len(items) == 0 {
			q.wmu.Unlock()
			spare = items
			continue
		}
		err := q.write(w, items)
		q.wmu.Unlock()
		clear(items)
		spare = items
		if err != nil {
			return err
		}
	}
}
