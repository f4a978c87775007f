package iscsi

import (
	"runtime/debug"

	"github.com/rbdgw/rbdgw/gateway/config"
	"github.com/rbdgw/rbdgw/gateway/internal/pdu"
	"github.com/rbdgw/rbdgw/gateway/internal/scsi"
)

// tmfOp is a task management request waiting until the fate of every task
// it affects is settled: its response goes out after theirs (or after
// their silent abort), never before.
type tmfOp struct {
	req      *pdu.TaskMgmtReq
	fn       scsi.TMFunction
	pending  int // tasks still running plus the SCSI layer call
	scsiResp scsi.TMFResponse

	// ABORT TASK: whether the referenced task ended aborted.
	abortTask        *task
	abortTaskAborted bool
	// called: the SCSI layer part runs on a goroutine (counted in
	// ffpState.tmfs until the response).
	called bool
}

type tmfResult struct {
	op       *tmfOp
	resp     scsi.TMFResponse
	panicked bool
}

// handleTMF starts a task management function.
func (c *conn) handleTMF(req *pdu.TaskMgmtReq) {
	f := &c.ffp
	op := &tmfOp{req: req, fn: scsi.TMFunction(req.Function)}
	lun, lunOK := pdu.DecodeLUN(req.LUN)
	if f.tmfs >= maxTMFs {
		// Immediate TMFs bypass the command window and each waits on a
		// goroutine: a bounded number at a time.
		c.log.Warn("too many task management functions in progress, rejected", "function", req.Function, "limit", maxTMFs)
		c.tmfRespond(req, scsi.TMFRejected)
		return
	}
	switch op.fn {
	case scsi.TMFAbortTask:
		t := f.tasks[req.RefTaskTag]
		if t == nil {
			c.tmfRespond(req, c.abortMissing(req))
			return
		}
		if !t.running {
			c.abortLocal(t)
			c.tmfRespond(req, scsi.TMFComplete)
			return
		}
		op.abortTask = t
		t.cancelTask()
		op.pending++
		t.tmfs = append(t.tmfs, op)
		c.callTMF(op, t.cmd.LUN, t.itt)
	case scsi.TMFAbortTaskSet, scsi.TMFClearTaskSet, scsi.TMFLUReset:
		if !lunOK {
			c.tmfRespond(req, scsi.TMFLUNNotExist)
			return
		}
		c.abortTasks(op, func(t *task) bool { return t.cmd.LUN == lun })
		c.callTMF(op, lun, 0)
	case scsi.TMFTargetWarmReset, scsi.TMFTargetColdReset:
		// Which nexuses a target reset may reach is the gateway's policy
		// (docs/adr/0006-target-resets.md).
		if c.srv.cfg.targetReset == config.TargetResetRefuse {
			c.log.Warn("target reset refused (target_reset: refuse)", "function", req.Function)
			c.tmfRespond(req, scsi.TMFAuthFailed)
			return
		}
		c.abortTasks(op, func(*task) bool { return true })
		c.callTMF(op, 0, 0)
	case scsi.TMFClearACA:
		if !lunOK {
			c.tmfRespond(req, scsi.TMFLUNNotExist)
			return
		}
		c.callTMF(op, lun, 0)
	case scsi.TMFTaskReassign:
		// Task reassignment needs ErrorRecoveryLevel 2.
		c.tmfRespond(req, scsi.TMFReassignUnsupported)
	default:
		c.tmfRespond(req, scsi.TMFRejected)
	}
}

// abortMissing answers ABORT TASK for a tag with no task. A command whose
// CmdSN lies in the window before the TMF's but has not arrived is taken as
// received and aborted, so it is ignored when it comes (RFC 7143 section
// 11.5.1); otherwise the task does not exist.
func (c *conn) abortMissing(req *pdu.TaskMgmtReq) scsi.TMFResponse {
	w := &c.sess.window
	if w.inWindow(req.RefCmdSN) && snLess(req.RefCmdSN, req.CmdSN) {
		if _, waiting := w.pending[req.RefCmdSN]; !waiting {
			c.order(req.RefCmdSN, orderedReq{})
			return scsi.TMFComplete
		}
	}
	return scsi.TMFTaskNotExist
}

