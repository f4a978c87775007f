package scsi

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/rbdbackend"
)

// asyncImage is a memory image that starts requests itself
// (rbdbackend.AsyncIO), completing them on a goroutine of its own, or
// holding the completions until release while hold is set.
type asyncImage struct {
	*rbdbackend.MemoryImage
	refuse atomic.Bool // Start* report false
	hold   atomic.Bool

	mu      sync.Mutex
	held    []func()
	started atomic.Int32
}

func newAsyncImage() *asyncImage { return &asyncImage{MemoryImage: memImage(testBlocks)} }

func (a *asyncImage) AsyncFor() rbdbackend.Image { return a }

func (a *asyncImage) StartReadAt(p []byte, off int64, done rbdbackend.Completer) bool {
	return a.start(func() error { _, err := a.ReadAt(p, off); return err }, done)
}

func (a *asyncImage) StartWriteAt(p []byte, off int64, done rbdbackend.Completer) bool {
	return a.start(func() error { _, err := a.WriteAt(p, off); return err }, done)
}

func (a *asyncImage) start(io func() error, done rbdbackend.Completer) bool {
	if a.refuse.Load() {
		return false
	}
	a.started.Add(1)
	run := func() { done.Complete(io(), nil) }
	if a.hold.Load() {
		a.mu.Lock()
		a.held = append(a.held, run)
		a.mu.Unlock()
		return true
	}
	go run()
	return true
}

// release completes the held requests.
func (a *asyncImage) release() {
	a.hold.Store(false)
	a.mu.Lock()
	held := a.held
	a.held = nil
	a.mu.Unlock()
	for _, run := range held {
		run()
	}
}

func (a *asyncImage) heldCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.held)
}

// doneRecorder collects what Target.Start hands back.
type doneRecorder struct {
	ch    chan Result
	calls atomic.Int32
}

func newDoneRecorder() *doneRecorder { return &doneRecorder{ch: make(chan Result, 4)} }

func (d *doneRecorder) Done(r Result, _ *rbdbackend.Batch) {
	d.calls.Add(1)
	d.ch <- r
}

// start begins cdb with Target.Start and reports whether it was taken.
func (e *env) start(ctx context.Context, n *Nexus, tag uint32, cdb, data []byte, d *doneRecorder) bool {
	cmd := &Command{Nexus: n, CDB: cdb, Attr: TaskSimple, Tag: tag, DataOut: data,
		ExpectedLength: uint32(len(data)), Write: data != nil, Read: data == nil}
	return e.tgt.Start(ctx, cmd, d)
}

// noMore checks that d is not called again.
func (d *doneRecorder) noMore(t *testing.T) {
	t.Helper()
	time.Sleep(20 * time.Millisecond) // a second call would come from a completion already released
	if n := d.calls.Load(); n != 1 {
		t.Fatalf("Done called %d times", n)
	}
}

func TestStartReadWrite(t *testing.T) {
	img := newAsyncImage()
	e := newEnvWithImage(t, img)
	data := fill(8*testBlockSize, 0x5a)
	w := newDoneRecorder()
	if !e.start(context.Background(), e.n, 1, cdb10(opWrite10, 16, 8), data, w) {
		t.Fatal("WRITE(10) was not started")
	}
	if r := recv(t, w.ch, "WRITE"); r.Status != StatusGood || r.Aborted {
		t.Fatalf("WRITE: %+v", r)
	}
	rd := newDoneRecorder()
	if !e.start(context.Background(), e.n, 2, cdb16(opRead16, 16, 8), nil, rd) {
		t.Fatal("READ(16) was not started")
	}
	r := recv(t, rd.ch, "READ")
	if r.Status != StatusGood || !bytes.Equal(r.Data, data) {
		t.Fatalf("READ: status %#x, data equal %v", r.Status, bytes.Equal(r.Data, data))
	}
	if n := img.started.Load(); n != 2 {
		t.Fatalf("%d requests started in the image, want 2", n)
	}
	w.noMore(t)
	rd.noMore(t)
	if got := e.good(cdb10(opRead10, 16, 8), nil); !bytes.Equal(got, data) {
		t.Fatal("Execute reads other data than Start wrote")
	}
}

