package iscsi

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/pdu"
)

// reservedTag is the "no tag" value of ITT and TTT fields.
const reservedTag = 0xffffffff

// ffpState is the full feature phase state of a connection. Everything but
// the channels and wait groups is owned by the serve loop: by whichever
// goroutine holds loopMu.
type ffpState struct {
	// loopMu is held by the goroutine doing the loop's work: the serve
	// loop goroutine, except while it waits for events; the reader, which
	// handles what it read itself when the loop is idle (saving a
	// goroutine wake-up per PDU); or the goroutine delivering a started
	// command's completion, which answers it itself when the loop is idle
	// (task.Done). A takeover (loopBaton) passes it on.
	loopMu sync.Mutex
	// readerHolds is set while the reader holds loopMu, so that a
	// takeover knows to start a new reader rather than a new loop.
	readerHolds atomic.Bool
	// wake tells the serve loop goroutine to take loopMu: PDUs wait in rx
	// that the reader could not handle, or the reader set exit.
	wake chan struct{}

	started     bool
	exit        exitMode
	logoutClean bool // the session ends by logout, not by failure

	rx          chan rxItem
	completions chan completion
	// workers hands a task to a task goroutine idle since its last one
	// (taskWorker); idleWorkers counts those.
	workers     chan *task
	idleWorkers atomic.Int32
	tmfResults  chan tmfResult
	loopDone    chan struct{} // closed when the loop stops reading the channels
	stopIO      chan struct{} // closed to stop the reader and writer
	writerDead  chan struct{} // closed when the writer goroutine returns
	q           *sendQueue
	ioWG        sync.WaitGroup
	taskWG      sync.WaitGroup
	ctx         context.Context
	cancel      context.CancelFunc
	// startCtx is what commands started without a goroutine run under
	// (start): never cancelled, so the SCSI layer registers nothing per
	// command to watch it. Task management and abortAll abort those
	// commands through the SCSI layer's own abort instead.
	startCtx context.Context

	// ready holds commands handed to the SCSI layer while the current event
	// was handled; the loop starts them before it waits again.
	ready taskQueue
	sink  dataSink  // shared with the reader goroutine
	out   []outItem // PDUs for the writer, handed over by flushOut
	// outSpare is out's other backing array: flushDirect writes one while
	// out fills the other.
	outSpare []outItem
	baton    loopBaton
	latency  map[uint64]*lunLatency // Execute times per LUN
	nopTick  *time.Ticker

	// lunStats caches the metrics counters of each LUN (metrics.go).
	lunStats lunStatsCache

	statSN       uint32
	warnedStatSN bool
	lastTTT      uint32
	tasks        map[uint32]*task
	immCount     int // immediate SCSI commands not yet completed
	running      int // tasks inside the SCSI layer
	stale        staleTags
	text         textExchange
	ping         pingState
	logout       logoutState

	// cmd and dout hold the SCSI Command or Data-Out being handled, so
	// that decoding them allocates nothing; nothing keeps them past it.
	cmd  pdu.SCSICommand
	dout pdu.DataOut
	// finished holds the tasks that ended since the top of the loop,
	// freeTasks those ready for reuse (task.go).
	finished  []*task
	freeTasks []*task

	// memWait holds tasks waiting for a buffer grant (cmdbuf.go), in
	// arrival order.
	memWait []*task
	// stallTick drives the Data-Out timeout and the discovery idle
	// timeout (stall.go); lastRx is monoNow() of the last PDU received.
	stallTick *time.Ticker
	lastRx    int64
	// tmfs counts task management functions in progress (maxTMFs).
	tmfs int
}

// rxItem is what the reader hands to the serve loop. buf, when set, is a
// command-sized buffer holding a WRITE's immediate data (p.Data aliases
// it), for its task to adopt.
type rxItem struct {
	p   *pdu.PDU
	err error
	buf *[]byte
}

func (in rxItem) release() {
	in.p.Release()
	putWriteBuf(in.buf)
	if in.err == nil {
		return
	}
	var dd *pdu.DataDigestError
	if errors.As(in.err, &dd) {
		dd.PDU.Release()
	}
}

