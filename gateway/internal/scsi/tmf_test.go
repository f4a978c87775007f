package scsi

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/rbdbackend"
)

// gatedImage blocks reads and writes while its gate is closed, to hold
// commands inside the backend.
type gatedImage struct {
	*rbdbackend.MemoryImage
	mu      sync.Mutex
	gate    chan struct{} // nil: open
	entered chan struct{}
}

func newGatedImage() *gatedImage {
	return &gatedImage{MemoryImage: memImage(testBlocks), entered: make(chan struct{}, 64)}
}

func (g *gatedImage) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gate = make(chan struct{})
}

func (g *gatedImage) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gate != nil {
		close(g.gate)
		g.gate = nil
	}
}

func (g *gatedImage) wait() {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	if gate != nil {
		g.entered <- struct{}{}
		<-gate
	}
}

func (g *gatedImage) ReadAt(p []byte, off int64) (int, error) {
	g.wait()
	return g.MemoryImage.ReadAt(p, off)
}

func (g *gatedImage) WriteAt(p []byte, off int64) (int, error) {
	g.wait()
	return g.MemoryImage.WriteAt(p, off)
}

// lockedBuffer is a log destination safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// async runs a command in the background.
func (e *env) async(n *Nexus, tag uint32, attr TaskAttr, cdb, data []byte) <-chan Result {
	ch := make(chan Result, 1)
	cmd := &Command{Nexus: n, CDB: cdb, Attr: attr, Tag: tag, DataOut: data}
	go func() { ch <- e.tgt.Execute(context.Background(), cmd) }()
	return ch
}

// waitTask waits until the task is in the task set.
func (e *env) waitTask(n *Nexus, tag uint32) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for e.lu.tasks.find(taskKey{nexus: n.Key(), tag: tag}) == nil {
		if time.Now().After(deadline) {
			e.t.Fatalf("task %d never entered the task set", tag)
		}
		time.Sleep(time.Millisecond)
	}
}

func recv(t *testing.T, ch <-chan Result, what string) Result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatalf("%s did not complete", what)
		return Result{}
	}
}

// ABORT TASK aborts a read stuck in a slow backend at once: the read's
// result is abandoned, nothing waits for the store.
func TestAbortTaskInSlowRead(t *testing.T) {
	fi := rbdbackend.NewFaultImage(memImage(testBlocks))
	e := newEnvWithImage(t, fi)
	var logs lockedBuffer
	e.tgt.log = slog.New(slog.NewTextHandler(&logs, nil))
	fi.SetLatency(rbdbackend.OpRead, time.Hour)
	res := e.async(e.n, 1000, TaskSimple, cdb10(opRead10, 0, 8), nil)
	e.waitTask(e.n, 1000)
	start := time.Now()
	if got := e.tgt.TaskManagement(e.n, TMFAbortTask, 0, 1000); got != TMFComplete {
		t.Fatalf("ABORT TASK: %d", got)
	}
	r := recv(t, res, "aborted READ")
	if !r.Aborted || r.TaskAbortedStatus {
		t.Errorf("result %+v, want aborted without status", r)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("abort took %v", d)
	}
	if logs.String() != "" {
		t.Errorf("an abort is logged as a failure: %s", logs.String())
	}
	if got := e.tgt.TaskManagement(e.n, TMFAbortTask, 0, 1000); got != TMFTaskNotExist {
		t.Errorf("second ABORT TASK: %d", got)
	}
	if got := e.tgt.TaskManagement(e.n, TMFAbortTask, 9, 1); got != TMFLUNNotExist {
		t.Errorf("ABORT TASK on an unmapped LUN: %d", got)
	}
}

