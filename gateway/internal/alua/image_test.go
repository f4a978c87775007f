package alua

import (
	"context"
	"errors"
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