// isDataDigestError reports a PDU whose data was damaged but whose framing
// holds: reading can go on.
func isDataDigestError(err error) bool {
	var dd *pdu.DataDigestError
	return errors.As(err, &dd)
}

// startFFP switches digests and segment limits on, exactly before the first
// full feature phase PDU, and starts the reader and writer goroutines.
func (c *conn) startFFP() {
	p := &c.params
	c.rd.SetHeaderDigest(p.HeaderDigest)
	c.rd.SetDataDigest(p.DataDigest)
	c.wr.SetHeaderDigest(p.HeaderDigest)
	c.wr.SetDataDigest(p.DataDigest)
	c.rd.SetMaxDataSegmentLength(clamp(p.TargetMaxRecvDataSegmentLength, minDataSegment, maxDataSegment))
	c.rd.SetBufferSize(ffpReadBuffer)

	f := &c.ffp
	f.rx = make(chan rxItem, 32)
	f.wake = make(chan struct{}, 1)
	f.completions = make(chan completion, 32)
	f.workers = make(chan *task)
	f.tmfResults = make(chan tmfResult, 4)
	f.loopDone = make(chan struct{})
	f.stopIO = make(chan struct{})
	f.writerDead = make(chan struct{})
	f.q = newSendQueue()
	f.ctx, f.cancel = context.WithCancel(context.Background())
	f.startCtx = context.WithoutCancel(f.ctx)
	f.tasks = make(map[uint32]*task)
	f.latency = make(map[uint64]*lunLatency)
	f.baton.resume = c.resumeLoop
	f.baton.takeovers = &c.srv.loopTakeovers
	if iv := c.srv.cfg.nopInterval; iv > 0 {
		f.nopTick = time.NewTicker(iv)
	}
	c.startStallCheck()
	f.started = true

	f.loopMu.Lock() // the serve goroutine runs the loop's work first
	f.ioWG.Add(2)
	go c.readLoop()
	go c.writeLoop()

	c.queueCtl()
	c.wakeCtl() // pick up requests that raced with the login
}

// readLoop reads PDUs. Each goes to rx; then, when the serve loop is idle,
// the reader takes loopMu and does the loop's work itself (serveRead);
// otherwise it wakes the loop goroutine. Only a holder of loopMu takes
// from rx, in order, so a PDU never overtakes one read before it.
func (c *conn) readLoop() {
	f := &c.ffp
	serving, handedOver := false, false
	defer func() {
		if !handedOver {
			f.ioWG.Done()
		}
	}()
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("panic reading connection", "panic", r, "stack", string(debug.Stack()))
			if serving {
				if f.readerHolds.Swap(false) {
					f.exit = exitNow
					f.loopMu.Unlock()
					c.wakeLoop()
				} else {
					handedOver = true // a new reader took this one's place
				}
			}
			c.kill("reader panic")
		}
	}()
	for {
		in := c.readPDU()
		err := in.err
		f.baton.relieve()
		select {
		case f.rx <- in:
		case <-f.stopIO:
			in.release()
			return
		}
		if err == nil && len(f.rx) < cap(f.rx) && c.rd.NextBuffered() {
			// PDUs sent together are handled together, so that their
			// responses leave in one write.
			continue
		}
		if f.loopMu.TryLock() {
			f.readerHolds.Store(true)
			serving = true
			kept := c.serveRead()
			serving = false
			if !kept {
				handedOver = true
				return
			}
		} else {
			c.wakeLoop()
		}
		if err != nil && !isDataDigestError(err) {
			return
		}
	}
}

// serveRead does the loop's work on the reader goroutine, which holds
// loopMu: the PDUs read, the commands they made ready, their responses.
// It reports false when a stalled inline command handed the loop over
// (resumeLoop): a new reader then took this one's place.
func (c *conn) serveRead() bool {
	f := &c.ffp
	c.handleQueuedRx()
	if !c.runReady() {
		return false
	}
	c.flushDirect()
	c.reuseTasks()
	if f.exit != exitNone {
		c.wakeLoop() // the loop goroutine ends the connection
	}
	f.readerHolds.Store(false)
	f.loopMu.Unlock()
	return true
}

