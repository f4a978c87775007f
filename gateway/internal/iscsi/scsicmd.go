package iscsi

import (
	"context"
	"runtime/debug"
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/pdu"
	"github.com/rbdgw/rbdgw/gateway/internal/scsi"
	"github.com/rbdgw/rbdgw/rbdbackend"
)

// completion is a task's outcome reported by its goroutine.
type completion struct {
	task     *task
	res      scsi.Result
	took     time.Duration // time spent in Execute
	panicked bool
}

// arriveCommand registers a SCSI Command as it arrives, so its Data-Out can
// be collected even before its CmdSN turn comes.
//
// immediate, when it points to a buffer, holds the immediate data in a
// command-sized buffer; the task takes it (and clears *immediate) when it
// fits.
func (c *conn) arriveCommand(r rxPDU, immediate **[]byte) {
	f := &c.ffp
	cmd := r.req.(*pdu.SCSICommand)
	// The task copies what it keeps of the PDU and of cmd (f.cmd).
	defer func() {
		f.cmd = pdu.SCSICommand{}
		recycleRx(r.p)
	}()
	if _, busy := f.tasks[cmd.ITT]; busy || cmd.ITT == reservedTag {
		c.log.Warn("SCSI command with a task tag in use", "itt", cmd.ITT)
		c.reject(pdu.RejectTaskInProgress, &r.p.BHS)
		c.consumeCmdSN(cmd.Immediate, cmd.CmdSN)
		return
	}
	if cmd.Immediate && f.immCount >= c.srv.cfg.queueDepth {
		c.reject(pdu.RejectImmCmd, &r.p.BHS)
		return
	}
	t, why := c.newTask(cmd, immediate)
	if t == nil {
		c.log.Warn("SCSI command rejected", "itt", cmd.ITT, "reason", why)
		c.reject(pdu.RejectProtocolError, &r.p.BHS)
		c.consumeCmdSN(cmd.Immediate, cmd.CmdSN)
		return
	}
	f.tasks[t.itt] = t
	c.countArrival(t)
	if t.immediate {
		f.immCount++
		c.admit(t)
		return
	}
	c.order(t.cmdSN, orderedReq{task: t})
}

// consumeCmdSN keeps the window moving past a rejected non-immediate
// command.
func (c *conn) consumeCmdSN(immediate bool, cmdSN uint32) {
	if !immediate {
		c.order(cmdSN, orderedReq{})
	}
}

