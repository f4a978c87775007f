package rangelock

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// blocked reports whether Lock(off, n, exclusive) waits while the table
// is in its current state; a granted probe is released again.
func blocked(t *testing.T, tab *Table, off, n int64, exclusive bool) bool {
	t.Helper()
	got := make(chan *Held, 1)
	go func() { got <- tab.Lock(off, n, exclusive) }()
	select {
	case h := <-got:
		tab.Unlock(h)
		return false
	case <-time.After(20 * time.Millisecond):
		// Let the probe finish later so it does not leak.
		t.Cleanup(func() { tab.Unlock(<-got) })
		return true
	}
}

func TestConflicts(t *testing.T) {
	tests := []struct {
		name        string
		heldOff     int64
		heldN       int64
		heldExcl    bool
		off, n      int64
		exclusive   bool
		wantBlocked bool
	}{
		{"shared over shared", 0, 100, false, 50, 100, false, false},
		{"exclusive over shared", 0, 100, false, 50, 100, true, true},
		{"shared over exclusive", 0, 100, true, 99, 1, false, true},
		{"exclusive over exclusive", 0, 100, true, 0, 100, true, true},
		{"adjacent after", 0, 100, true, 100, 10, true, false},
		{"adjacent before", 100, 100, true, 90, 10, true, false},
		{"empty range", 0, 100, true, 50, 0, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tab Table
			h := tab.Lock(tc.heldOff, tc.heldN, tc.heldExcl)
			if got := blocked(t, &tab, tc.off, tc.n, tc.exclusive); got != tc.wantBlocked {
				t.Fatalf("blocked = %v, want %v", got, tc.wantBlocked)
			}
			// TryLock refuses exactly what Lock would wait for.
			if held, ok := tab.TryLock(tc.off, tc.n, tc.exclusive); ok == tc.wantBlocked {
				t.Fatalf("TryLock granted = %v, want %v", ok, !tc.wantBlocked)
			} else if ok {
				tab.Unlock(held)
			}
			tab.Unlock(h)
		})
	}
}

// A waiting exclusive lock holds back later overlapping shared locks, so
// writes cannot starve a compare-and-write.
func TestExclusiveNotStarved(t *testing.T) {
	var tab Table
	first := tab.Lock(0, 4096, false)
	exclGranted := make(chan *Held)
	go func() { exclGranted <- tab.Lock(0, 4096, true) }()
	for tab.Len() != 2 {
		time.Sleep(time.Millisecond)
	}
	if !blocked(t, &tab, 1000, 10, false) {
		t.Fatal("a shared lock overtook a waiting exclusive one")
	}
	if blocked(t, &tab, 8192, 10, false) {
		t.Fatal("a shared lock on a disjoint range waited")
	}
	if _, ok := tab.TryLock(1000, 10, false); ok {
		t.Fatal("TryLock overtook a waiting exclusive lock")
	}
	tab.Unlock(first)
	tab.Unlock(<-exclGranted)
}

// Random concurrent lockers check the invariant directly: no byte is ever
// covered by an exclusive holder and any other holder at once.
func TestRandomMutualExclusion(t *testing.T) {
	const size, workers, rounds = 64, 8, 400
	var tab Table
	var owners [size]atomic.Int32 // >0: shared holders, -1: exclusive holder
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for range rounds {
				off := r.Int64N(size)
				n := 1 + r.Int64N(size-off)
				excl := r.IntN(4) == 0
				h := tab.Lock(off, n, excl)
				for b := off; b < off+n; b++ {
					if excl {
						if !owners[b].CompareAndSwap(0, -1) {
							t.Errorf("byte %d taken while locked exclusively", b)
						}
					} else if owners[b].Add(1) <= 0 {
						t.Errorf("byte %d shared while held exclusively", b)
					}
				}
				for b := off; b < off+n; b++ {
					if excl {
						owners[b].Store(0)
					} else {
						owners[b].Add(-1)
					}
				}
				tab.Unlock(h)
			}
		})
	}
	wg.Wait()
	if n := tab.Len(); n != 0 {
		t.Fatalf("%d locks left", n)
	}
}

func BenchmarkSharedUncontended(b *testing.B) {
	var tab Table
	b.RunParallel(func(pb *testing.PB) {
		off := rand.Int64N(1 << 30)
		for pb.Next() {
			tab.Unlock(tab.Lock(off, 4096, false))
		}
	})
}
