package iscsi

import "github.com/rbdgw/rbdgw/gateway/internal/pdu"

// Command buffers and their budget (budget.go). A WRITE's buffer is taken
// when its data starts to arrive or when the target solicits it, never for
// a bare header; a READ's Data-In buffer just before it runs.

// bufCost is what getWriteBuf(n) charges: its pool class size.
func bufCost(n int) int64 {
	return int64(1) << (bufClass(n) + minBufShift)
}

// fitArrived makes buf hold [0, end) for data that arrived at off (after
// the data before it). A buffer for the whole transfer is granted when
// both budgets have room for it, so the command needs no other; else the
// buffer grows to what arrived, at most doubling, charged against the
// gateway's hard limit. It reports false when not even that is possible.
func (t *task) fitArrived(end, off uint32) bool {
	if t.buf != nil && uint32(len(*t.buf)) >= end {
		return true
	}
	if t.buf == nil && t.bud.tryGrant(bufCost(int(t.xfer))) {
		t.buf, t.bufGranted = getWriteBuf(int(t.xfer)), true
		return true
	}
	n := end
	if t.buf != nil {
		n = max(end, min(t.xfer, 2*uint32(len(*t.buf))))
	}
	nb := getWriteBuf(int(n))
	if !t.bud.charge(bufCharge(nb)) {
		putWriteBuf(nb)
		return false
	}
	t.replaceBuf(nb, off, false)
	return true
}

// fitSolicited makes buf hold the whole transfer before R2Ts ask for it. It
// reports false when the budgets have no room: the task then waits for a
// release (memWait).
func (t *task) fitSolicited(keep uint32) bool {
	if t.buf != nil && uint32(len(*t.buf)) >= t.xfer {
		return true
	}
	if !t.bud.grant(bufCost(int(t.xfer))) {
		return false
	}
	t.replaceBuf(getWriteBuf(int(t.xfer)), keep, true)
	return true
}

// replaceBuf moves the first keep bytes into nb, which becomes buf, and
// gives the old buffer back. Growth happens only while no dataSink window
// of the task is open, so the reader never holds the old one.
func (t *task) replaceBuf(nb *[]byte, keep uint32, granted bool) {
	if old := t.buf; old != nil {
		copy(*nb, (*old)[:min(int(keep), len(*old))])
		t.bud.release(bufCharge(old), t.bufGranted)
		putWriteBuf(old)
	}
	t.buf, t.bufGranted = nb, granted
}

// adoptImmediate takes the buffer the reader filled with the command's
// immediate data (immediateBuffer), charged as arrived data.
func (t *task) adoptImmediate(b *[]byte) bool {
	if !t.bud.charge(bufCharge(b)) {
		return false
	}
	t.buf, t.bufGranted = b, false
	return true
}

// releaseBuf gives buf back with its charge; a buffer the reader may still
// be writing into (bufLost) is left to the garbage collector.
func (t *task) releaseBuf() {
	if t.buf == nil {
		return
	}
	t.bud.release(bufCharge(t.buf), t.bufGranted)
	if !t.bufLost {
		putWriteBuf(t.buf)
	}
	t.buf = nil
}

// releaseExec gives the buffer back that backed cmd.DataOut (any
// goroutine: the one that ran the task).
func (t *task) releaseExec() {
	if t.execBuf == nil {
		return
	}
	t.bud.release(bufCharge(t.execBuf), t.execGranted)
	putWriteBuf(t.execBuf)
	t.execBuf = nil
}

// lendDataIn grants the buffer a READ's data goes into, n bytes. It
// reports false when the budgets have no room (the task waits).
func (t *task) lendDataIn(n int) bool {
	if !t.bud.grant(bufCost(n)) {
		return false
	}
	t.dataIn = getWriteBuf(n)
	t.cmd.DataIn = (*t.dataIn)[:0]
	return true
}

// dropDataIn forgets the Data-In buffer of an aborted READ, which may
// still be filling it: its charge goes back, the buffer to the garbage
// collector.
func (t *task) dropDataIn() {
	if t.dataIn != nil {
		t.bud.release(bufCharge(t.dataIn), true)
		t.dataIn = nil
	}
}

// waitMem parks a task until buffers come back (budgetWake retries it).
func (c *conn) waitMem(t *task) {
	if !t.memWait {
		t.memWait = true
		t.memQueued = true
		c.ffp.memWait = append(c.ffp.memWait, t)
	}
}

// budgetWake runs when buffers came back while the connection waited:
// the window moves on (a NOP-In says so when nothing else would) and the
// tasks waiting for buffers are retried in arrival order, until the first
// that still finds none.
func (c *conn) budgetWake() {
	f := &c.ffp
	c.bud.woken()
	w := &c.sess.window
	before := w.maxCmdSN
	w.refresh()
	q := f.memWait
	f.memWait = nil
	for i, t := range q {
		if !t.memWait {
			continue // aborted meanwhile
		}
		t.memWait = false
		c.advanceWrite(t)
		if t.memWait {
			f.memWait = append(f.memWait, q[i+1:]...)
			break
		}
	}
	if w.maxCmdSN != before {
		c.windowUpdate()
	}
}

// windowUpdate tells the initiator that MaxCmdSN moved when no response
// would: a NOP-In with both tags reserved, which asks for no answer and
// does not advance StatSN (RFC 7143 section 11.19).
func (c *conn) windowUpdate() {
	f := &c.ffp
	w := &c.sess.window
	n := pdu.NOPIn{ITT: reservedTag, TTT: reservedTag, StatSN: f.statSN, ExpCmdSN: w.expCmdSN, MaxCmdSN: w.maxCmdSN}
	c.send(outItem{p: n.Encode()})
}