// newTask builds a task and takes its immediate data. A nil task means the
// PDU breaks the negotiated rules (the reason is returned).
func (c *conn) newTask(cmd *pdu.SCSICommand, immediate **[]byte) (*task, string) {
	p := &c.params
	imm := uint32(len(cmd.Data))
	switch {
	case imm > 0 && !cmd.Write:
		return nil, "immediate data without the W bit"
	case imm > 0 && !p.ImmediateData:
		return nil, "immediate data while ImmediateData=No"
	case imm > cmd.EDTL:
		return nil, "immediate data beyond EDTL"
	case imm > uint32(p.FirstBurstLength):
		return nil, "immediate data beyond FirstBurstLength"
	case !cmd.Final && !cmd.Write:
		return nil, "unsolicited data announced without the W bit"
	case !cmd.Final && p.InitialR2T:
		return nil, "unsolicited data while InitialR2T=Yes"
	}
	t := c.takeTask()
	t.itt = cmd.ITT
	t.cmdSN = cmd.CmdSN
	t.immediate = cmd.Immediate
	t.rawLUN = cmd.LUN
	t.edtl = cmd.EDTL
	t.read = cmd.Read
	t.write = cmd.Write
	cdb := cmd.CDB // an extended CDB was allocated for the command alone
	if len(cdb) <= len(t.cdb) {
		cdb = t.cdb[:copy(t.cdb[:], cdb)]
	}
	lun, lunOK := pdu.DecodeLUN(cmd.LUN)
	attr := scsi.TaskAttr(cmd.Attr)
	t.inlineShape = len(cmd.CDB) > 0 && inlineOpcode(cmd.CDB[0]) && cmd.EDTL <= inlineMaxBytes &&
		(attr == scsi.TaskSimple || attr == scsi.TaskUntagged)
	t.cmd = scsi.Command{
		Nexus:          c.sess.nexus,
		LUN:            lun,
		CDB:            cdb,
		Attr:           attr,
		Tag:            cmd.ITT,
		ExpectedLength: cmd.EDTL,
		Read:           cmd.Read,
		Write:          cmd.Write,
	}

	// The block size, and so the Data-Out length, is the addressed LU's
	// (unknown for a LUN the session does not see, as for an absent one).
	want, known := c.sess.device.DataOutLengthLUN(c.sess.nexus, lun, cmd.CDB)
	if cmd.Write {
		// A command the SCSI layer cannot size (absent LUN, unknown
		// opcode) fails there; only a little of its data is kept.
		t.xfer = min(cmd.EDTL, maxUnsizedDataOut)
		if known {
			t.xfer = uint32(min(uint64(cmd.EDTL), uint64(max(want, 0))))
			t.outResidual = compareLengths(uint64(max(want, 0)), uint64(cmd.EDTL))
		}
	} else if known && want > 0 {
		// The CDB wants data the initiator does not send.
		t.outResidual = compareLengths(uint64(want), 0)
	}
	// No buffer beyond what the logical unit accepts in one command
	// (SBC: a transfer length above MAXIMUM TRANSFER LENGTH is an invalid
	// field in the CDB), whatever the initiator announces.
	maxXfer, luKnown := c.sess.device.MaxTransferLUN(c.sess.nexus, lun)
	switch {
	case cmd.Read && cmd.Write:
		t.failSense = senseInvalidFieldInCIU()
	case !lunOK:
		t.failSense = senseLUNNotSupported()
	case t.xfer > maxWriteBuffer, luKnown && t.xfer > maxXfer:
		t.failSense = senseInvalidFieldInCDB()
	}
	if t.failSense != nil {
		t.xfer = 0 // still read what the initiator sends, then answer
	}
	t.bud = c.bud
	if t.xfer > 0 {
		if b := *immediate; b != nil && len(*b) >= int(t.xfer) && t.adoptImmediate(b) {
			// The immediate data is already in place (store sees that).
			*immediate = nil
		}
	}
	t.store(0, cmd.Data)
	t.unsolNext = imm
	t.r2tNext = imm
	if !cmd.Final {
		t.unsolOpen = true
		t.dataSince = monoNow()
		t.unsolEnd = min(cmd.EDTL, uint32(p.FirstBurstLength))
		if t.unsolEnd <= imm {
			t.releaseBuf()
			return nil, "unsolicited data announced but no room left for it"
		}
	}
	return t, ""
}

// admit marks a task's CmdSN turn as come and moves it on.
func (c *conn) admit(t *task) {
	t.admitted = true
	c.advanceWrite(t)
}

// advanceWrite solicits missing Data-Out and executes the task once all of
// it is there. R2Ts start after the unsolicited burst so their offsets only
// grow (DataSequenceInOrder=Yes).
func (c *conn) advanceWrite(t *task) {
	if !t.admitted || t.running || t.unsolOpen || t.memWait {
		return
	}
	maxR2T := max(c.params.MaxOutstandingR2T, 1)
	burst := uint32(max(c.params.MaxBurstLength, minDataSegment))
	if len(t.r2ts) < maxR2T && t.r2tNext < t.xfer && !t.fitSolicited(t.r2tNext) {
		c.waitMem(t) // no R2T before the buffer for its data
		return
	}
	sent := false
	for len(t.r2ts) < maxR2T && t.r2tNext < t.xfer {
		r := r2tState{ttt: c.nextTTT(), offset: t.r2tNext, length: min(burst, t.xfer-t.r2tNext)}
		t.r2tNext += r.length
		t.r2ts = append(t.r2ts, r)
		if t.buf != nil {
			// Open before the R2T goes out: its Data-Out can only follow.
			c.ffp.sink.open(r.ttt, t.itt, r.offset, (*t.buf)[r.offset:r.offset+r.length])
			t.windows = append(t.windows, r.ttt)
		}
		w := &c.sess.window
		r2t := pdu.R2T{
			LUN: t.rawLUN, ITT: t.itt, TTT: r.ttt,
			StatSN: c.ffp.statSN, ExpCmdSN: w.expCmdSN, MaxCmdSN: w.maxCmdSN,
			R2TSN: t.r2tSN, BufferOffset: r.offset, DesiredLength: r.length,
		}
		r2t.EncodeTo(c.sendOwn())
		t.r2tSN++
		sent = true
	}
	if sent {
		t.dataSince = monoNow()
	}
	if len(t.r2ts) == 0 && t.r2tNext >= t.xfer {
		c.execute(t)
	}
}