// A LOGICAL UNIT RESET aborts every task: the other nexus's task ends with
// TASK ABORTED (TAS=1), and every nexus gets BUS DEVICE RESET.
func TestLUResetAbortsAndReports(t *testing.T) {
	g := newGatedImage()
	e := newEnvWithImage(t, g)
	other := e.login("iqn.2024-01.org.example:h2", 2)
	g.close()
	res := e.async(other, 7, TaskSimple, cdb10(opRead10, 0, 1), nil)
	own := e.async(e.n, 8, TaskSimple, cdb10(opWrite10, 0, 1), fill(testBlockSize, 1))
	e.waitTask(other, 7)
	e.waitTask(e.n, 8)
	<-g.entered
	<-g.entered
	e.good([]byte{opReserve6, 0, 0, 0, 0, 0}, nil)
	done := make(chan TMFResponse, 1)
	go func() { done <- e.tgt.TaskManagement(e.n, TMFLUReset, 0, 0) }()
	r := recv(t, res, "other nexus's READ")
	if !r.Aborted || !r.TaskAbortedStatus {
		t.Errorf("other nexus: %+v, want TASK ABORTED", r)
	}
	// The write is in the backend: the reset waits for it.
	select {
	case <-done:
		t.Fatal("LU RESET completed while an aborted write was still running")
	case <-time.After(50 * time.Millisecond):
	}
	g.open()
	if got := <-done; got != TMFComplete {
		t.Fatalf("LU RESET: %d", got)
	}
	if r := recv(t, own, "own WRITE"); !r.Aborted || r.TaskAbortedStatus {
		t.Errorf("own nexus: %+v, want aborted without status", r)
	}
	for _, n := range []*Nexus{e.n, other} {
		r := e.execOn(n, 0, cdbTUR(), nil)
		if k, c := senseCode(t, r); k != senseUnitAttention || c != ascBusDeviceReset {
			t.Errorf("%s after LU RESET: %#x/%04x", n.InitiatorName, k, c)
		}
	}
	// The SPC-2 reservation ended.
	if r := e.execOn(other, 0, []byte{opReserve6, 0, 0, 0, 0, 0}, nil); r.Status != StatusGood {
		t.Errorf("RESERVE after LU RESET: %#x", r.Status)
	}
}

func TestAbortTaskSetAndClearTaskSet(t *testing.T) {
	g := newGatedImage()
	e := newEnvWithImage(t, g)
	other := e.login("iqn.2024-01.org.example:h2", 2)
	g.close()
	mine := e.async(e.n, 1, TaskSimple, cdb10(opRead10, 0, 1), nil)
	theirs := e.async(other, 1, TaskSimple, cdb10(opRead10, 0, 1), nil)
	e.waitTask(e.n, 1)
	e.waitTask(other, 1)
	if got := e.tgt.TaskManagement(e.n, TMFAbortTaskSet, 0, 0); got != TMFComplete {
		t.Fatal(got)
	}
	if r := recv(t, mine, "own READ"); !r.Aborted {
		t.Errorf("ABORT TASK SET left the own task: %+v", r)
	}
	select {
	case r := <-theirs:
		t.Fatalf("ABORT TASK SET aborted another nexus's task: %+v", r)
	case <-time.After(20 * time.Millisecond):
	}
	// CLEAR TASK SET with TAS=0: no status, COMMANDS CLEARED BY ANOTHER
	// INITIATOR instead.
	ctl := e.good(cdbModeSense6(true, pcCurrent, pageControl, 0, 255), nil)[4:]
	ctl[5] &^= 0x40
	g.open()
	e.good(modeSelect6(ctl))
	e.execOn(other, 0, cdbTUR(), nil) // MODE PARAMETERS CHANGED
	g.close()
	theirs = e.async(other, 2, TaskSimple, cdb10(opRead10, 0, 1), nil)
	e.waitTask(other, 2)
	if got := e.tgt.TaskManagement(e.n, TMFClearTaskSet, 0, 0); got != TMFComplete {
		t.Fatal(got)
	}
	if r := recv(t, theirs, "other READ"); !r.Aborted || r.TaskAbortedStatus {
		t.Errorf("TAS=0: %+v", r)
	}
	g.open()
	r := e.execOn(other, 0, cdbTUR(), nil)
	if k, c := senseCode(t, r); k != senseUnitAttention || c != ascCommandsCleared {
		t.Errorf("after CLEAR TASK SET: %#x/%04x", k, c)
	}
}

