// Package rangelock grants shared and exclusive locks on byte ranges of one
// image inside one process.
//
// Plain writes take shared locks (they may overlap each other: the SCSI
// layer does not order them); a read-compare-write sequence takes an
// exclusive lock so that no write of this process lands between its read
// and its write. Overlapping requests are granted in arrival order, so a
// waiting exclusive request is not starved by a stream of shared ones.
package rangelock

import (
	"slices"
	"sync"
)

// Table is a set of held and waiting range locks. The zero value is empty
// and ready to use.
type Table struct {
	mu sync.Mutex
	// queue holds granted and waiting locks in arrival order. It stays
	// short (bounded by the I/O queue depth), so linear scans are cheap.
	queue []*Held
	// exclusive counts exclusive locks in queue: while it is zero a shared
	// request is granted without scanning.
	exclusive int
	// free holds released locks for reuse: a lock per write is taken on
	// the data path. It never outgrows the longest queue.
	free []*Held
}

// newHeld returns a lock for [off, off+n), reused when one is free.
// t.mu is held.
func (t *Table) newHeld(off, n int64, exclusive bool) *Held {
	var h *Held
	if k := len(t.free); k > 0 {
		h, t.free = t.free[k-1], t.free[:k-1] // kept by the table for reuse anyway
	} else {
		h = new(Held)
	}
	*h = Held{off: off, end: off + n, exclusive: exclusive}
	return h
}

// Held is one lock, granted or waiting; pass it to Unlock exactly once.
type Held struct {
	off, end  int64
	exclusive bool
	granted   bool
	ready     chan struct{} // created only when the request has to wait
}

func (h *Held) conflicts(o *Held) bool {
	return (h.exclusive || o.exclusive) && h.off < o.end && o.off < h.end
}

// Lock blocks until [off, off+n) is locked in the requested mode. An empty
// range is never blocked.
func (t *Table) Lock(off, n int64, exclusive bool) *Held {
	t.mu.Lock()
	h := t.newHeld(off, n, exclusive)
	if exclusive {
		t.exclusive++
	}
	h.granted = n <= 0 || (!exclusive && t.exclusive == 0) || t.grantable(h, len(t.queue))
	if !h.granted {
		h.ready = make(chan struct{})
	}
	t.queue = append(t.queue, h)
	t.mu.Unlock()
	if h.ready != nil {
		<-h.ready
	}
	return h
}

// TryLock is Lock that does not wait: it reports false, holding nothing,
// when the range cannot be granted at once.
func (t *Table) TryLock(off, n int64, exclusive bool) (*Held, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.newHeld(off, n, exclusive)
	h.granted = true
	if n > 0 && (exclusive || t.exclusive > 0) && !t.grantable(h, len(t.queue)) {
		t.free = append(t.free, h)
		return nil, false
	}
	if exclusive {
		t.exclusive++
	}
	t.queue = append(t.queue, h)
	return h, true
}

// grantable reports whether h conflicts with none of the first n entries.
func (t *Table) grantable(h *Held, n int) bool {
	for _, o := range t.queue[:n] {
		if o.conflicts(h) {
			return false
		}
	}
	return true
}

// Unlock releases h and grants the waiting locks it was holding back. h
// must not be used after: it is reused.
func (t *Table) Unlock(h *Held) {
	t.mu.Lock()
	defer t.mu.Unlock()
	i := slices.Index(t.queue, h)
	if i < 0 {
		return // not held: unlocked twice
	}
	t.queue = slices.Delete(t.queue, i, i+1)
	if h.exclusive {
		t.exclusive--
	}
	*h = Held{}
	t.free = append(t.free, h)
	for i, o := range t.queue {
		if !o.granted && t.grantable(o, i) {
			o.granted = true
			close(o.ready)
		}
	}
}

// Len returns the number of held and waiting locks.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.queue)
}
