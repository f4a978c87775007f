//go:build pacific

package rbd

import (
	"bytes"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/rbdbackend"
)

// completer records the completions of requests started through AsyncIO.
// Complete never blocks: it runs on the goroutine that delivers every
// completion.
type completer struct {
	calls atomic.Int32
	errs  chan error
}

func newCompleter() *completer { return &completer{errs: make(chan error, 1)} }

func (c *completer) Complete(err error, _ *rbdbackend.Batch) {
	if c.calls.Add(1) == 1 {
		c.errs <- err
	}
}

// wait returns the first completion's error.
func (c *completer) wait(t testing.TB) error {
	t.Helper()
	select {
	case err := <-c.errs:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("no completion within 30 s")
		return nil
	}
}

// once fails unless Complete ran exactly once (call it once nothing more
// can complete).
func (c *completer) once(t testing.TB, what string) {
	t.Helper()
	if n := c.calls.Load(); n != 1 {
		t.Errorf("%s: Complete called %d times, want 1", what, n)
	}
}

// idle waits until no request of the process is in flight (a test before
// may have abandoned reads that still complete).
func idle(t testing.TB) {
	t.Helper()
	eventually(t, 10*time.Second, "no request in flight", func() bool {
		return inFlight.ops.Load() == 0 && inFlight.bytes.Load() == 0
	})
}

func checkIdle(t testing.TB, img *Image) {
	t.Helper()
	if ops, n := inFlight.ops.Load(), inFlight.bytes.Load(); ops != 0 || n != 0 {
		t.Errorf("in flight after the completions: %d requests, %d bytes; want none", ops, n)
	}
	if n := img.ranges.Len(); n != 0 {
		t.Errorf("%d range locks left", n)
	}
}

func TestAsyncIsTheImage(t *testing.T) {
	img := newImage(t, sharedCluster(t), 1<<20, CreateOptions{})
	if a := rbdbackend.AsyncOf(img); a == nil || a.AsyncFor() != rbdbackend.Image(img) {
		t.Fatalf("AsyncOf(image) = %v, want the image", a)
	}
}

// Writes and reads started without a waiter round-trip, complete once,
// and leave nothing counted or locked.
func TestAsyncRoundTrip(t *testing.T) {
	const size = 8 << 20
	img := newImage(t, sharedCluster(t), size, CreateOptions{})
	idle(t)
	tests := []struct {
		name string
		off  int64
		n    int
	}{
		{"one sector", 0, 512},
		{"4 KiB block", 4096, 4096},
		{"unaligned", 1<<20 + 7, 64<<10 + 513},
		{"across objects", 4<<20 - 1000, 2000},
		{"1 MiB", 2 << 20, 1 << 20},
		{"end of image", size - 4096, 4096},
	}
	for k, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := randomBytes(uint64(100+k), tc.n)
			w := newCompleter()
			if !img.StartWriteAt(data, tc.off, w) {
				t.Fatal("StartWriteAt refused")
			}
			if err := w.wait(t); err != nil {
				t.Fatalf("write completed with %v", err)
			}
			checkIdle(t, img)
			got := make([]byte, tc.n)
			r := newCompleter()
			if !img.StartReadAt(got, tc.off, r) {
				t.Fatal("StartReadAt refused")
			}
			if err := r.wait(t); err != nil {
				t.Fatalf("read completed with %v", err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("read %d bytes at %d: not what was written (first difference at %d)", tc.n, tc.off, firstDifference(got, data))
			}
			checkBytes(t, img, tc.off, data) // and ReadAt agrees
			checkIdle(t, img)
			w.once(t, "write")
			r.once(t, "read")
		})
	}
}

// What cannot start, or would fail at once, is refused and never
// completed; ReadAt and WriteAt report it as before.
func TestAsyncRefusesWhatFails(t *testing.T) {
	const size = 1 << 20
	c := sharedCluster(t)
	img := newImage(t, c, size, CreateOptions{})
	closed := openImage(t, c, createImage(t, c, size, CreateOptions{}))
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	idle(t)
	tests := []struct {
		name    string
		img     *Image
		off     int64
		n       int
		wantErr error // of ReadAt and WriteAt; nil: none
	}{
		{"zero length", img, 0, 0, nil},
		{"zero length at the end", img, size, 0, nil},
		{"beyond the end", img, size - 512, 1024, rbdbackend.ErrOutOfRange},
		{"at the end", img, size, 512, rbdbackend.ErrOutOfRange},
		{"negative offset", img, -512, 512, rbdbackend.ErrOutOfRange},
		{"closed image", closed, 0, 512, rbdbackend.ErrClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCompleter()
			if tc.img.StartReadAt(make([]byte, tc.n), tc.off, c) {
				t.Error("StartReadAt started")
			}
			if tc.img.StartWriteAt(make([]byte, tc.n), tc.off, c) {
				t.Error("StartWriteAt started")
			}
			if _, err := tc.img.ReadAt(make([]byte, tc.n), tc.off); !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Errorf("ReadAt = %v, want %v", err, tc.wantErr)
			}
			if _, err := tc.img.WriteAt(make([]byte, tc.n), tc.off); !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Errorf("WriteAt = %v, want %v", err, tc.wantErr)
			}
			checkIdle(t, tc.img)
			if n := c.calls.Load(); n != 0 {
				t.Errorf("Complete called %d times for refused requests", n)
			}
		})
	}
}

