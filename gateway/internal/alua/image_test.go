package alua

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/rbdbackend"
	"github.com/rbdgw/rbdgw/rbdbackend/imagetest"
)

// fencedClient is fenced until the deadline passes.
type fencedClient struct{ until time.Time }

func (c fencedClient) ClientAddr() string { return "127.0.0.1:0/1" }
func (c fencedClient) Fenced() bool       { return time.Now().Before(c.until) }
func (c fencedClient) Fence(string) error { return nil }

// flakyImage fails its first reads with ErrLockLost and counts the lock
// calls.
type flakyImage struct {
	lockImage
	failReads          atomic.Int32
	acquired, released atomic.Int32
}

func (f *flakyImage) ReadAt(p []byte, off int64) (int, error) {
	if f.failReads.Add(-1) >= 0 {
		return 0, rbdbackend.ErrLockLost
	}
	return f.MemoryImage.ReadAt(p, off)
}

func (f *flakyImage) AcquireLock() error { f.acquired.Add(1); return nil }
func (f *flakyImage) ReleaseLock() error { f.released.Add(1); return nil }

func newFlaky(fencedFor time.Duration, fails int32) (*flakyImage, rbdbackend.Image) {
	img := &flakyImage{lockImage: lockImage{MemoryImage: rbdbackend.NewMemoryImage(1 << 20)}}
	img.failReads.Store(fails)
	m := NewManager(ManagerOptions{Gateway: "gw-a", Provider: NewProvider("gw-a", 1, quiet),
		Client: fencedClient{until: time.Now().Add(fencedFor)}, Logger: quiet})
	return img, m.Wrap("rbd/d0", img)
}

func TestReadRetriedOnTheReplacementClient(t *testing.T) {
	_, w := newFlaky(80*time.Millisecond, 1)
	start := time.Now()
	if _, err := w.ReadAt(make([]byte, 512), 0); err != nil {
		t.Fatalf("read after the client was replaced: %v", err)
	}
	if took := time.Since(start); took < 80*time.Millisecond {
		t.Fatalf("retried after %v, before the client was replaced", took)
	}
}

// The wrapper reads with a context itself (no goroutine per read in the
// SCSI layer), retried like ReadAt, and stops waiting for the replacement
// client when the context ends.
func TestReadAtContextRetriedAndCancelled(t *testing.T) {
	start := time.Now() // before the client's fence begins
	_, w := newFlaky(80*time.Millisecond, 1)
	cr, ok := w.(rbdbackend.ContextReader)
	if !ok || cr.ReadsFor() != w {
		t.Fatal("the wrapper is not a ContextReader for itself")
	}
	if _, err := cr.ReadAtContext(context.Background(), make([]byte, 512), 0); err != nil {
		t.Fatalf("read after the client was replaced: %v", err)
	}
	if took := time.Since(start); took < 80*time.Millisecond {
		t.Fatalf("retried after %v, before the client was replaced", took)
	}

	_, w = newFlaky(time.Hour, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err := w.(rbdbackend.ContextReader).ReadAtContext(ctx, make([]byte, 512), 0)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read through a fenced client with an ending context: %v, want its deadline", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("returned after %v, not when the context ended", took)
	}
}

func TestReadFailsWhileTheClientStaysFenced(t *testing.T) {
	old := recoverWait
	recoverWait = 50 * time.Millisecond
	defer func() { recoverWait = old }()
	_, w := newFlaky(time.Hour, 1)
	if _, err := w.ReadAt(make([]byte, 512), 0); err == nil {
		t.Fatal("read succeeded through a fenced client")
	}
}

func TestCompareAndWriteTakesTheLockOnlyWhenLibrbdCannotCompare(t *testing.T) {
	tests := []struct {
		name     string
		off      int64
		n        int
		acquires int32
	}{
		{"one sector", 512, 512, 0},
		{"part of a sector", 1024, 256, 0},
		{"across sectors", 256, 512, 1},
		{"4 KiB block", 4096, 4096, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img, w := newFlaky(0, 0)
			cmp, data := make([]byte, tc.n), make([]byte, tc.n)
			data[0] = 1
			if _, err := rbdbackend.CapabilitiesOf(w).CompareAndWriter.CompareAndWrite(tc.off, cmp, data); err != nil {
				t.Fatal(err)
			}
			if img.acquired.Load() != tc.acquires || img.released.Load() != tc.acquires {
				t.Fatalf("lock acquired %d, released %d times; want %d", img.acquired.Load(), img.released.Load(), tc.acquires)
			}
		})
	}
}