// execute hands the task to the SCSI layer: it is running from now on and
// starts once the current event is handled (runReady).
func (c *conn) execute(t *task) {
	f := &c.ffp
	if t.failSense == nil && t.read && t.dataIn == nil {
		// Lend a pooled buffer for the data a READ produces, within the
		// budgets: without one the READ waits.
		n, ok := c.sess.device.ReadLengthLUN(c.sess.nexus, t.cmd.LUN, t.cmd.CDB)
		if n = min(n, int(t.edtl), maxWriteBuffer); ok && n > 0 && !t.lendDataIn(n) {
			c.waitMem(t)
			return
		}
	}
	t.running = true
	f.running++
	if t.failSense != nil {
		c.dropBuf(t)
		status, sense := t.failStatus, t.failSense
		if status == scsi.StatusGood {
			status = scsi.StatusCheckCondition
		}
		if len(sense) == 0 {
			sense = nil
		}
		c.handleCompletion(completion{task: t, res: scsi.Result{Status: status, Sense: sense}})
		return
	}
	c.closeWindows(t) // all complete: the reader is done with the buffer
	t.execBuf, t.execGranted, t.buf = t.buf, t.bufGranted, nil
	if t.execBuf != nil {
		t.cmd.DataOut = (*t.execBuf)[:t.xfer]
	}
	f.ready.push(t)
}

// runReady starts the ready tasks: inline when their LU answers fast,
// otherwise on their own goroutines. It reports false when an inline task
// stalled and the loop went on without this goroutine.
func (c *conn) runReady() bool {
	f := &c.ffp
	for {
		// Popped before it runs, so a loop that takes over finds exactly
		// the tasks still to start.
		t := f.ready.pop()
		if t == nil {
			return true
		}
		if f.exit != exitNone || t.abortRequested || !c.runsInline(t) {
			f.taskWG.Add(1)
			if !t.abortRequested && c.start(t) {
				continue
			}
			t.ctx, t.cancel = context.WithCancel(f.ctx)
			if t.abortRequested {
				t.cancel()
			}
			select {
			case f.workers <- t:
			default:
				go c.taskWorker(t)
			}
			continue
		}
		t.ctx = f.ctx
		if !c.runInline(t) {
			return false
		}
	}
}

// start asks the SCSI layer to start t without a goroutine waiting for
// it: a READ or WRITE of an RBD image is submitted from here, and its
// completion comes back through Done. It reports false when t must run
// on a goroutine of its own.
//
// A started task has no context of its own to cancel (startCtx): it is
// in its LU's task set once Start returns, so the SCSI layer's abort,
// which task management and abortAll call for every running task, reaches
// it.
func (c *conn) start(t *task) bool {
	t.conn = c
	t.startedAt = monoNow()
	t.ctx = c.ffp.startCtx
	if !c.sess.device.Start(t.ctx, &t.cmd, t) {
		t.ctx = nil
		return false
	}
	c.srv.asyncStarts.Add(1)
	return true
}

// Done hands the result of a task started by start to the serve loop
// (scsi.Completion). It runs on the goroutine that delivers the storage's
// completions, so it never waits for the loop: when the loop is idle it
// answers the command itself (answerCompletion), else it queues the result
// for the loop.
func (t *task) Done(res scsi.Result, b *rbdbackend.Batch) {
	c, f := t.conn, &t.conn.ffp
	m := completion{task: t, res: res, took: time.Duration(monoNow() - t.startedAt)}
	t.releaseExec()
	f.baton.relieve()
	if f.loopMu.TryLock() {
		// Answering here saves waking the serve goroutine: a goroutine
		// readied, and with a P idle a second thread woken to look for
		// work.
		f.taskWG.Done()
		c.srv.directAnswers.Add(1)
		c.answerCompletion(m, b)
		return
	}
	select {
	case f.completions <- m:
		f.taskWG.Done()
	default:
		go c.reportCompletion(m) // the loop is behind: wait beside it
	}
}

