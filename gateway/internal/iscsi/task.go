package iscsi

import (
	"context"
	"github.com/rbdgw/rbdgw/gateway/internal/pdu"
	"github.com/rbdgw/rbdgw/gateway/internal/scsi"
)

// task is one SCSI command from its arrival to its response. It is owned
// by the serve loop; while the SCSI layer runs it (running), its goroutine
// only reads cmd.
type task struct {
	itt       uint32
	cmdSN     uint32
	immediate bool
	rawLUN    uint64
	edtl      uint32
	read      bool
	write     bool
	cmd       scsi.Command
	cdb       [16]byte // backs cmd.CDB unless the CDB is extended

	// Data-Out bookkeeping. xfer is how much Data-Out the command takes:
	// min(EDTL, what the CDB asks for). Data the initiator sends beyond it
	// (an underflow) is read and dropped.
	buf         *[]byte
	xfer        uint32
	unsolOpen   bool   // unsolicited Data-Out is still expected
	unsolEnd    uint32 // min(EDTL, FirstBurstLength)
	unsolNext   uint32 // next unsolicited offset (after immediate data)
	unsolDataSN uint32
	r2tNext     uint32 // next offset to solicit
	r2tSN       uint32
	r2ts        []r2tState
	windows     []uint32 // TTTs with a dataSink window open
	// bufLost: the reader may still write into buf (a window closed while
	// it was filling): buf must not go back to the pool.
	bufLost bool
	// Budget accounting (budget.go, cmdbuf.go): bud is the connection's
	// budget; bufGranted says buf was granted rather than charged as data
	// arrived, execGranted the same of execBuf. memWait: the task waits in
	// the connection's memWait queue for a grant.
	bud         *connBudget
	bufGranted  bool
	execGranted bool
	memWait     bool
	// memQueued: the task was put in the memWait queue, which may still
	// hold it after it ended: it is not reused.
	memQueued bool
	// dataSince is monoNow() when the task last received Data-Out or began
	// expecting it (Data-Out timeout, stall.go).
	dataSince int64
	// failStatus is the status of a task failed with failWith (default
	// CHECK CONDITION).
	failStatus scsi.Status

	// Residual of a command that moves Data-Out, fixed at arrival.
	outResidual residual

	admitted bool // its CmdSN turn came (or it is immediate)
	running  bool // handed to the SCSI layer
	// ctx is the task's context in the SCSI layer, set when it starts.
	// cancel, set with it for a task on its own goroutine, aborts it there.
	// Task management cancels a running task (cancelTask) before asking
	// the SCSI layer to abort, so a task whose goroutine has not yet
	// entered the logical unit's task set cannot run after the abort (it
	// would otherwise execute and see the reset's unit attention). A task
	// run inline shares the connection's context: task management only
	// sees it running after a takeover, and it was inside Execute by then.
	// A task started without a goroutine (start) has no cancel: it entered
	// its task set before the loop went on.
	ctx            context.Context
	cancel         context.CancelFunc
	abortRequested bool // cancelTask was called, maybe before the task started
	// execBuf backs cmd.DataOut while the SCSI layer runs the task; the
	// goroutine executing it returns it to the pool.
	execBuf *[]byte
	// dataIn is the pooled buffer lent to a READ for its data (cmd.DataIn);
	// it returns to the pool after the response is written.
	dataIn *[]byte
	// inlineShape: a plain READ or WRITE small enough to run on the serve
	// loop when its LU answers fast (inline.go).
	inlineShape bool
	failSense   []byte // answer CHECK CONDITION with this instead of executing
	// dataFailed: a Data-Out went wrong; the rest of the data in flight is
	// read and dropped, then the command ends with failSense.
	dataFailed bool
	tmfs       []*tmfOp
	stats      taskStats // counters of package metrics (metrics.go)

	// conn and startedAt serve a task the SCSI layer started without a
	// goroutine (Done).
	conn      *conn
	startedAt int64 // monoNow()
}

// r2tState is one outstanding R2T.
type r2tState struct {
	ttt, offset, length, received, dataSN uint32
}

// residual is the O/U flag pair and count of a response.
type residual struct {
	over, under bool
	count       uint32
}

