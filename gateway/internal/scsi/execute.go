package scsi

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"

	"github.com/rbdgw/rbdgw/gateway/internal/scsi/pr"
)

// task is one command on its way through the device server.
type task struct {
	ctx   context.Context
	tgt   *Target
	lu    *LU // nil on a LUN without a logical unit
	lun   uint64
	cmd   *Command
	cdb   []byte // cut to the command's CDB length
	nexus *Nexus
	op    *opEntry
	// entry is the task's place in the task set of its logical unit,
	// allocated with the task.
	entry taskEntry
	// status is the status of a successful command (CONDITION MET for
	// PRE-FETCH).
	status Status
	// reusable: the task left its task set and nothing refers to it any
	// more (taskSet.leave), so Execute may pool it.
	reusable    bool
	asyncFields // a command begun with Start (async.go)
}

// taskPool pools the tasks of commands that ran on a logical unit. Handlers
// must not keep their task, or its context, after they returned.
var taskPool sync.Pool

// statusError ends a command with a status that carries no sense data.
type statusError struct{ status Status }

func (e *statusError) Error() string { return fmt.Sprintf("status %#02x", byte(e.status)) }

var errReservationConflict = &statusError{StatusReservationConflict}

// Execute runs one SCSI command and returns its outcome. It blocks until the
// command completed or was aborted by task management (Result.Aborted).
func (t *Target) Execute(ctx context.Context, cmd *Command) (res Result) {
	defer func() {
		// A bug in one command must not take the gateway down: report it
		// and answer INTERNAL TARGET FAILURE.
		if p := recover(); p != nil {
			var cdb []byte
			if cmd != nil {
				cdb = cmd.CDB
			}
			res = t.panicked("executing", cdb, p, nil)
		}
	}()
	if cmd == nil || cmd.Nexus == nil {
		return checkCondition(newSense(senseIllegalRequest, ascLUNotSupported), false)
	}
	lu := t.luFor(cmd.Nexus, cmd.LUN)
	if lu != nil && lu.closed.Load() {
		lu = nil
	}
	cdb := cmd.CDB
	if len(cdb) == 0 {
		return checkCondition(newSense(senseIllegalRequest, ascInvalidOpcode), lu.descriptorSense())
	}
	e, unknownSA := lookupOp(cdb)
	if lu == nil && (e == nil || e.flags&flagNoLU == 0) {
		return checkCondition(newSense(senseIllegalRequest, ascLUNotSupported), false)
	}
	dsense := lu.descriptorSense()
	if e == nil || !e.supportedBy(lu) {
		if unknownSA {
			return checkCondition(invalidCDB(saFieldByte(cdb[0]), 4), dsense)
		}
		return checkCondition(newSense(senseIllegalRequest, ascInvalidOpcode), dsense)
	}
	if len(cdb) < e.cdbLen {
		return checkCondition(invalidCDB(len(cdb), -1), dsense)
	}
	cdb = cdb[:e.cdbLen]
	if err := e.checkReserved(cdb); err != nil {
		return checkCondition(err, dsense)
	}
	if lu == nil {
		tk := &task{ctx: ctx, tgt: t, lu: lu, lun: cmd.LUN, cmd: cmd, cdb: cdb, nexus: cmd.Nexus, op: e, status: StatusGood}
		return tk.result(e.run(tk))
	}
	tk := t.pooledTask(ctx, lu, cmd, cdb, e)
	res = tk.runOnLU()
	if tk.reusable {
		tk.recycle()
	}
	return res
}

// pooledTask returns a task of cmd on lu from taskPool.
func (t *Target) pooledTask(ctx context.Context, lu *LU, cmd *Command, cdb []byte, e *opEntry) *task {
	tk, _ := taskPool.Get().(*task)
	if tk == nil {
		tk = new(task)
		tk.abandonFn = tk.abandon
	}
	*tk = task{ctx: ctx, tgt: t, lu: lu, lun: cmd.LUN, cmd: cmd, cdb: cdb, nexus: cmd.Nexus, op: e, status: StatusGood,
		asyncFields: asyncFields{abandonFn: tk.abandonFn}}
	return tk
}

// recycle puts a task nothing refers to any more back in taskPool.
func (t *task) recycle() {
	*t = task{asyncFields: asyncFields{abandonFn: t.abandonFn}}
	taskPool.Put(t)
}

// panicked reports a bug that panicked while a command was being what
// (executed, started) and returns the command's answer: INTERNAL TARGET
// FAILURE, in lu's sense format (fixed without one).
func (t *Target) panicked(what string, cdb []byte, p any, lu *LU) Result {
	t.log.Error("panic while "+what+" a command", "cdb", fmt.Sprintf("% x", cdb),
		"panic", p, "stack", string(debug.Stack()))
	return internalFailure(lu)
}