// lockedImage gives any image the lock methods of Image and forwards its
// capabilities; LockOwners reports this gateway's client and counts the
// calls (the guard's stall timer ends in one).
type lockedImage struct {
	rbdbackend.Image
	lookups atomic.Int32
}

func (l *lockedImage) Capabilities() rbdbackend.Capabilities {
	return rbdbackend.CapabilitiesOf(l.Image)
}

func (l *lockedImage) LockOwners() ([]string, error) {
	l.lookups.Add(1)
	return []string{fencedClient{}.ClientAddr()}, nil
}

func (l *lockedImage) BreakLock(string) error { return nil }
func (l *lockedImage) AcquireLock() error     { return nil }
func (l *lockedImage) ReleaseLock() error     { return nil }

func newGuardManager(stall time.Duration) *Manager {
	return NewManager(ManagerOptions{Gateway: "gw-a", Provider: NewProvider("gw-a", 1, quiet),
		Client: fencedClient{}, StallTimeout: stall, Logger: quiet})
}

func TestWrapperForwardsCapabilities(t *testing.T) {
	imagetest.CheckForwarding(t, func(t *testing.T, inner rbdbackend.Image) rbdbackend.Image {
		return newGuardManager(0).Wrap("rbd/d0", &lockedImage{Image: inner})
	})
}

// Every write the wrapper forwards is guarded (a write that stalls looks
// for the lock holder); reads are not.
func TestWrapperGuardsEveryWrite(t *testing.T) {
	fault := rbdbackend.NewFaultImage(imagetest.NewFullImage(1 << 20))
	img := &lockedImage{Image: fault}
	w := newGuardManager(10*time.Millisecond).Wrap("rbd/d0", img)
	caps := rbdbackend.CapabilitiesOf(w)
	block := make([]byte, 512)
	ops := []struct {
		name    string
		op      rbdbackend.FaultOp
		call    func() error
		guarded bool
	}{
		{"WriteAt", rbdbackend.OpWrite, func() error { _, err := w.WriteAt(block, 0); return err }, true},
		{"Discard", rbdbackend.OpDiscard, func() error { return caps.Discarder.Discard(0, 512) }, true},
		{"WriteSame", rbdbackend.OpWriteSame, func() error { return caps.WriteSamer.WriteSame(0, 512, block) }, true},
		{"CompareAndWrite", rbdbackend.OpCompareAndWrite, func() error {
			_, err := caps.CompareAndWriter.CompareAndWrite(0, block, block)
			return err
		}, true},
		{"ReadAt", rbdbackend.OpRead, func() error { _, err := w.ReadAt(block, 0); return err }, false},
		{"Extent", rbdbackend.OpExtent, func() error { _, _, err := caps.AllocationReporter.Extent(0, 512); return err }, false},
	}
	for _, tc := range ops {
		t.Run(tc.name, func(t *testing.T) {
			fault.SetLatency(tc.op, 80*time.Millisecond)
			defer fault.SetLatency(tc.op, 0)
			img.lookups.Store(0)
			if err := tc.call(); err != nil {
				t.Fatal(err)
			}
			if got := img.lookups.Load() > 0; got != tc.guarded {
				t.Errorf("a slow %s looked for the lock holder: %v, want %v", tc.name, got, tc.guarded)
			}
		})
	}
}

// asyncImage is a lockedImage over a memory image that also starts
// requests itself (rbdbackend.AsyncIO). A started request runs on a
// goroutine of its own, after hold is closed when set, and completes with
// err when set; refuse makes Start refuse everything.
type asyncImage struct {
	*lockedImage
	refuse    bool
	err       error // of the completions, and of WriteAt
	hold      chan struct{}
	syncReads atomic.Int32
}

