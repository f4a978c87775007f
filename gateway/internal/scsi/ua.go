package scsi

import "slices"

// maxPendingUAs bounds the unit attentions queued for one I_T nexus on one
// logical unit; an idle initiator must not make us hold unbounded state.
const maxPendingUAs = 16

// uaPriority orders pending unit attentions. Resets come first because
// they tell the initiator that every other device state may have changed;
// an asymmetric access state change comes next because the initiator must
// re-read the port groups before it trusts the path; everything else is
// reported in arrival order.
func uaPriority(c asc) int {
	switch {
	case c.code() == 0x29:
		return 0
	case c == ascAsymmetricAccessChanged:
		return 1
	}
	return 2
}

// uaQueue is the list of unit attention conditions pending for one I_T
// nexus on one logical unit, highest priority first. It is guarded by the
// logical unit's lock.
type uaQueue struct {
	pending []asc
}

// add establishes a unit attention condition; an identical pending one is
// not repeated.
func (q *uaQueue) add(c asc) {
	if slices.Contains(q.pending, c) {
		return
	}
	i := len(q.pending)
	for i > 0 && uaPriority(q.pending[i-1]) > uaPriority(c) {
		i--
	}
	q.pending = slices.Insert(q.pending, i, c)
	if len(q.pending) > maxPendingUAs {
		// Drop the least important, most recent condition.
		q.pending = q.pending[:maxPendingUAs]
	}
}

// pop reports and clears the highest-priority pending condition.
func (q *uaQueue) pop() (asc, bool) {
	if len(q.pending) == 0 {
		return 0, false
	}
	c := q.pending[0]
	q.pending = slices.Delete(q.pending, 0, 1)
	return c, true
}

// remove clears a pending condition, if present.
func (q *uaQueue) remove(c asc) {
	q.pending = slices.DeleteFunc(q.pending, func(p asc) bool { return p == c })
}

func (q *uaQueue) len() int { return len(q.pending) }