// handleQueuedRx handles the PDUs waiting in rx. PDUs that arrived
// together are handled together, so their responses leave together.
func (c *conn) handleQueuedRx() {
	f := &c.ffp
	// Only a holder of loopMu receives: len can only grow meanwhile.
	for n := len(f.rx); n > 0 && f.exit == exitNone; n-- {
		c.handleRx(<-f.rx)
	}
}

func (c *conn) wakeLoop() {
	select {
	case c.ffp.wake <- struct{}{}:
	default:
	}
}

func (c *conn) writeLoop() {
	defer c.ffp.ioWG.Done()
	defer c.ffp.baton.relieve()
	defer close(c.ffp.writerDead)
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("panic writing connection", "panic", r, "stack", string(debug.Stack()))
			c.kill("writer panic")
		}
	}()
	if err := runWriter(c.ffp.q, c.wr, c.ffp.stopIO); err != nil {
		c.log.Info("write failed", "err", err)
	}
}

// fullFeature starts the full feature phase and runs its loop. It reports
// false when another goroutine took the loop over (see loopBaton).
func (c *conn) fullFeature() bool {
	c.startFFP()
	return c.loop()
}

// loop is the serve loop: it holds loopMu (the loop's state) except while
// it waits for events. It reports false when it handed the loop to another
// goroutine, true when the connection is to end; either way loopMu stays
// locked, for the new owner or for cleanup.
func (c *conn) loop() bool {
	f := &c.ffp
	var nopC <-chan time.Time
	if f.nopTick != nil {
		nopC = f.nopTick.C
	}
	stallC := f.stallTick.C
	for {
		if !c.runReady() {
			return false
		}
		c.flushDirect()
		c.reuseTasks()
		if f.exit != exitNone {
			return true
		}
		// Only a holder of loopMu arms these timers; the reader may
		// disarm them meanwhile, hence the checks below.
		pingC, logoutC := f.ping.timeout(), f.logout.timeout()
		f.loopMu.Unlock()
		select {
		case <-f.wake:
			f.loopMu.Lock()
			c.handleQueuedRx()
		case m := <-f.completions:
			f.loopMu.Lock()
			c.handleCompletion(m)
			// Completions that came together are answered together, in
			// one write. Only a holder of loopMu receives.
			for n := len(f.completions); n > 0 && f.exit == exitNone; n-- {
				c.handleCompletion(<-f.completions)
			}
		case r := <-f.tmfResults:
			f.loopMu.Lock()
			c.handleTMFResult(r)
		case <-nopC:
			f.loopMu.Lock()
			c.sendPing()
		case <-stallC:
			f.loopMu.Lock()
			c.checkStalls()
		case <-c.bud.wake:
			f.loopMu.Lock()
			c.budgetWake()
		case <-pingC:
			f.loopMu.Lock()
			if f.ping.timeout() != nil {
				c.log.Warn("initiator did not answer NOP-In", "timeout", c.srv.cfg.nopTimeout)
				f.exit = exitNow
			}
		case <-logoutC:
			f.loopMu.Lock()
			if f.logout.timeout() != nil {
				c.log.Warn("initiator did not log out when asked")
				f.exit = exitNow
			}
		case <-c.ctlWake:
			f.loopMu.Lock()
			c.handleCtl()
		case <-c.killed:
			f.loopMu.Lock()
			f.exit = exitNow
		case <-f.writerDead:
			f.loopMu.Lock()
			f.exit = exitNow
		}
	}
}