func newAsyncImage() *asyncImage {
	return &asyncImage{lockedImage: &lockedImage{Image: rbdbackend.NewMemoryImage(1 << 20)}}
}

func (a *asyncImage) ReadAt(p []byte, off int64) (int, error) {
	a.syncReads.Add(1)
	return a.Image.ReadAt(p, off)
}

func (a *asyncImage) WriteAt(p []byte, off int64) (int, error) {
	if a.err != nil {
		return 0, a.err
	}
	return a.Image.WriteAt(p, off)
}

func (a *asyncImage) AsyncFor() rbdbackend.Image { return a }

func (a *asyncImage) StartReadAt(p []byte, off int64, done rbdbackend.Completer) bool {
	return a.start(done, func() error { _, err := a.Image.ReadAt(p, off); return err })
}

func (a *asyncImage) StartWriteAt(p []byte, off int64, done rbdbackend.Completer) bool {
	return a.start(done, func() error { _, err := a.Image.WriteAt(p, off); return err })
}

func (a *asyncImage) start(done rbdbackend.Completer, io func() error) bool {
	if a.refuse {
		return false
	}
	go func() {
		if a.hold != nil {
			<-a.hold
		}
		err := a.err
		if err == nil {
			err = io()
		}
		done.Complete(err, nil)
	}()
	return true
}

// completion records the completion of a request started through the
// wrapper, and what before reports at that moment.
type completion struct {
	calls  atomic.Int32
	errs   chan error
	before func() bool
	seen   atomic.Bool
}

func newCompletion(before func() bool) *completion {
	return &completion{errs: make(chan error, 1), before: before}
}

func (c *completion) Complete(err error, _ *rbdbackend.Batch) {
	if c.before != nil {
		c.seen.Store(c.before())
	}
	if c.calls.Add(1) == 1 {
		c.errs <- err
	}
}

func (c *completion) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-c.errs:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no completion within 10 s")
		return nil
	}
}

// The wrapper starts requests for itself, never by passing its inner
// image's AsyncIO off as its own; without one inside it starts nothing.
func TestWrapperAsyncIsItsOwn(t *testing.T) {
	w := newGuardManager(0).Wrap("rbd/d0", newAsyncImage())
	if a := rbdbackend.AsyncOf(w); a == nil || a.AsyncFor() != w {
		t.Fatalf("AsyncOf(wrapper) = %v, want the wrapper", a)
	}

	w = newGuardManager(0).Wrap("rbd/d0", &lockedImage{Image: rbdbackend.NewMemoryImage(1 << 20)})
	if a := rbdbackend.AsyncOf(w); a != nil {
		t.Fatal("AsyncOf(wrapper) is set though its inner image cannot start requests")
	}
	a := w.(rbdbackend.AsyncIO)
	c := newCompletion(nil)
	if a.StartReadAt(make([]byte, 512), 0, c) || a.StartWriteAt(make([]byte, 512), 0, c) {
		t.Fatal("started a request without an inner AsyncIO")
	}
	if n := c.calls.Load(); n != 0 {
		t.Fatalf("Complete called %d times for refused requests", n)
	}
}