// Start takes only what it can start without waiting and without a
// step after the request; everything else is left to Execute untouched.
func TestStartDeclines(t *testing.T) {
	img := newAsyncImage()
	e := newEnvWithImage(t, img)
	fua := cdb10(opWrite10, 0, 1)
	fua[1] |= 0x08
	tests := []struct {
		name string
		cdb  []byte
		data []byte
	}{
		{"not a READ or WRITE", cdbTUR(), nil},
		{"WRITE AND VERIFY", cdb10(opWriteVerify10, 0, 1), fill(testBlockSize, 1)},
		{"FUA", fua, fill(testBlockSize, 1)},
		{"partial block", cdb10(opWrite10, 0, 2), fill(testBlockSize+100, 1)},
		{"beyond the capacity", cdb10(opRead10, testBlocks-1, 2), nil},
		{"zero blocks", cdb10(opRead10, 0, 0), nil},
		{"unmapped LUN", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDoneRecorder()
			cmd := &Command{Nexus: e.n, CDB: tc.cdb, Attr: TaskSimple, Tag: 7, DataOut: tc.data}
			if tc.cdb == nil {
				cmd.CDB, cmd.LUN = cdb10(opRead10, 0, 1), 5
			}
			if e.tgt.Start(context.Background(), cmd, d) {
				t.Fatal("started")
			}
			if d.calls.Load() != 0 || img.started.Load() != 0 || e.lu.tasks.find(taskKey{nexus: e.n.Key(), tag: 7}) != nil {
				t.Fatal("a declined command left traces")
			}
		})
	}
	t.Run("write cache disabled", func(t *testing.T) {
		e.lu.modeFlags.And(^modeWCE)
		defer e.lu.modeFlags.Or(modeWCE)
		if e.start(context.Background(), e.n, 8, cdb10(opWrite10, 0, 1), fill(testBlockSize, 1), newDoneRecorder()) {
			t.Fatal("a write needing a flush after it was started")
		}
	})
	t.Run("image without AsyncIO", func(t *testing.T) {
		m := newEnv(t)
		if m.start(context.Background(), m.n, 9, cdb10(opRead10, 0, 1), nil, newDoneRecorder()) {
			t.Fatal("started on a memory image")
		}
	})
	t.Run("ORDERED task ahead", func(t *testing.T) {
		var ordered taskEntry
		if _, err := e.lu.tasks.enter(context.Background(), &ordered, e.n, 99, TaskOrdered); err != nil {
			t.Fatal(err)
		}
		if e.start(context.Background(), e.n, 10, cdb10(opRead10, 0, 1), nil, newDoneRecorder()) {
			t.Fatal("started behind an ORDERED task")
		}
		e.lu.tasks.leave(&ordered)
		d := newDoneRecorder()
		if !e.start(context.Background(), e.n, 11, cdb10(opRead10, 0, 1), nil, d) {
			t.Fatal("not started once the ORDERED task left")
		}
		recv(t, d.ch, "READ")
	})
}

// The checks before a command runs apply as in Execute: a pending unit
// attention is reported instead of the request.
func TestStartUnitAttention(t *testing.T) {
	img := newAsyncImage()
	e := newEnvWithImage(t, img)
	n := &Nexus{InitiatorName: "iqn.2024-01.org.example:host2", ISID: [6]byte{0x80, 0, 0, 0, 0, 2}, TargetName: testTarget,
		TPGT: 1, RelativePortID: 1, PortGroupID: 1}
	e.tgt.NexusLogin(n)
	d := newDoneRecorder()
	if !e.start(context.Background(), n, 1, cdb10(opRead10, 0, 1), nil, d) {
		t.Fatal("not started")
	}
	r := recv(t, d.ch, "READ")
	if k, c := senseCode(t, r); k != senseUnitAttention || c != ascPowerOnReset {
		t.Fatalf("sense %#x/%04x, want the power-on unit attention", k, c)
	}
	if img.started.Load() != 0 {
		t.Fatal("the request reached the image")
	}
	if e.lu.tasks.find(taskKey{nexus: n.Key(), tag: 1}) != nil {
		t.Fatal("the task stayed in the task set")
	}
}

// An image that cannot start a request now leaves the command to the
// handler, on a goroutine: the result is the same.
func TestStartImageRefuses(t *testing.T) {
	img := newAsyncImage()
	e := newEnvWithImage(t, img)
	e.good(cdb10(opWrite10, 3, 1), fill(testBlockSize, 7))
	img.refuse.Store(true)
	d := newDoneRecorder()
	if !e.start(context.Background(), e.n, 1, cdb10(opRead10, 3, 1), nil, d) {
		t.Fatal("not started")
	}
	if r := recv(t, d.ch, "READ"); r.Status != StatusGood || !bytes.Equal(r.Data, fill(testBlockSize, 7)) {
		t.Fatalf("READ: %+v", r)
	}
	d.noMore(t)
}

