package iscsi

import (
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/pdu"
)

// pingState is the target-initiated NOP-In keepalive: one ping at a time;
// no matching NOP-Out within the timeout drops the connection.
type pingState struct {
	outstanding bool
	ttt         uint32
	timer       *time.Timer
}

func (p *pingState) timeout() <-chan time.Time {
	if !p.outstanding {
		return nil
	}
	return p.timer.C
}

func (p *pingState) answered() {
	p.outstanding = false
	p.timer.Stop()
}

func (p *pingState) stop() {
	if p.timer != nil {
		p.timer.Stop()
	}
}

// sendPing sends a NOP-In that solicits a NOP-Out (TTT set, ITT reserved).
// StatSN is not advanced by it.
func (c *conn) sendPing() {
	f := &c.ffp
	if f.ping.outstanding || f.logout.inProgress() {
		return
	}
	f.ping.ttt = c.nextTTT()
	w := &c.sess.window
	n := pdu.NOPIn{ITT: reservedTag, TTT: f.ping.ttt, StatSN: f.statSN, ExpCmdSN: w.expCmdSN, MaxCmdSN: w.maxCmdSN}
	c.send(outItem{p: n.Encode()})
	f.ping.outstanding = true
	if f.ping.timer == nil {
		f.ping.timer = time.NewTimer(c.srv.cfg.nopTimeout)
	} else {
		f.ping.timer.Reset(c.srv.cfg.nopTimeout)
	}
}

// handleNOPOut answers an initiator ping by echoing its data, or takes a
// NOP-Out as the answer to our ping.
func (c *conn) handleNOPOut(p *pdu.PDU, req *pdu.NOPOut) {
	f := &c.ffp
	if req.TTT != reservedTag {
		if f.ping.outstanding && req.TTT == f.ping.ttt {
			f.ping.answered()
		} else {
			c.log.Debug("NOP-Out answers no ping", "ttt", req.TTT)
		}
	}
	if req.ITT == reservedTag {
		p.Release() // no reply wanted
		return
	}
	data := req.Data
	if len(data) > c.maxSendSeg {
		data = data[:c.maxSendSeg]
	}
	w := &c.sess.window
	n := pdu.NOPIn{
		LUN: req.LUN, ITT: req.ITT, TTT: reservedTag,
		StatSN: f.statSN, ExpCmdSN: w.expCmdSN, MaxCmdSN: w.maxCmdSN, Data: data,
	}
	f.statSN++
	c.sendControl(n.Encode(), p) // p's pooled data goes back once written
}
