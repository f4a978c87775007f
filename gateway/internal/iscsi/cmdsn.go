package iscsi

// Serial number arithmetic (RFC 1982, 32 bits) as RFC 7143 requires for
// CmdSN, StatSN, DataSN and R2TSN comparisons.

// snLess reports a < b in serial number arithmetic.
func snLess(a, b uint32) bool { return a != b && int32(a-b) < 0 }

// snLessEq reports a <= b in serial number arithmetic.
func snLessEq(a, b uint32) bool { return a == b || int32(a-b) < 0 }

// cmdWindow is the session's command window: ExpCmdSN, MaxCmdSN and the
// non-immediate requests that arrived ahead of their turn. It is owned by
// the connection's serve loop.
type cmdWindow struct {
	expCmdSN uint32
	depth    uint32
	// inflight counts admitted non-immediate SCSI commands that have not
	// completed; they keep their slot of the window until then.
	inflight uint32
	// maxCmdSN only grows (RFC 7143 section 4.2.2.1: initiators ignore a
	// smaller value), so it is tracked rather than recomputed blindly.
	maxCmdSN uint32
	pending  map[uint32]orderedReq
	// gate, when set, says whether MaxCmdSN may advance now: false while
	// the connection's buffer budget is spent (budget.go).
	gate func() bool
}

// orderedReq is a non-immediate request waiting for its CmdSN turn. The
// zero value marks a CmdSN consumed without a request (an ABORT TASK for a
// command that has not arrived yet, a rejected command).
type orderedReq struct {
	task *task
	req  rxPDU
}

func newCmdWindow(expCmdSN uint32, depth int) cmdWindow {
	w := cmdWindow{expCmdSN: expCmdSN, depth: uint32(max(depth, 1)), pending: make(map[uint32]orderedReq)}
	w.maxCmdSN = expCmdSN + w.depth - 1
	return w
}

// inWindow reports whether a non-immediate CmdSN lies in [ExpCmdSN, MaxCmdSN].
func (w *cmdWindow) inWindow(cmdSN uint32) bool {
	return snLessEq(w.expCmdSN, cmdSN) && snLessEq(cmdSN, w.maxCmdSN)
}

// refresh recomputes MaxCmdSN after ExpCmdSN or inflight changed.
func (w *cmdWindow) refresh() {
	m := w.expCmdSN + w.depth - 1 - w.inflight
	if snLess(w.maxCmdSN, m) && (w.gate == nil || w.gate()) {
		w.maxCmdSN = m
	}
}

// park stores a request that arrived ahead of its turn. It reports false for
// a duplicate, which RFC 7143 says to ignore silently.
func (w *cmdWindow) park(cmdSN uint32, r orderedReq) bool {
	if _, dup := w.pending[cmdSN]; dup {
		return false
	}
	w.pending[cmdSN] = r
	return true
}

// next pops the request whose turn has come. The caller then consumes its
// CmdSN with advance or admit.
func (w *cmdWindow) next() (orderedReq, bool) {
	r, ok := w.pending[w.expCmdSN]
	if ok {
		delete(w.pending, w.expCmdSN)
	}
	return r, ok
}

// advance consumes ExpCmdSN for a request that holds no window slot after
// it is handled (everything but SCSI commands).
func (w *cmdWindow) advance() {
	w.expCmdSN++
	w.refresh()
}

// admit consumes ExpCmdSN for a SCSI command, which keeps its slot until
// completed: MaxCmdSN does not move.
func (w *cmdWindow) admit() {
	w.expCmdSN++
	w.inflight++
	w.refresh()
}

// completed frees the slot of an admitted SCSI command.
func (w *cmdWindow) completed() {
	if w.inflight > 0 {
		w.inflight--
	}
	w.refresh()
}

// resume continues the window on a reinstated connection: requests that
// waited on the old connection are gone, and commands the initiator sent
// but that never arrived are skipped so the window does not stall.
func (w *cmdWindow) resume(cmdSN uint32) {
	clear(w.pending)
	w.inflight = 0
	if snLess(w.expCmdSN, cmdSN) {
		w.expCmdSN = cmdSN
	}
	w.refresh()
}