// ABORT TASK answers at once for a READ whose request is still in flight;
// the request's late completion changes nothing. A WRITE in flight is
// waited for: no aborted command changes the medium after the abort.
func TestStartAbort(t *testing.T) {
	for _, write := range []bool{false, true} {
		name := map[bool]string{false: "READ", true: "WRITE"}[write]
		t.Run(name, func(t *testing.T) {
			img := newAsyncImage()
			e := newEnvWithImage(t, img)
			t.Cleanup(img.release) // before the LU closes, should the test fail
			img.hold.Store(true)
			cdb, data := cdb10(opRead10, 0, 8), []byte(nil)
			if write {
				cdb, data = cdb10(opWrite10, 0, 8), fill(8*testBlockSize, 3)
			}
			d := newDoneRecorder()
			if !e.start(context.Background(), e.n, 1, cdb, data, d) {
				t.Fatal("not started")
			}
			tmf := make(chan TMFResponse, 1)
			go func() { tmf <- e.tgt.TaskManagement(e.n, TMFAbortTask, 0, 1) }()
			if write {
				select {
				case <-tmf:
					t.Fatal("ABORT TASK answered while the WRITE was in flight")
				case <-time.After(50 * time.Millisecond):
				}
				img.release()
			}
			select {
			case got := <-tmf:
				if got != TMFComplete {
					t.Fatalf("ABORT TASK: %d", got)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("ABORT TASK did not answer")
			}
			r := recv(t, d.ch, name)
			if !r.Aborted || r.TaskAbortedStatus {
				t.Fatalf("result %+v, want aborted without status", r)
			}
			if !write {
				if img.heldCount() != 1 {
					t.Fatal("the READ's request is not still in flight")
				}
				img.release()
			}
			d.noMore(t)
		})
	}
}

// The command's context ending (the connection went) abandons a READ in
// flight and waits for a WRITE.
func TestStartContextEnds(t *testing.T) {
	img := newAsyncImage()
	e := newEnvWithImage(t, img)
	t.Cleanup(img.release)
	img.hold.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	rd, wr := newDoneRecorder(), newDoneRecorder()
	if !e.start(ctx, e.n, 1, cdb10(opRead10, 0, 1), nil, rd) ||
		!e.start(ctx, e.n, 2, cdb10(opWrite10, 8, 1), fill(testBlockSize, 1), wr) {
		t.Fatal("not started")
	}
	cancel()
	if r := recv(t, rd.ch, "READ"); !r.Aborted {
		t.Fatalf("READ: %+v, want aborted", r)
	}
	select {
	case r := <-wr.ch:
		t.Fatalf("WRITE ended while in flight: %+v", r)
	case <-time.After(50 * time.Millisecond):
	}
	img.release()
	if r := recv(t, wr.ch, "WRITE"); !r.Aborted {
		t.Fatalf("WRITE: %+v, want aborted", r)
	}
	rd.noMore(t)
	wr.noMore(t)
	if got := e.good(cdb10(opRead10, 8, 1), nil); !bytes.Equal(got, fill(testBlockSize, 1)) {
		t.Fatal("the WRITE in flight did not complete")
	}
}

// Many commands at once, some aborted, under the race detector.
func TestStartConcurrent(t *testing.T) {
	img := newAsyncImage()
	e := newEnvWithImage(t, img)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				tag := uint32(g*1000 + i)
				lba := uint32(g*64 + i%8)
				d := newDoneRecorder()
				cdb, data := cdb10(opRead10, lba, 1), []byte(nil)
				if i%2 == 0 {
					cdb, data = cdb10(opWrite10, lba, 1), fill(testBlockSize, byte(i))
				}
				if !e.start(context.Background(), e.n, tag, cdb, data, d) {
					t.Error("not started")
					return
				}
				if i%5 == 0 {
					e.tgt.TaskManagement(e.n, TMFAbortTask, 0, tag)
				}
				r := <-d.ch
				if !r.Aborted && r.Status != StatusGood {
					t.Errorf("status %#x", r.Status)
				}
			}
		}()
	}
	wg.Wait()
}
