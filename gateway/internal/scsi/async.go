package scsi

import (
	"context"
	"sync/atomic"

	"github.com/rbdgw/rbdgw/rbdbackend"
)

// Commands started without a goroutine to wait for them. A READ or WRITE
// of an image that starts requests itself (rbdbackend.AsyncIO: an RBD
// image) is checked and admitted on the caller's goroutine (the
// connection's serve loop), its request is started there, and the image's
// completion ends it: no goroutine waits for the storage, and no hand-over
// separates the request from its response but the completion's.

// Completion receives the result of a command started with Target.Start.
// Done may run on any goroutine, before Start returned too; it must not
// block. b is the batch of storage completions the result came with (see
// rbdbackend.Batch), nil when it comes alone.
type Completion interface {
	Done(res Result, b *rbdbackend.Batch)
}

// asyncState is where a started command stands; whoever moves it out of
// asyncRunning ends the command.
const (
	asyncRunning   uint32 = iota
	asyncDone             // the image completed the request
	asyncAbandoned        // aborted first: the image still owns the buffer
	asyncWaiting          // run with Execute's handler on a goroutine instead
)

// asyncOpcode reports the commands Start takes: plain READ and WRITE.
func asyncOpcode(op byte) bool {
	switch op {
	case opRead6, opRead10, opRead12, opRead16, opWrite6, opWrite10, opWrite12, opWrite16:
		return true
	}
	return false
}

// Start begins cmd as Execute would and reports true when it can do so
// without waiting: a plain READ, or a WRITE of whole blocks that needs no
// flush after it, of a logical unit whose image starts requests itself,
// with no ORDERED task ahead of it. done then receives the result exactly
// once. For anything else it reports false having done nothing, and the
// caller runs the command with Execute. When ctx ends, a READ in flight
// is abandoned (its buffer belongs to the image until the request
// completes) and a WRITE is still waited for, as with Execute.
func (t *Target) Start(ctx context.Context, cmd *Command, done Completion) (started bool) {
	if cmd == nil || cmd.Nexus == nil || len(cmd.CDB) == 0 || !asyncOpcode(cmd.CDB[0]) {
		return false
	}
	lu := t.luFor(cmd.Nexus, cmd.LUN)
	if lu == nil || lu.async == nil || lu.closed.Load() {
		return false
	}
	e, _ := lookupOp(cmd.CDB)
	if e == nil || !e.supportedBy(lu) || len(cmd.CDB) < e.cdbLen {
		return false
	}
	cdb := cmd.CDB[:e.cdbLen]
	if e.checkReserved(cdb) != nil {
		return false
	}
	tk := t.pooledTask(ctx, lu, cmd, cdb, e)
	entered := false
	defer func() {
		// A bug must not take the connection down. Before the task
		// entered its task set, Execute runs the command instead.
		if p := recover(); p != nil {
			res := t.panicked("starting", cdb, p, lu)
			if entered && tk.async.CompareAndSwap(asyncRunning, asyncWaiting) {
				tk.end(res)
			}
			started = entered
		}
	}()
	// What fails these checks is answered by Execute, in its order
	// (unit attentions before invalid fields).
	if !tk.prepareAsync() || !lu.tasks.enterNow(ctx, &tk.entry, tk.nexus, cmd.Tag, cmd.Attr) {
		tk.recycle()
		return false
	}
	entered = true
	tk.ctx = &tk.entry.ctx
	tk.done = done
	tk.admitAndStart()
	return true
}

// prepareAsync checks what Start needs and fixes the request's buffer
// and offset.
func (t *task) prepareAsync() bool {
	r, err := t.mediaRange(true)
	if err != nil || r.blocks == 0 {
		return false
	}
	bs := uint64(t.lu.cfg.BlockSize)
	t.asyncOff = int64(r.lba * bs)
	if !t.asyncWrite() {
		t.asyncBuf = t.dataInBuffer(r.blocks * bs)
		return true
	}
	if t.lu.writeProtected() != nil || t.lu.needsFlush(t.fua()) || t.partialBlock() {
		return false // protected, flushed after, or a partial block to merge
	}
	data, err := t.writeData(r)
	t.asyncBuf = data
	return err == nil && len(data) > 0
}