// answerCompletion does the loop's work for one completion on the
// goroutine that delivered it, which holds loopMu, and lets go of the
// loop. The response is written at the end of the batch b (EndBatch), so
// that the completions of one batch are answered with one write; what
// needs more (commands made ready, the connection's end) is left to the
// serve goroutine.
func (c *conn) answerCompletion(m completion, b *rbdbackend.Batch) {
	f := &c.ffp
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("panic answering a completion", "panic", r, "stack", string(debug.Stack()))
			f.exit = exitNow
		}
		c.leaveLoop()
		b.After(c)
	}()
	c.handleCompletion(m)
	c.reuseTasks()
}

// EndBatch writes what answerCompletion left for the end of a batch of
// completions (rbdbackend.BatchEnder), without waiting for the socket.
// When the loop is busy, its holder writes it when done.
func (c *conn) EndBatch() {
	if c.ffp.loopMu.TryLock() {
		c.flushDirect()
		c.leaveLoop()
	}
}

// leaveLoop lets go of the loop held off the serve goroutine for a
// completion, waking the serve goroutine for what only it does: starting
// the commands made ready and ending the connection.
func (c *conn) leaveLoop() {
	f := &c.ffp
	if f.exit != exitNone || f.ready.len() > 0 {
		c.wakeLoop()
	}
	f.loopMu.Unlock()
}

// runsInline reports whether t runs on the serve loop (see inline.go).
func (c *conn) runsInline(t *task) bool {
	if !t.inlineShape {
		return false
	}
	l := c.ffp.latency[t.cmd.LUN]
	return l != nil && l.fast(c.srv.cfg.inlineLatency)
}

// runInline executes t on the goroutine holding the loop. If t stalls and
// another goroutine takes the loop over, this one reports t's completion
// like a task goroutine and returns false: it owns no state any more.
func (c *conn) runInline(t *task) bool {
	f := &c.ffp
	f.taskWG.Add(1)
	c.srv.inlineRuns.Add(1)
	token := f.baton.begin()
	m := c.executeTask(t)
	if !f.baton.end(token) {
		c.reportCompletion(m)
		return false
	}
	f.taskWG.Done()
	c.handleCompletion(m)
	return true
}

// taskWorker runs t, then the tasks runReady hands it while it waits, until
// the loop stops or maxIdleWorkers others wait already. A goroutine kept
// this way keeps the stack its commands grew (a new goroutine per command
// grows a small one again each time).
func (c *conn) taskWorker(t *task) {
	f := &c.ffp
	for {
		c.reportCompletion(c.executeTask(t))
		if f.idleWorkers.Add(1) > maxIdleWorkers {
			f.idleWorkers.Add(-1)
			return
		}
		select {
		case t = <-f.workers:
			f.idleWorkers.Add(-1)
		case <-f.loopDone:
			return
		}
	}
}

// executeTask runs t in the SCSI layer. Only t.cmd, t.ctx and t.execBuf
// are touched: the goroutine running it may not own the loop's state.
func (c *conn) executeTask(t *task) completion {
	if t.cancel != nil {
		defer t.cancel()
	}
	m := completion{task: t}
	start := monoNow()
	func() {
		defer func() {
			if r := recover(); r != nil {
				c.log.Error("panic executing SCSI command", "panic", r, "itt", t.itt, "stack", string(debug.Stack()))
				m.panicked = true
			}
		}()
		m.res = c.sess.device.Execute(t.ctx, &t.cmd)
	}()
	m.took = time.Duration(monoNow() - start)
	// The SCSI layer is done with DataOut once Execute returned.
	t.releaseExec()
	return m
}

// reportCompletion hands a task's outcome to the serve loop.
func (c *conn) reportCompletion(m completion) {
	f := &c.ffp
	defer f.taskWG.Done()
	f.baton.relieve()
	select {
	case f.completions <- m:
	case <-f.loopDone:
	}
}