// handleRx dispatches one received PDU (or read error).
func (c *conn) handleRx(in rxItem) {
	f := &c.ffp
	f.lastRx = monoNow()
	buf := in.buf // adopted by a new task, else returned to the pool
	defer func() { putWriteBuf(buf) }()
	if in.err != nil {
		var dd *pdu.DataDigestError
		var pe *pdu.ProtocolError
		switch {
		case errors.As(in.err, &dd):
			// The header is sound: reject the PDU and carry on. A command
			// lost this way leaves a CmdSN gap, as RFC 7143 section 7.8
			// prescribes.
			c.log.Warn("data digest error", "opcode", dd.PDU.BHS.Opcode().String())
			c.reject(pdu.RejectDataDigest, &dd.PDU.BHS)
			if dd.PDU.BHS.Opcode() == pdu.OpDataOut {
				c.dataOutDigestError(dd.PDU)
			}
			dd.PDU.Release()
		case errors.As(in.err, &pe):
			c.log.Warn("protocol error, dropping connection", "err", in.err)
			f.exit = exitNow
		case errors.Is(in.err, pdu.ErrHeaderDigest):
			c.log.Warn("header digest error, dropping connection")
			f.exit = exitNow
		case errors.Is(in.err, io.EOF), errors.Is(in.err, net.ErrClosed):
			c.log.Info("connection closed by initiator")
			f.exit = exitNow
		default:
			c.log.Info("read failed", "err", in.err)
			f.exit = exitNow
		}
		return
	}
	p := in.p
	op := p.BHS.Opcode()
	switch op {
	case pdu.OpDataOut:
		c.handleDataOut(p)
		return
	case pdu.OpSNACKReq:
		// SNACK needs ErrorRecoveryLevel >= 1; 0 is what is negotiated.
		c.log.Warn("SNACK at ErrorRecoveryLevel 0")
		c.reject(pdu.RejectProtocolError, &p.BHS)
		p.Release()
		return
	case pdu.OpLoginReq:
		c.log.Warn("Login Request in full feature phase")
		c.reject(pdu.RejectProtocolError, &p.BHS)
		p.Release()
		return
	case pdu.OpSCSICommand, pdu.OpNOPOut, pdu.OpTaskMgmtReq, pdu.OpTextReq, pdu.OpLogoutReq:
	default:
		c.log.Warn("unsupported opcode", "opcode", op.String())
		c.reject(pdu.RejectCmdNotSupported, &p.BHS)
		p.Release()
		return
	}
	var req pdu.Request
	var err error
	if op == pdu.OpSCSICommand {
		err = pdu.ParseSCSICommandInto(p, &f.cmd)
		req = &f.cmd
	} else {
		req, err = pdu.ParseRequest(p)
	}
	if err != nil {
		c.log.Warn("malformed PDU", "opcode", op.String(), "err", err)
		c.reject(pdu.RejectProtocolError, &p.BHS)
		p.Release()
		return
	}
	if f.logout.inProgress() {
		// Nothing new starts once a Logout was accepted.
		p.Release()
		return
	}
	if c.sess.discovery && op != pdu.OpTextReq && op != pdu.OpLogoutReq {
		c.log.Warn("only Text and Logout are allowed in a discovery session", "opcode", op.String())
		c.reject(pdu.RejectProtocolError, &p.BHS)
		p.Release()
		return
	}
	c.checkExpStatSN(req)
	r := rxPDU{p: p, req: req}
	if op == pdu.OpSCSICommand {
		c.arriveCommand(r, &buf)
		return
	}
	if p.BHS.Immediate() || p.BHS.ITT() == reservedTag && op == pdu.OpNOPOut {
		// Immediate delivery; a NOP-Out without a reply never takes a CmdSN.
		c.dispatch(r)
		return
	}
	c.order(cmdSNOf(req), orderedReq{req: r})
}

// cmdSNOf returns the CmdSN of a request that carries one.
func cmdSNOf(req pdu.Request) uint32 {
	switch r := req.(type) {
	case *pdu.SCSICommand:
		return r.CmdSN
	case *pdu.NOPOut:
		return r.CmdSN
	case *pdu.TaskMgmtReq:
		return r.CmdSN
	case *pdu.TextReq:
		return r.CmdSN
	case *pdu.LogoutReq:
		return r.CmdSN
	}
	return 0
}