func (t *task) asyncWrite() bool {
	switch t.cdb[0] {
	case opWrite6, opWrite10, opWrite12, opWrite16:
		return true
	}
	return false
}

// admitAndStart is admitAndRun for a started command: the checks, then
// the request.
func (t *task) admitAndStart() {
	lu := t.lu
	if err := t.admit(); err != nil {
		t.finishNow(err)
		return
	}
	write := t.asyncWrite()
	// A READ in flight is abandoned when the command is aborted or its
	// context ends; registered before the request starts, whose
	// completion may come at once.
	if !write {
		if !t.entry.ctx.notify(t.abandonFn) {
			t.abandon() // aborted already
			return
		}
		if t.entry.ctx.parent.Done() != nil {
			t.stopParent = context.AfterFunc(t.entry.ctx.parent, t.abandonFn)
		}
	}
	var ok bool
	if write {
		ok = lu.async.StartWriteAt(t.asyncBuf, t.asyncOff, t)
	} else {
		ok = lu.async.StartReadAt(t.asyncBuf, t.asyncOff, t)
	}
	if ok {
		return
	}
	// The image cannot start it now: run the handler on a goroutine, as
	// Execute would, unless an abort ended the command meanwhile.
	if !t.async.CompareAndSwap(asyncRunning, asyncWaiting) {
		return
	}
	t.entry.ctx.notify(nil)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				t.end(t.tgt.panicked("executing", t.cdb, p, lu))
			}
		}()
		t.end(t.result(t.op.run(t)))
	}()
}

// finishNow ends a command that never reached the image.
func (t *task) finishNow(err error) {
	if t.async.CompareAndSwap(asyncRunning, asyncWaiting) {
		t.end(t.result(nil, err))
	}
}

// Complete ends the command with its request's outcome
// (rbdbackend.Completer).
func (t *task) Complete(err error, b *rbdbackend.Batch) {
	if !t.async.CompareAndSwap(asyncRunning, asyncDone) {
		return // abandoned: answered already, and not reused
	}
	var data []byte
	switch {
	case err != nil && t.ctx.Err() != nil:
		t.endIn(Result{Aborted: true}, b) // endIn tells how
		return
	case err != nil:
		kind := ioRead
		if t.asyncWrite() {
			kind = ioWrite
		}
		err = senseFromBackend(err, kind)
	case !t.asyncWrite():
		data = t.asyncBuf
	}
	t.endIn(t.result(data, err), b)
}

// abandon ends a READ whose command was aborted before its request
// completed; the completion, when it comes, finds it ended.
func (t *task) abandon() {
	if t.async.CompareAndSwap(asyncRunning, asyncAbandoned) {
		t.end(Result{Aborted: true})
	}
}

// end takes the command out of its task set and hands its result over;
// an aborted command's result is replaced, as runOnLU replaces it.
func (t *task) end(res Result) { t.endIn(res, nil) }

// endIn is end for a result that came in batch b.
func (t *task) endIn(res Result, b *rbdbackend.Batch) {
	aborted, report, reusable := t.lu.tasks.leave(&t.entry)
	if aborted || t.entry.ctx.parent.Err() != nil {
		res = Result{Aborted: true, TaskAbortedStatus: aborted && report}
	}
	if t.stopParent != nil && !t.stopParent() {
		reusable = false // its abandon may still be running
	}
	// An abandoned READ's task stays with its completion, which is yet
	// to come.
	reusable = reusable && t.async.Load() != asyncAbandoned
	done := t.done
	if reusable {
		t.recycle()
	}
	done.Done(res, b)
}

// asyncFields are the task's fields for Start.
type asyncFields struct {
	done       Completion
	async      atomic.Uint32 // asyncState
	asyncBuf   []byte        // the READ's buffer or the WRITE's data
	asyncOff   int64
	stopParent func() bool // context.AfterFunc's, for a READ
	// abandonFn is abandon bound to its task once, when the task is
	// made: the pooled task keeps it, so a READ registers it without
	// allocating.
	abandonFn func()
}