// handleCompletion turns a finished task into its response, unless task
// management aborted it.
func (c *conn) handleCompletion(m completion) {
	f := &c.ffp
	t := m.task
	f.running--
	if m.panicked {
		f.exit = exitNow
		return
	}
	if t.inlineShape && !m.res.Aborted {
		c.noteLatency(t.cmd.LUN, m.took)
	}
	if m.res.Aborted {
		// An abandoned read may still be filling the buffer: it must not
		// be reused.
		t.dropDataIn()
	}
	c.removeTask(t)
	if t.dataFailed {
		f.stale.add(t.itt)
	}
	res := m.res
	switch {
	case res.Aborted && !res.TaskAbortedStatus:
		f.stale.add(t.itt) // no response (TAS=0)
	case res.Aborted:
		c.sendResponse(t, scsi.Result{Status: scsi.StatusTaskAborted}, residual{}, 0)
	default:
		c.sendResult(t, res)
	}
	c.countCompletion(t, &m)
	for _, op := range t.tmfs {
		c.settleTMF(op, t, res.Aborted)
	}
	c.maybeFinishLogout()
	c.finishTask(t)
}

// removeTask frees a task's tag and window slot.
func (c *conn) removeTask(t *task) {
	f := &c.ffp
	if f.tasks[t.itt] == t {
		delete(f.tasks, t.itt)
	}
	if t.immediate {
		f.immCount--
	} else if t.admitted {
		c.sess.window.completed()
	}
}

// forgetTask drops a task that never ran.
func (c *conn) forgetTask(t *task) {
	c.countGone(t)
	t.memWait = false // budgetWake skips it
	c.dropBuf(t)
	t.r2ts = nil
	c.removeTask(t)
}

// abortLocal aborts a task the SCSI layer has not seen yet: it is waiting
// for its CmdSN turn or for Data-Out. A task still waiting for its turn
// leaves its CmdSN behind as consumed.
func (c *conn) abortLocal(t *task) {
	if !t.admitted && !t.immediate {
		w := &c.sess.window
		if o, ok := w.pending[t.cmdSN]; ok && o.task == t {
			w.pending[t.cmdSN] = orderedReq{}
		}
	}
	c.forgetTask(t)
	c.ffp.stale.add(t.itt)
	for _, op := range t.tmfs {
		c.settleTMF(op, t, true)
	}
}

// sendResult sends Data-In and status for a completed command: status rides
// on the last Data-In (S bit) when it is GOOD, otherwise a SCSI Response
// carries it with the sense data.
func (c *conn) sendResult(t *task, res scsi.Result) {
	data := res.Data
	n := 0
	if t.read {
		n = min(len(data), int(t.edtl))
	}
	resid := t.dataInResidual(len(data))
	collapse := n > 0 && res.Status == scsi.StatusGood && len(res.Sense) == 0
	pdus := 0
	if n > 0 {
		pdus = c.sendDataIn(t, data[:n], collapse, res.Status, resid)
	}
	if !collapse {
		c.sendResponse(t, res, resid, uint32(pdus)+t.r2tSN)
	}
	// The lent Data-In buffer goes back to the pool, and its charge to the
	// budget, once the last PDU of the command is written.
	if t.dataIn != nil {
		last := &c.ffp.out[len(c.ffp.out)-1]
		last.buf, last.bud, t.dataIn = t.dataIn, t.bud, nil
	}
}

// sendDataIn cuts data into Data-In PDUs of at most the initiator's
// MaxRecvDataSegmentLength, in sequences of at most MaxBurstLength (F bit
// at the end of each), and returns how many it queued.
func (c *conn) sendDataIn(t *task, data []byte, withStatus bool, status scsi.Status, resid residual) int {
	f := &c.ffp
	w := &c.sess.window
	seg := c.maxSendSeg
	burst := max(c.params.MaxBurstLength, seg)
	dataSN := uint32(0)
	for b := 0; b < len(data); b += burst {
		bEnd := min(b+burst, len(data))
		for off := b; off < bEnd; off += seg {
			end := min(off+seg, bEnd)
			d := pdu.DataIn{
				Final: end == bEnd, LUN: t.rawLUN, ITT: t.itt, TTT: reservedTag,
				ExpCmdSN: w.expCmdSN, MaxCmdSN: w.maxCmdSN,
				DataSN: dataSN, BufferOffset: uint32(off), Data: data[off:end],
			}
			if withStatus && end == len(data) {
				d.HasStatus, d.Status = true, uint8(status)
				d.Overflow, d.Underflow, d.Residual = resid.over, resid.under, resid.count
				d.StatSN = f.statSN
				f.statSN++
			}
			dataSN++
			d.EncodeTo(c.sendOwn())
		}
	}
	return int(dataSN)
}