func compareLengths(actual, expected uint64) residual {
	switch {
	case actual > expected:
		return residual{over: true, count: uint32(min(actual-expected, 1<<32-1))}
	case actual < expected:
		return residual{under: true, count: uint32(expected - actual)}
	}
	return residual{}
}

// movesDataOut reports whether the residual comes from the Data-Out side.
func (t *task) movesDataOut() bool {
	return t.write || t.outResidual != residual{}
}

// dataInResidual is the residual of a command that produced dataLen bytes.
func (t *task) dataInResidual(dataLen int) residual {
	if t.movesDataOut() {
		return t.outResidual
	}
	expected := uint64(0)
	if t.read {
		expected = uint64(t.edtl)
	}
	return compareLengths(uint64(dataLen), expected)
}

// expectsData reports whether Data-Out may still arrive for the task.
func (t *task) expectsData() bool { return t.unsolOpen || len(t.r2ts) > 0 }

// store copies Data-Out at off into the command buffer, dropping what lies
// beyond xfer. Immediate and unsolicited data grow the buffer as they
// arrive (cmdbuf.go); past the gateway's hard budget the command fails
// with TASK SET FULL.
func (t *task) store(off uint32, data []byte) {
	if off >= t.xfer || len(data) == 0 || t.dataFailed {
		return
	}
	end := min(uint64(off)+uint64(len(data)), uint64(t.xfer))
	if !t.fitArrived(uint32(end), off) {
		t.failWith(scsi.StatusTaskSetFull, nil)
		return
	}
	dst := (*t.buf)[off:end]
	if &dst[0] != &data[0] { // the reader may have stored it in place
		copy(dst, data)
	}
}

func (t *task) findR2T(ttt uint32) int {
	for i := range t.r2ts {
		if t.r2ts[i].ttt == ttt {
			return i
		}
	}
	return -1
}

// dataOutVerdict is what a Data-Out PDU deserves.
type dataOutVerdict uint8

const (
	dataOutOK     dataOutVerdict = iota
	dataOutBadTag                // no such R2T: Reject (invalid PDU field), carry on
	dataOutFailed                // the command will end with CHECK CONDITION
)

// acceptDataOut validates a Data-Out PDU against the unsolicited burst or
// the R2T it answers (DataPDUInOrder and DataSequenceInOrder are Yes) and
// stores its payload. A DataSN, offset or length out of sequence means an
// earlier PDU was lost to a digest error (RFC 7143 section 7.9); with no
// recovery at ErrorRecoveryLevel 0 the command is terminated once all its
// data has arrived (section 7.8, option b).
func (t *task) acceptDataOut(d *pdu.DataOut, firstBurst uint32) (dataOutVerdict, string) {
	if t.dataFailed {
		t.drain(d)
		return dataOutOK, ""
	}
	n := uint64(len(d.Data))
	off := uint64(d.BufferOffset)
	if d.TTT == reservedTag {
		var why string
		switch {
		case !t.unsolOpen:
			t.failData(senseUnexpectedUnsolicited())
			return dataOutFailed, "unsolicited Data-Out not expected"
		case d.DataSN != t.unsolDataSN:
			why = "unsolicited DataSN out of order"
		case d.BufferOffset != t.unsolNext:
			why = "unsolicited BufferOffset out of order"
		case off+n > uint64(t.unsolEnd):
			why = "unsolicited data beyond FirstBurstLength or EDTL"
		}
		if why != "" {
			t.failData(senseProtocolCRC())
			t.drain(d)
			return dataOutFailed, why
		}
		t.store(d.BufferOffset, d.Data)
		t.unsolNext = uint32(off + n)
		t.unsolDataSN++
		if d.Final || t.unsolNext == t.unsolEnd {
			t.unsolOpen = false
			t.r2tNext = t.unsolNext
			if t.unsolNext < t.unsolEnd && t.edtl > firstBurst {
				t.failData(senseIncorrectDataAmount())
				return dataOutFailed, "unsolicited burst shorter than FirstBurstLength"
			}
		}
		return dataOutOK, ""
	}
	i := t.findR2T(d.TTT)
	if i < 0 {
		return dataOutBadTag, "Data-Out for an unknown Target Transfer Tag"
	}
	r := &t.r2ts[i]
	var why string
	switch {
	case d.DataSN != r.dataSN:
		why = "DataSN out of order"
	case off != uint64(r.offset)+uint64(r.received):
		why = "BufferOffset out of order"
	case off+n > uint64(r.offset)+uint64(r.length):
		why = "Data-Out beyond the R2T's desired length"
	case d.Final && off+n < uint64(r.offset)+uint64(r.length):
		why = "F bit before the R2T's data was complete"
	}
	if why != "" {
		t.failData(senseProtocolCRC())
		t.drain(d)
		return dataOutFailed, why
	}
	t.store(d.BufferOffset, d.Data)
	r.received += uint32(n)
	r.dataSN++
	if r.received == r.length {
		t.r2ts = append(t.r2ts[:i], t.r2ts[i+1:]...)
	}
	return dataOutOK, ""
}