// A started read that fails because the client was fenced is retried,
// like ReadAt, once the client is replaced; other outcomes reach the
// caller as they are.
func TestStartReadAtRetried(t *testing.T) {
	old := recoverWait
	defer func() { recoverWait = old }()
	tests := []struct {
		name      string
		err       error // of the inner request
		fencedFor time.Duration
		wait      time.Duration // recoverWait
		wantErr   error
		retries   int32 // the wrapper's ReadAt calls on the inner image
	}{
		{"read", nil, 0, old, nil, 0},
		{"fenced, then replaced", rbdbackend.ErrLockLost, 80 * time.Millisecond, old, nil, 1},
		{"replaced already", rbdbackend.ErrLockLost, 0, old, nil, 1},
		{"still fenced", rbdbackend.ErrLockLost, time.Hour, 50 * time.Millisecond, rbdbackend.ErrLockLost, 0},
		{"timed out", rbdbackend.ErrTimeout, time.Hour, old, rbdbackend.ErrTimeout, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recoverWait = tc.wait
			img := newAsyncImage()
			data := bytes.Repeat([]byte{0xa5}, 4096)
			if _, err := img.Image.WriteAt(data, 8192); err != nil {
				t.Fatal(err)
			}
			img.err = tc.err
			fenced := fencedClient{until: time.Now().Add(tc.fencedFor)}
			m := NewManager(ManagerOptions{Gateway: "gw-a", Provider: NewProvider("gw-a", 1, quiet), Client: fenced, Logger: quiet})
			w := m.Wrap("rbd/d0", img).(rbdbackend.AsyncIO)
			c := newCompletion(func() bool { return !fenced.Fenced() })
			p := make([]byte, len(data))
			if !w.StartReadAt(p, 8192, c) {
				t.Fatal("StartReadAt refused")
			}
			err := c.wait(t)
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("completed with %v, want %v", err, tc.wantErr)
			}
			if got := img.syncReads.Load(); got != tc.retries {
				t.Fatalf("read %d times again, want %d", got, tc.retries)
			}
			if tc.retries > 0 && !c.seen.Load() {
				t.Fatal("completed before the client was replaced")
			}
			if err == nil && !bytes.Equal(p, data) {
				t.Fatal("completed without the data")
			}
			if n := c.calls.Load(); n != 1 {
				t.Fatalf("Complete called %d times", n)
			}
		})
	}
}

// A started write that times out fences this gateway's client, as WriteAt
// does, before it is reported.
func TestStartWriteAtTimeoutFences(t *testing.T) {
	timeout := fmt.Errorf("rbd: write rbd/d0: %w", rbdbackend.ErrTimeout)
	self := clients["gw-a"]
	tests := []struct {
		name   string
		start  bool // StartWriteAt, or WriteAt
		err    error
		fenced bool
	}{
		{"WriteAt timed out", false, timeout, true},
		{"StartWriteAt timed out", true, timeout, true},
		{"StartWriteAt failed otherwise", true, rbdbackend.ErrLockLost, false},
		{"StartWriteAt written", true, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bl := &blocklist{}
			m := NewManager(ManagerOptions{Gateway: "gw-a", Provider: NewProvider("gw-a", 1, quiet),
				Client: client{self, bl}, Logger: quiet})
			img := newAsyncImage()
			img.err = tc.err
			w := m.Wrap("rbd/d0", img)
			fencedSelf := func() bool { return slices.Equal(bl.list(), []string{self}) }
			var err error
			var fencedFirst bool
			if tc.start {
				c := newCompletion(fencedSelf)
				if !w.(rbdbackend.AsyncIO).StartWriteAt(make([]byte, 512), 0, c) {
					t.Fatal("StartWriteAt refused")
				}
				err = c.wait(t)
				fencedFirst = c.seen.Load()
			} else {
				_, err = w.WriteAt(make([]byte, 512), 0)
				fencedFirst = fencedSelf()
			}
			if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Fatalf("write ended with %v, want %v", err, tc.err)
			}
			if fencedFirst != tc.fenced {
				t.Fatalf("own client fenced before the write was reported: %v, want %v", fencedFirst, tc.fenced)
			}
			if got := bl.list(); len(got) != 0 && !tc.fenced {
				t.Fatalf("fenced %v", got)
			}
		})
	}
}