// sendResponse queues a SCSI Response.
func (c *conn) sendResponse(t *task, res scsi.Result, resid residual, expDataSN uint32) {
	f := &c.ffp
	w := &c.sess.window
	r := pdu.SCSIResponse{
		Overflow: resid.over, Underflow: resid.under, Residual: resid.count,
		Response: pdu.ResponseCompleted, Status: uint8(res.Status),
		ITT: t.itt, StatSN: f.statSN, ExpCmdSN: w.expCmdSN, MaxCmdSN: w.maxCmdSN,
		ExpDataSN: expDataSN, Sense: res.Sense,
	}
	f.statSN++
	r.EncodeTo(c.sendOwn())
}

// handleDataOut routes a Data-Out PDU to its task.
func (c *conn) handleDataOut(p *pdu.PDU) {
	f := &c.ffp
	d := &f.dout
	defer func() {
		*d = pdu.DataOut{}
		recycleRx(p)
	}()
	if err := pdu.ParseDataOutInto(p, d); err != nil {
		c.log.Warn("malformed Data-Out", "err", err)
		c.reject(pdu.RejectProtocolError, &p.BHS)
		return
	}
	t := f.tasks[d.ITT]
	if t == nil || t.running || !t.expectsData() {
		if f.stale.has(d.ITT) {
			return // data already in flight when the task ended
		}
		c.log.Warn("Data-Out for no task expecting data", "itt", d.ITT, "ttt", d.TTT)
		c.reject(pdu.RejectInvalidPDUField, &p.BHS)
		return
	}
	verdict, why := t.acceptDataOut(d, uint32(c.params.FirstBurstLength))
	t.dataSince = monoNow()
	c.syncWindows(t)
	switch verdict {
	case dataOutBadTag:
		c.log.Warn("Data-Out rejected", "itt", d.ITT, "ttt", d.TTT, "reason", why)
		c.reject(pdu.RejectInvalidPDUField, &p.BHS)
	case dataOutFailed:
		c.log.Warn("Data-Out error, terminating the command", "itt", d.ITT,
			"datasn", d.DataSN, "offset", d.BufferOffset, "reason", why)
		c.advanceWrite(t)
	default:
		c.advanceWrite(t)
	}
}

// dataOutDigestError handles a Data-Out whose data digest failed: the PDU
// is rejected (RFC 7143 section 7.8) and its command terminated with a
// PROTOCOL SERVICE CRC ERROR once the rest of its data has arrived.
func (c *conn) dataOutDigestError(p *pdu.PDU) {
	d, err := pdu.ParseDataOut(p)
	if err != nil {
		return
	}
	if t := c.ffp.tasks[d.ITT]; t != nil && !t.running && t.expectsData() {
		t.failData(senseProtocolCRC())
		t.drain(d)
		c.syncWindows(t)
		c.advanceWrite(t)
	}
}

// abortAll ends every task when the connection goes. Tasks inside the SCSI
// layer are aborted there and waited for, so that no command runs once the
// nexus is logged out or the session moved to another connection.
func (c *conn) abortAll() {
	f := &c.ffp
	f.cancel() // the SCSI layer aborts what it is still waiting on
	for _, t := range f.tasks {
		c.countGone(t)
		if !t.running {
			c.dropBuf(t)
			continue
		}
		// Returns once the task stopped touching the medium.
		lun, tag := t.cmd.LUN, t.itt
		c.sess.nexusCall("TaskManagement", func() {
			c.sess.device.TaskManagement(c.sess.nexus, scsi.TMFAbortTask, lun, tag)
		})
	}
	clear(f.tasks)
	f.taskWG.Wait()
}