// Requests without a waiter start only well below the Objecter's
// throttle.
func TestAsyncRefusedAtTheInFlightBound(t *testing.T) {
	img := newImage(t, sharedCluster(t), 64<<20, CreateOptions{})
	idle(t)
	tests := []struct {
		name       string
		ops, bytes int64 // added to inFlight meanwhile
		n          int
	}{
		{"ops at the bound", asyncMaxOps, 0, 512},
		{"bytes at the bound", 0, asyncMaxBytes, 512},
		{"bytes over the bound", 0, asyncMaxBytes - 511, 512},
		{"larger than the bound", 0, 0, asyncMaxBytes + 512},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inFlight.ops.Add(tc.ops)
			inFlight.bytes.Add(tc.bytes)
			c := newCompleter()
			read := img.StartReadAt(make([]byte, tc.n), 0, c)
			write := img.StartWriteAt(make([]byte, tc.n), 0, c)
			inFlight.ops.Add(-tc.ops)
			inFlight.bytes.Add(-tc.bytes)
			if read || write {
				t.Fatalf("started: read %v, write %v", read, write)
			}
			checkIdle(t, img)
			if n := c.calls.Load(); n != 0 {
				t.Errorf("Complete called %d times for refused requests", n)
			}
		})
	}
	// Just below the bound, a request starts.
	inFlight.ops.Add(asyncMaxOps - 1)
	c := newCompleter()
	ok := img.StartReadAt(make([]byte, 512), 0, c)
	inFlight.ops.Add(-(asyncMaxOps - 1))
	if !ok {
		t.Fatal("refused below the bound")
	}
	if err := c.wait(t); err != nil {
		t.Fatal(err)
	}
	checkIdle(t, img)
}

// A write does not wait for a range held exclusively (a compare and
// write): it is refused, and starts once the range is free. Reads take no
// range.
func TestAsyncWriteRefusedUnderAnExclusiveRange(t *testing.T) {
	img := newImage(t, sharedCluster(t), 1<<20, CreateOptions{})
	idle(t)
	held := img.ranges.Lock(4096, 4096, true)
	tests := []struct {
		name  string
		off   int64
		write bool
		ok    bool
	}{
		{"write of the range", 4096, true, false},
		{"write overlapping its head", 2048, true, false},
		{"write overlapping its tail", 8191, true, false},
		{"write beside it", 8192, true, true},
		{"read of the range", 4096, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCompleter()
			p := randomBytes(uint64(tc.off), 4096)
			start := img.StartReadAt
			if tc.write {
				start = img.StartWriteAt
			}
			if got := start(p, tc.off, c); got != tc.ok {
				t.Fatalf("started %v, want %v", got, tc.ok)
			}
			if tc.ok {
				if err := c.wait(t); err != nil {
					t.Fatal(err)
				}
			} else if n := c.calls.Load(); n != 0 {
				t.Fatalf("Complete called %d times for a refused write", n)
			}
			if n := img.ranges.Len(); n != 1 {
				t.Fatalf("%d range locks, want only the exclusive one", n)
			}
		})
	}
	img.ranges.Unlock(held)
	data := randomBytes(9, 4096)
	c := newCompleter()
	if !img.StartWriteAt(data, 4096, c) {
		t.Fatal("write refused after the range was unlocked")
	}
	if err := c.wait(t); err != nil {
		t.Fatal(err)
	}
	checkBytes(t, img, 4096, data)
	checkIdle(t, img)
}