// checkExpStatSN notes an initiator acknowledging a StatSN never sent. At
// ErrorRecoveryLevel 0 no status is kept for retransmission, so the value
// is only a sanity check; it is logged once per connection, at debug
// level: libiscsi takes the StatSN field of an R2T (the next StatSN, not
// advanced by the R2T) as a status received and acknowledges it.
func (c *conn) checkExpStatSN(req pdu.Request) {
	var exp uint32
	switch r := req.(type) {
	case *pdu.SCSICommand:
		exp = r.ExpStatSN
	case *pdu.NOPOut:
		exp = r.ExpStatSN
	case *pdu.TaskMgmtReq:
		exp = r.ExpStatSN
	case *pdu.TextReq:
		exp = r.ExpStatSN
	case *pdu.LogoutReq:
		exp = r.ExpStatSN
	default:
		return
	}
	if snLess(c.ffp.statSN, exp) && !c.ffp.warnedStatSN {
		c.ffp.warnedStatSN = true
		c.log.Debug("initiator acknowledges a StatSN not sent yet", "exp_statsn", exp, "statsn", c.ffp.statSN)
	}
}

// rxPDU is a decoded request and the PDU holding its data.
type rxPDU struct {
	p   *pdu.PDU
	req pdu.Request
}

// order delivers a non-immediate request in CmdSN order: in turn it runs
// now (followed by whatever waited behind it), ahead of its turn it waits,
// outside the window it is dropped silently (RFC 7143 section 4.2.2.1).
func (c *conn) order(cmdSN uint32, o orderedReq) {
	w := &c.sess.window
	if !w.inWindow(cmdSN) {
		c.log.Debug("CmdSN outside the window, ignored", "cmdsn", cmdSN,
			"exp_cmdsn", w.expCmdSN, "max_cmdsn", w.maxCmdSN)
		c.discard(o)
		return
	}
	if cmdSN != w.expCmdSN {
		if !w.park(cmdSN, o) {
			c.log.Debug("duplicate CmdSN, ignored", "cmdsn", cmdSN)
			c.discard(o)
		}
		return
	}
	c.runInOrder(o)
	for {
		next, ok := w.next()
		if !ok {
			return
		}
		c.runInOrder(next)
	}
}

// runInOrder consumes ExpCmdSN for a request whose turn came.
func (c *conn) runInOrder(o orderedReq) {
	w := &c.sess.window
	switch {
	case o.task != nil:
		w.admit()
		c.admit(o.task)
	case o.req.p != nil:
		w.advance()
		c.dispatch(o.req)
	default:
		w.advance() // consumed by an ABORT TASK before it arrived
	}
}

// discard drops a request that will never run.
func (c *conn) discard(o orderedReq) {
	if o.task != nil {
		c.forgetTask(o.task)
	}
	if o.req.p != nil {
		o.req.p.Release()
	}
}

// dispatch runs a non-SCSI request.
func (c *conn) dispatch(r rxPDU) {
	switch req := r.req.(type) {
	case *pdu.NOPOut:
		c.handleNOPOut(r.p, req)
	case *pdu.TaskMgmtReq:
		r.p.Release()
		c.handleTMF(req)
	case *pdu.TextReq:
		c.handleText(r.p, req)
	case *pdu.LogoutReq:
		r.p.Release()
		c.handleLogout(req, &r.p.BHS)
	default:
		r.p.Release()
	}
}

// handleCtl acts on requests from other goroutines.
func (c *conn) handleCtl() {
	logout, drop := c.takeCtl()
	switch {
	case drop != "":
		c.log.Info("dropping session", "reason", drop)
		c.sendAsyncDrop()
		c.ffp.exit = exitGraceful
	case logout != "":
		c.requestLogoutNow(logout)
	}
}

// nextTTT allocates a Target Transfer Tag (never the reserved value).
func (c *conn) nextTTT() uint32 {
	c.ffp.lastTTT++
	if c.ffp.lastTTT == reservedTag {
		c.ffp.lastTTT = 1
	}
	return c.ffp.lastTTT
}