// internalFailure is CHECK CONDITION, INTERNAL TARGET FAILURE.
func internalFailure(lu *LU) Result {
	return checkCondition(newSense(senseHardwareError, ascInternalTargetFailure), lu.descriptorSense())
}

// runOnLU runs a command in the task set of its logical unit.
func (t *task) runOnLU() (res Result) {
	lu := t.lu
	parent := t.ctx
	entry := &t.entry
	waits, err := lu.tasks.enter(parent, entry, t.nexus, t.cmd.Tag, t.cmd.Attr)
	if errors.Is(err, errOverlapped) {
		return t.result(nil, newSense(senseAbortedCommand, ascOverlappedCommands))
	}
	// The task leaves the task set however the command ends, even by a
	// panic; an aborted task's result is replaced.
	defer func() {
		aborted, report, reusable := lu.tasks.leave(entry)
		if aborted || parent.Err() != nil {
			res = Result{Aborted: true, TaskAbortedStatus: aborted && report}
		}
		t.reusable = reusable // a panic skips the pooling in Execute
	}()
	t.ctx = &entry.ctx
	if err := waitFor(t.ctx, waits); err != nil {
		return Result{Aborted: true}
	}
	return t.result(t.admitAndRun())
}

// admitAndRun admits the task (admit) and runs its handler.
func (t *task) admitAndRun() ([]byte, error) {
	if err := t.admit(); err != nil {
		return nil, err
	}
	return t.op.run(t)
}

// admit applies the checks of SAM-5/SPC-4 in order (unit attention,
// asymmetric access state, reservation conflict); an error is the
// command's answer instead of running it.
func (t *task) admit() error {
	lu, e := t.lu, t.op
	if e.flags&flagKeepsUA == 0 {
		if code, ok := lu.popUA(t.nexus); ok {
			return newSense(senseUnitAttention, code)
		}
	}
	if refusal := aluaRefusal(t.tgt.alua.AccessState(lu, t.nexus), e); refusal != nil {
		return refusal
	}
	if e.access != pr.AccessAllowed {
		conflict, err := lu.pr.Conflict(t.ctx, portOf(t.nexus), e.access)
		if err != nil {
			return senseFromReservationStore(err)
		}
		if conflict {
			return errReservationConflict
		}
	}
	return nil
}

// result turns a handler's return values into a Result.
func (t *task) result(data []byte, err error) Result {
	if err == nil {
		return Result{Status: t.status, Data: data}
	}
	var se *senseError
	if errors.As(err, &se) {
		res := checkCondition(se, t.lu.descriptorSense())
		if se.key == senseRecoveredError {
			// The command completed (with a recovery action to report):
			// its data is transferred before the status.
			res.Data = data
		}
		return res
	}
	var st *statusError
	if errors.As(err, &st) {
		return Result{Status: st.status}
	}
	if errors.Is(err, context.Canceled) {
		// Aborted, or its connection went: the caller reports it as such
		// (runOnLU, end). No failure to log.
		return Result{Aborted: true}
	}
	// A handler bug, not a peer error: report it and keep serving.
	t.tgt.log.Error("command failed", "op", t.op.name, "lun", t.lun, "err", err)
	return internalFailure(t.lu)
}

func checkCondition(e *senseError, descriptor bool) Result {
	return Result{Status: StatusCheckCondition, Sense: e.encode(descriptor)}
}

// exactDataOut returns the Data-Out of a command whose CDB fixes the amount
// exactly (WRITE SAME, COMPARE AND WRITE): the initiator must announce
// (expected data transfer length) and send n bytes, neither more nor less.
// The transport may already have cut an over-long transfer to n bytes, so
// the announced length is checked too.
func (t *task) exactDataOut(n uint64) ([]byte, error) {
	announced := uint64(t.cmd.ExpectedLength)
	if announced == 0 {
		announced = uint64(len(t.cmd.DataOut))
	}
	if announced != n || uint64(len(t.cmd.DataOut)) < n {
		return nil, errDataOutLength()
	}
	return t.cmd.DataOut[:n], nil
}

// dataOut returns the first n bytes of Data-Out, or INVALID FIELD IN
// INFORMATION UNIT when the initiator sent fewer.
func (t *task) dataOut(n uint64) ([]byte, error) {
	if uint64(len(t.cmd.DataOut)) < n {
		return nil, errDataOutLength()
	}
	return t.cmd.DataOut[:n], nil
}