// Close waits for the requests in flight: they hold the image's read lock
// until librbd completes them.
func TestAsyncCloseWaitsForRequestsInFlight(t *testing.T) {
	img := newImage(t, sharedCluster(t), 8<<20, CreateOptions{})
	idle(t)
	data := randomBytes(3, 1<<20)
	mustWrite(t, img, data, 0)
	var cs []*completer
	bufs := make([][]byte, 4)
	for k := range bufs {
		bufs[k] = make([]byte, 1<<20)
		c := newCompleter()
		if !img.StartReadAt(bufs[k], 0, c) {
			t.Fatalf("read %d refused", k)
		}
		cs = append(cs, c)
		c = newCompleter()
		if !img.StartWriteAt(data, int64(k+1)<<20, c) {
			t.Fatalf("write %d refused", k)
		}
		cs = append(cs, c)
	}
	closed := make(chan error, 1)
	go func() { closed <- img.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return")
	}
	// librbd completed every request before Close could close the image
	// (the completion uncounts it before releasing the read lock).
	checkIdle(t, img)
	for k, c := range cs {
		if err := c.wait(t); err != nil {
			t.Errorf("request %d completed with %v", k, err)
		}
	}
	for k, p := range bufs {
		if !bytes.Equal(p, data) {
			t.Errorf("read %d: not the data", k)
		}
	}
	for _, c := range cs {
		c.once(t, "request in flight at Close")
	}
	if img.StartReadAt(make([]byte, 512), 0, newCompleter()) {
		t.Fatal("a read started on the closed image")
	}
}

// gate is a Completer that holds the goroutine delivering completions
// until opened: the requests completed by librbd meanwhile stay
// undelivered, and keep what they hold.
type gate struct {
	entered, open chan struct{}
	once          sync.Once
}

func newGate() *gate { return &gate{entered: make(chan struct{}), open: make(chan struct{})} }

func (g *gate) Complete(error, *rbdbackend.Batch) {
	close(g.entered)
	<-g.open
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

// Close does not close the image under a request whose completion is not
// delivered yet (librbd's rbd_close waits only for librbd's own part).
func TestAsyncCloseWaitsForTheCompletion(t *testing.T) {
	img := newImage(t, sharedCluster(t), 1<<20, CreateOptions{})
	idle(t)
	g := newGate()
	defer g.release() // whatever happens, deliver completions again
	if !img.StartReadAt(make([]byte, 512), 0, g) {
		t.Fatal("read refused")
	}
	select {
	case <-g.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("no completion within 30 s")
	}
	c := newCompleter()
	data := randomBytes(4, 4096)
	if !img.StartWriteAt(data, 4096, c) {
		t.Fatal("write refused")
	}
	closed := make(chan error, 1)
	go func() { closed <- img.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) before the write in flight was delivered", err)
	case <-time.After(200 * time.Millisecond): // a window to fail in, not a synchronisation
	}
	if n := c.calls.Load(); n != 0 {
		t.Fatalf("the write completed through a held delivery goroutine (%d calls)", n)
	}
	g.release()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return once the completion was delivered")
	}
	checkIdle(t, img)
	if err := c.wait(t); err != nil {
		t.Fatalf("write completed with %v", err)
	}
	c.once(t, "write in flight at Close")
}

// A request started without a waiter allocates nothing in Go, nor does a
// ReadAt or WriteAt that waits for its request: the pending is reused and
// numbered (pendings), the range lock of a write reused too.
func TestRequestsDoNotAllocate(t *testing.T) {
	img := newImage(t, sharedCluster(t), 1<<20, CreateOptions{})
	idle(t)
	p := randomBytes(7, 4096)
	done := &signal{c: make(chan struct{}, 1)}
	// What went wrong in any request: a refused start or an error, which
	// would also make the test measure nothing.
	var refused int
	var failed error
	started := func(ok bool) {
		if !ok {
			refused++
			return
		}
		<-done.c
		if done.err != nil {
			failed = done.err
		}
	}
	waited := func(_ int, err error) {
		if err != nil {
			failed = err
		}
	}
	cases := []struct {
		name string
		io   func()
	}{
		{"StartWriteAt", func() { started(img.StartWriteAt(p, 8192, done)) }},
		{"StartReadAt", func() { started(img.StartReadAt(p, 8192, done)) }},
		{"WriteAt", func() { waited(img.WriteAt(p, 8192)) }},
		{"ReadAt", func() { waited(img.ReadAt(p, 8192)) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			refused, failed = 0, nil
			for range 100 { // the pendings, the batch, the lock table's room
				tc.io()
			}
			// testing.AllocsPerRun counts the process's allocations: the
			// goroutine delivering the completions is among them.
			if n := testing.AllocsPerRun(2000, tc.io); n > 0.05 {
				t.Errorf("%.2f allocations per request, want none", n)
			}
			if refused > 0 || failed != nil {
				t.Fatalf("%d requests refused; last error %v", refused, failed)
			}
		})
	}
}

// signal is a completer that allocates nothing per completion.
type signal struct {
	c   chan struct{}
	err error // the last error, read after the completion is received
}

func (s *signal) Complete(err error, _ *rbdbackend.Batch) {
	s.err = err
	s.c <- struct{}{}
}