// abortTasks aborts the matching tasks the initiator issued before the
// TMF: at once those the SCSI layer has not seen, the running ones through
// the SCSI layer (op waits for them).
func (c *conn) abortTasks(op *tmfOp, match func(*task) bool) {
	for _, t := range c.ffp.tasks {
		if !match(t) || !t.immediate && !snLess(t.cmdSN, op.req.CmdSN) {
			continue
		}
		if !t.running {
			c.abortLocal(t)
			continue
		}
		t.cancelTask()
		op.pending++
		t.tmfs = append(t.tmfs, op)
	}
}

// callTMF runs the SCSI layer part of a TMF on its own goroutine: it may
// wait for running commands.
func (c *conn) callTMF(op *tmfOp, lun uint64, tag uint32) {
	f := &c.ffp
	op.pending++
	if !op.called {
		op.called = true
		f.tmfs++
	}
	f.taskWG.Add(1)
	ss := c.sess
	go func() {
		defer f.taskWG.Done()
		r := tmfResult{op: op}
		func() {
			defer func() {
				if p := recover(); p != nil {
					c.log.Error("panic in task management", "panic", p, "stack", string(debug.Stack()))
					r.panicked = true
				}
			}()
			r.resp = ss.device.TaskManagement(ss.nexus, op.fn, lun, tag)
		}()
		select {
		case f.tmfResults <- r:
		case <-f.loopDone:
		}
	}()
}

func (c *conn) handleTMFResult(r tmfResult) {
	if r.panicked {
		c.ffp.exit = exitNow
		return
	}
	r.op.scsiResp = r.resp
	c.tmfStep(r.op)
}

// settleTMF records that a task op waited for has ended.
func (c *conn) settleTMF(op *tmfOp, t *task, aborted bool) {
	if op.abortTask == t {
		op.abortTaskAborted = aborted
	}
	c.tmfStep(op)
}

func (c *conn) tmfStep(op *tmfOp) {
	op.pending--
	if op.pending > 0 {
		return
	}
	resp := op.scsiResp
	if op.fn == scsi.TMFAbortTask {
		// What the initiator saw decides: a task that answered was not
		// aborted, whatever the SCSI layer found.
		switch {
		case op.abortTaskAborted:
			resp = scsi.TMFComplete
		case resp == scsi.TMFComplete:
			resp = scsi.TMFTaskNotExist
		}
	}
	if op.called {
		c.ffp.tmfs--
	}
	done := c.tmfRespond(op.req, resp)
	if op.fn == scsi.TMFTargetColdReset && resp == scsi.TMFComplete && c.sess.target != nil {
		// A cold reset ends the issuing session once the response is on
		// the wire; with target_reset: target every session of the
		// target.
		iqn := c.sess.target.spec.IQN
		srv, ss, connDone := c.srv, c.sess, c.done
		everyone := srv.cfg.targetReset == config.TargetResetTarget
		go func() {
			select {
			case <-done:
			case <-connDone:
			}
			if everyone {
				srv.closeTargetSessions(iqn, "target cold reset")
			} else {
				ss.drop("target cold reset")
			}
		}()
	}
}

// tmfRespond queues a Task Management Function Response; the returned
// channel closes once it was written.
func (c *conn) tmfRespond(req *pdu.TaskMgmtReq, resp scsi.TMFResponse) chan struct{} {
	f := &c.ffp
	w := &c.sess.window
	r := pdu.TaskMgmtResp{
		Response: uint8(resp), ITT: req.ITT,
		StatSN: f.statSN, ExpCmdSN: w.expCmdSN, MaxCmdSN: w.maxCmdSN,
	}
	f.statSN++
	done := make(chan struct{})
	// Immediate TMFs take no window slot: their responses count against
	// the bound of what an initiator may leave unread (maxQueuedControl).
	c.send(outItem{p: r.Encode(), done: done, control: req.Immediate})
	c.log.Info("task management", "function", req.Function, "lun", req.LUN,
		"ref_itt", req.RefTaskTag, "response", uint8(resp))
	return done
}
