package alua

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/rbdbackend"
)

// fencedClient is fenced until the deadline passes.
type fencedClient struct{ until time.Time }

func (c fencedClient) ClientAddr() string { return "127.0.0.1:0/1" }
func (c fencedClient) Fenced() bool       { return time.Now().Before(c.until) }

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
			if _, err := w.(rbdbackend.CompareAndWriter).CompareAndWrite(tc.off, cmp, data); err != nil {
				t.Fatal(err)
			}
			if img.acquired.Load() != tc.acquires || img.released.Load() != tc.acquires {
				t.Fatalf("lock acquired %d, released %d times; want %d", img.acquired.Load(), img.released.Load(), tc.acquires)
			}
		})
	}
}