// The stall timer of a started write runs until the write completes, and
// stops when the inner image refuses to start it.
func TestStartWriteAtStallTimer(t *testing.T) {
	const stall = 10 * time.Millisecond
	held := newAsyncImage()
	held.hold = make(chan struct{})
	refused := newAsyncImage()
	refused.refuse = true
	wh := newGuardManager(stall).Wrap("rbd/d0", held).(rbdbackend.AsyncIO)
	wr := newGuardManager(stall).Wrap("rbd/d0", refused).(rbdbackend.AsyncIO)

	c := newCompletion(nil)
	if wr.StartWriteAt(make([]byte, 512), 0, c) {
		t.Fatal("the wrapper started what its inner image refused")
	}
	hc := newCompletion(nil)
	if !wh.StartWriteAt(make([]byte, 512), 0, hc) {
		t.Fatal("StartWriteAt refused")
	}
	// While the held write stalls several times over, the refused one
	// looks for nobody.
	deadline := time.Now().Add(10 * time.Second)
	for held.lookups.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("a held write looked for the lock holder %d times in 10 s", held.lookups.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := refused.lookups.Load(); n != 0 {
		t.Fatalf("a refused write looked for the lock holder %d times", n)
	}
	if n := c.calls.Load(); n != 0 {
		t.Fatalf("Complete called %d times for a refused write", n)
	}
	close(held.hold)
	if err := hc.wait(t); err != nil {
		t.Fatal(err)
	}
}

// instantImage completes every started request before Start returns, as
// an image may (rbdbackend.AsyncIO), allocating nothing itself.
type instantImage struct{ *lockedImage }

func (a instantImage) AsyncFor() rbdbackend.Image { return a }

func (a instantImage) StartReadAt(p []byte, off int64, done rbdbackend.Completer) bool {
	_, err := a.Image.ReadAt(p, off)
	done.Complete(err, nil)
	return true
}

func (a instantImage) StartWriteAt(p []byte, off int64, done rbdbackend.Completer) bool {
	_, err := a.Image.WriteAt(p, off)
	done.Complete(err, nil)
	return true
}

// countingCompleter counts completions and keeps the last error.
type countingCompleter struct {
	n   int
	err error
}

func (c *countingCompleter) Complete(err error, _ *rbdbackend.Batch) { c.n, c.err = c.n+1, err }

// Started reads and writes cost the wrapper no allocation: their
// completers are pooled, and one timer per image watches the writes.
func TestStartedRequestsDoNotAllocate(t *testing.T) {
	inner := instantImage{&lockedImage{Image: rbdbackend.NewMemoryImage(1 << 20)}}
	w := newGuardManager(time.Minute).Wrap("rbd/d0", inner).(rbdbackend.AsyncIO)
	p := make([]byte, 4096)
	var c countingCompleter
	for _, tc := range []struct {
		name  string
		start func() bool
	}{
		{"StartReadAt", func() bool { return w.StartReadAt(p, 4096, &c) }},
		{"StartWriteAt", func() bool { return w.StartWriteAt(p, 4096, &c) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c = countingCompleter{}
			if n := testing.AllocsPerRun(1000, func() {
				if !tc.start() {
					t.Fatal("refused")
				}
			}); n > 0.05 {
				t.Errorf("%.2f allocations per request, want none", n)
			}
			if c.n != 1001 || c.err != nil {
				t.Errorf("%d completions, last error %v; want 1001, nil", c.n, c.err)
			}
		})
	}
}

// However many writes of an image stall together, the manager looks at the
// lock once per stall timeout, never more often.
func TestStalledWritesLookOncePerTimeout(t *testing.T) {
	const stall, writes = 20 * time.Millisecond, 8
	held := newAsyncImage()
	held.hold = make(chan struct{})
	w := newGuardManager(stall).Wrap("rbd/d0", held).(rbdbackend.AsyncIO)
	start := time.Now()
	var done []*completion
	for range writes {
		c := newCompletion(nil)
		if !w.StartWriteAt(make([]byte, 512), 0, c) {
			t.Fatal("StartWriteAt refused")
		}
		done = append(done, c)
	}
	time.Sleep(10 * stall)
	// A loaded machine may fire the first look late, never early.
	for deadline := time.Now().Add(10 * time.Second); held.lookups.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(stall)
	}
	looks := held.lookups.Load()
	elapsed := time.Since(start)
	close(held.hold)
	for _, c := range done {
		if err := c.wait(t); err != nil {
			t.Fatal(err)
		}
	}
	// A timer never fires early: each look is at least a timeout after
	// the first write began, or after the look before it.
	if most := int32(elapsed / stall); looks < 1 || looks > most {
		t.Errorf("%d looks at the lock in %v with %d writes stalled, want 1 to %d", looks, elapsed, writes, most)
	}
}