// An ORDERED task waits for the tasks before it, and SIMPLE tasks after it
// wait for it; HEAD OF QUEUE tasks wait for nobody.
func TestOrderedTasks(t *testing.T) {
	g := newGatedImage()
	e := newEnvWithImage(t, g)
	g.close()
	first := e.async(e.n, 1, TaskSimple, cdb10(opRead10, 0, 1), nil)
	e.waitTask(e.n, 1)
	<-g.entered
	ordered := e.async(e.n, 2, TaskOrdered, cdbTUR(), nil)
	e.waitTask(e.n, 2)
	after := e.async(e.n, 3, TaskSimple, cdbTUR(), nil)
	e.waitTask(e.n, 3)
	head := e.async(e.n, 4, TaskHeadOfQueue, cdbTUR(), nil)
	if r := recv(t, head, "HEAD OF QUEUE"); r.Status != StatusGood {
		t.Errorf("HEAD OF QUEUE: %+v", r)
	}
	select {
	case <-ordered:
		t.Fatal("ORDERED task ran before the task ahead of it")
	case <-after:
		t.Fatal("SIMPLE task overtook an ORDERED task")
	case <-time.After(30 * time.Millisecond):
	}
	g.open()
	for _, c := range []<-chan Result{first, ordered, after} {
		if r := recv(t, c, "queued task"); r.Status != StatusGood {
			t.Errorf("%+v", r)
		}
	}
}

func TestTargetResetAndNexusLoss(t *testing.T) {
	e := newEnv(t)
	other := e.login("iqn.2024-01.org.example:h2", 2)
	e.good([]byte{opReserve6, 0, 0, 0, 0, 0}, nil)
	if r := e.execOn(other, 0, cdb10(opRead10, 0, 1), nil); r.Status != StatusReservationConflict {
		t.Fatalf("READ through another nexus's reservation: %#x", r.Status)
	}
	// Losing the nexus releases its SPC-2 reservation.
	e.tgt.NexusLogout(e.n)
	if r := e.execOn(other, 0, cdb10(opRead10, 0, 1), nil); r.Status != StatusGood {
		t.Fatalf("READ after the holder's nexus loss: %#x", r.Status)
	}
	if got := e.tgt.TaskManagement(other, TMFTargetWarmReset, 0, 0); got != TMFComplete {
		t.Fatal(got)
	}
	r := e.execOn(other, 0, cdbTUR(), nil)
	if k, c := senseCode(t, r); k != senseUnitAttention || c != ascPowerOnReset {
		t.Errorf("after TARGET WARM RESET: %#x/%04x", k, c)
	}
	for fn, want := range map[TMFunction]TMFResponse{
		TMFClearACA: TMFNotSupported, TMFTaskReassign: TMFReassignUnsupported, 99: TMFNotSupported,
	} {
		if got := e.tgt.TaskManagement(other, fn, 0, 0); got != want {
			t.Errorf("function %d: %d, want %d", fn, got, want)
		}
	}
}

func TestOverlappedTag(t *testing.T) {
	g := newGatedImage()
	e := newEnvWithImage(t, g)
	g.close()
	first := e.async(e.n, 5, TaskSimple, cdb10(opRead10, 0, 1), nil)
	e.waitTask(e.n, 5)
	r := e.tgt.Execute(context.Background(), &Command{Nexus: e.n, CDB: cdbTUR(), Tag: 5})
	if k, c := senseCode(t, r); k != senseAbortedCommand || c != ascOverlappedCommands {
		t.Errorf("overlapped tag: %#x/%04x", k, c)
	}
	g.open()
	recv(t, first, "first task")
}