// failData makes the command end with CHECK CONDITION once the data in
// flight has arrived; no more R2Ts go out for it.
func (t *task) failData(sense []byte) {
	t.failWith(scsi.StatusCheckCondition, sense)
}

// failWith is failData with a status of choice: CHECK CONDITION with sense,
// or TASK SET FULL (no sense) when the gateway has no buffer for the data.
func (t *task) failWith(status scsi.Status, sense []byte) {
	if !t.dataFailed {
		t.dataFailed = true
		t.failStatus = status
		t.failSense = sense
		if t.failSense == nil {
			t.failSense = []byte{} // non-nil: the task has failed
		}
		t.r2tNext = t.xfer
	}
}

// drain reads a Data-Out of a failed command for its F bit only: the
// command answers once every sequence it opened has ended.
func (t *task) drain(d *pdu.DataOut) {
	if !d.Final {
		return
	}
	if d.TTT == reservedTag {
		t.unsolOpen = false
		return
	}
	if i := t.findR2T(d.TTT); i >= 0 {
		t.r2ts = append(t.r2ts[:i], t.r2ts[i+1:]...)
	}
}

// staleTags remembers the last ITTs of commands that ended before all
// their Data-Out arrived (aborted, or terminated for a Data-Out error), so
// Data-Out still in flight for them is dropped silently, not rejected.
type staleTags struct {
	tags [64]uint32
	n    int
}

func (a *staleTags) add(itt uint32) {
	a.tags[a.n%len(a.tags)] = itt
	a.n++
}

func (a *staleTags) has(itt uint32) bool {
	for i := 0; i < min(a.n, len(a.tags)); i++ {
		if a.tags[i] == itt {
			return true
		}
	}
	return false
}

// cancelTask aborts a running task in the SCSI layer, or makes it start
// aborted when it has not started yet.
func (t *task) cancelTask() {
	t.abortRequested = true
	if t.cancel != nil {
		t.cancel()
	}
}

// Tasks are reused per connection: the serve loop owns the free list. A
// task ends in handleCompletion; it is reused only from the top of the
// loop, once no handler up the stack holds it, and only when nothing else
// can refer to it: no task management function (which keeps it until its
// response), no abort, never queued for buffers.

// takeTask returns a zeroed task, reused when one is free.
func (c *conn) takeTask() *task {
	f := &c.ffp
	n := len(f.freeTasks)
	if n == 0 {
		return &task{}
	}
	t := f.freeTasks[n-1]
	f.freeTasks[n-1] = nil
	f.freeTasks = f.freeTasks[:n-1]
	return t
}

// finishTask marks a task as ended; the loop may reuse it (reuseTasks).
func (c *conn) finishTask(t *task) {
	c.ffp.finished = append(c.ffp.finished, t)
}

// reuseTasks moves the tasks that ended to the free list.
func (c *conn) reuseTasks() {
	f := &c.ffp
	for i, t := range f.finished {
		f.finished[i] = nil
		if len(t.tmfs) > 0 || t.abortRequested || t.memQueued || len(f.freeTasks) >= c.srv.cfg.queueDepth {
			continue
		}
		*t = task{r2ts: t.r2ts[:0], windows: t.windows[:0]}
		f.freeTasks = append(f.freeTasks, t)
	}
	f.finished = f.finished[:0]
}
