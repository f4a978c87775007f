package iscsi

import "github.com/rbdgw/rbdgw/gateway/internal/pdu"

// send queues PDUs for the writer. They are handed over when the loop is
// done with the events at hand (flushOut), so responses produced together
// leave in one write.
func (c *conn) send(items ...outItem) {
	c.ffp.out = append(c.ffp.out, items...)
}

// sendOwn queues an item whose PDU the caller encodes into the returned
// pointer, which is valid until the next send.
func (c *conn) sendOwn() *pdu.PDU {
	f := &c.ffp
	f.out = append(f.out, outItem{own: true})
	return &f.out[len(f.out)-1].hdr
}

// flushOut hands the queued PDUs to the writer. An initiator that provokes
// more control responses than it reads loses the connection.
func (c *conn) flushOut() {
	f := &c.ffp
	if len(f.out) == 0 {
		return
	}
	ok := f.q.push(f.out...)
	clear(f.out)
	f.out = f.out[:0]
	if !ok {
		c.log.Warn("send queue overloaded or closed, dropping connection")
		f.exit = exitNow
	}
}

// flushDirect hands the queued PDUs over like flushOut, except that when
// the writer goroutine is idle and nothing waits for it, the goroutine
// holding the loop writes them itself: handing them over would cost a
// goroutine wake-up per batch. It never waits for the socket: what the
// socket does not take now, the writer goroutine finishes
// (sendQueue.unfinished), so an initiator that stops reading holds up
// neither the loop nor the goroutine delivering the storage's completions
// (EndBatch). A stream that cannot be written without waiting (not a
// rawsock.Conn) always goes through the writer goroutine.
func (c *conn) flushDirect() {
	f := &c.ffp
	if len(f.out) == 0 {
		return
	}
	if f.exit != exitNone || !c.wr.CanTryWrite() || !f.q.tryOwn() {
		c.flushOut()
		return
	}
	items := f.out
	f.out, f.outSpare = f.outSpare[:0], nil
	whole, err := f.q.tryWriteOwned(c.wr, items)
	if whole {
		clear(items)
		f.outSpare = items[:0]
	}
	if err != nil {
		c.log.Info("write failed", "err", err)
		f.exit = exitNow
	}
}

// sendControl queues a response the initiator can provoke outside the
// CmdSN window.
func (c *conn) sendControl(p *pdu.PDU, release *pdu.PDU) {
	c.send(outItem{p: p, release: release, control: true})
}

// reject answers a PDU with a Reject carrying its header. StatSN advances
// after a Reject.
func (c *conn) reject(reason uint8, bhs *pdu.BHS) {
	f := &c.ffp
	w := &c.sess.window
	// A copy: the received PDU goes back to its pool before the Reject
	// is written.
	hdr := *bhs
	r := pdu.Reject{
		Reason: reason, StatSN: f.statSN, ExpCmdSN: w.expCmdSN, MaxCmdSN: w.maxCmdSN,
		Header: hdr[:],
	}
	f.statSN++
	c.sendControl(r.Encode(), nil)
}

// sendAsync queues an Async Message. StatSN advances after it.
func (c *conn) sendAsync(event uint8, p2, p3 uint16) {
	f := &c.ffp
	w := &c.sess.window
	a := pdu.AsyncMsg{
		StatSN: f.statSN, ExpCmdSN: w.expCmdSN, MaxCmdSN: w.maxCmdSN,
		AsyncEvent: event, Parameter2: p2, Parameter3: p3,
	}
	f.statSN++
	c.send(outItem{p: a.Encode()})
}

// sendAsyncDrop announces that the target drops the session now.
func (c *conn) sendAsyncDrop() {
	c.sendAsync(pdu.AsyncEventDropAllConnections, uint16(max(c.params.DefaultTime2Wait, 0)), 0)
}
