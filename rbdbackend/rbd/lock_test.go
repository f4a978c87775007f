//go:build pacific

package rbd

import (
	"bytes"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/rbdbackend"
)

// twoGateways opens one image through two rados clients, as two gateway
// processes would.
func twoGateways(t *testing.T, opts CreateOptions) (a, b *Image) {
	ca, cb := connect(t), connect(t)
	name := createImage(t, ca, 8<<20, opts)
	return openImage(t, ca, name), openImage(t, cb, name)
}

func blocklisted(t *testing.T, c *Cluster, addr string) bool {
	t.Helper()
	entries, err := c.BlocklistEntries()
	if err != nil {
		t.Fatalf("BlocklistEntries: %v", err)
	}
	return slices.ContainsFunc(entries, func(e BlocklistEntry) bool { return e.Addr == addr })
}

func TestManagedLockRefusesOtherWriters(t *testing.T) {
	a, b := twoGateways(t, CreateOptions{})
	if err := a.AcquireLock(); err != nil {
		t.Fatalf("AcquireLock: %v", err)
	}
	data := randomBytes(1, 8192)
	mustWrite(t, a, data, 0)

	start := time.Now()
	if _, err := b.WriteAt(data, 4096); !errors.Is(err, rbdbackend.ErrLockLost) {
		t.Fatalf("WriteAt by the non-owner = %v, want ErrLockLost", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the refused write took %v", d)
	}
	checkBytes(t, b, 0, data) // reads need no lock
	if err := b.AcquireLock(); !errors.Is(err, ErrBusy) {
		t.Fatalf("AcquireLock by the non-owner = %v, want ErrBusy", err)
	}
	owners, err := b.LockOwners()
	if err != nil || !slices.Equal(owners, []string{a.c.ClientAddr()}) {
		t.Fatalf("LockOwners = %v, %v; want [%s]", owners, err, a.c.ClientAddr())
	}
	if held, err := a.HoldsLock(); !held || err != nil {
		t.Fatalf("owner HoldsLock = %v, %v", held, err)
	}
	if held, err := b.HoldsLock(); held || err != nil {
		t.Fatalf("non-owner HoldsLock = %v, %v", held, err)
	}
	// Neither kind of compare-and-write gets through.
	if _, err := b.CompareAndWrite(0, data[:512], data[:512]); !errors.Is(err, rbdbackend.ErrLockLost) {
		t.Errorf("librbd CompareAndWrite by the non-owner = %v, want ErrLockLost", err)
	}
	if _, err := b.CompareAndWrite(0, data[:4096], data[:4096]); !errors.Is(err, rbdbackend.ErrLockLost) {
		t.Errorf("locked CompareAndWrite by the non-owner = %v, want ErrLockLost", err)
	}
	if err := b.BreakLock(b.c.ClientAddr()); !errors.Is(err, ErrInvalid) {
		t.Errorf("BreakLock of the own client = %v, want ErrInvalid", err)
	}

	// Once released, the lock can be acquired by the other client. (B's
	// failed AcquireLock put its handle under explicit lock management:
	// from then on its writes do not ask for the lock by themselves.)
	if err := a.ReleaseLock(); err != nil {
		t.Fatalf("ReleaseLock: %v", err)
	}
	if _, err := b.WriteAt(data, 4096); !errors.Is(err, rbdbackend.ErrLockLost) {
		t.Fatalf("WriteAt by B without the lock = %v, want ErrLockLost", err)
	}
	if err := b.AcquireLock(); err != nil {
		t.Fatalf("AcquireLock after release: %v", err)
	}
	mustWrite(t, b, data, 4096)
	if _, err := a.WriteAt(data, 0); !errors.Is(err, rbdbackend.ErrLockLost) {
		t.Fatalf("WriteAt by A after releasing = %v, want ErrLockLost", err)
	}
}

// TestTakeOverFencesOldOwner is the failover: B takes the lock while A
// keeps writing. None of A's writes may land after B's takeover, A's
// client must be fenced, and A must come back on a new client that still
// cannot write while B owns the image.
func TestTakeOverFencesOldOwner(t *testing.T) {
	a, b := twoGateways(t, CreateOptions{})
	if err := a.AcquireLock(); err != nil {
		t.Fatalf("AcquireLock: %v", err)
	}
	oldAddr := a.c.ClientAddr()

	// A's writers run until their writes fail.
	const region = 1 << 20
	var wg sync.WaitGroup
	var aWrites, aFailures atomic.Int64
	stop := make(chan struct{})
	var stopOnce sync.Once
	stopWriters := func() { stopOnce.Do(func() { close(stop) }); wg.Wait() }
	t.Cleanup(stopWriters) // before the images close, even if the test fails
	for w := range 16 {
		wg.Go(func() {
			p := bytes.Repeat([]byte{0xAA}, 4096)
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				off := int64((w*37+k*16)%(region/4096)) * 4096
				if _, err := a.WriteAt(p, off); err != nil {
					if !errors.Is(err, rbdbackend.ErrLockLost) {
						t.Errorf("A's write failed with %v, want ErrLockLost", err)
					}
					aFailures.Add(1)
					continue
				}
				aWrites.Add(1)
			}
		})
	}
	eventually(t, 10*time.Second, "A to write", func() bool { return aWrites.Load() > 50 })

	start := time.Now()
	if err := b.TakeLock(); err != nil {
		t.Fatalf("TakeLock: %v", err)
	}
	t.Logf("takeover took %v", time.Since(start))
	afterTakeover := aWrites.Load()
	// B overwrites the region; any write of A landing later would show.
	mustWrite(t, b, bytes.Repeat([]byte{0xBB}, region), 0)
	eventually(t, 10*time.Second, "A's writes to fail", func() bool { return aFailures.Load() > 16 })
	time.Sleep(200 * time.Millisecond)
	stopWriters()
	if late := aWrites.Load() - afterTakeover; late > 16 {
		// At most the writes in flight at the takeover may complete.
		t.Errorf("%d of A's writes succeeded after the takeover", late)
	}
	checkBytes(t, b, 0, bytes.Repeat([]byte{0xBB}, region))
	if !blocklisted(t, b.c, oldAddr) && a.c.ClientAddr() == oldAddr {
		t.Errorf("A's client %s is not blocklisted", oldAddr)
	}

	// A reconnects by itself on a new client, which B's lock still keeps
	// from writing.
	eventually(t, 20*time.Second, "A to reconnect", func() bool {
		return !a.c.Fenced() && a.c.ClientAddr() != oldAddr
	})
	eventually(t, 10*time.Second, "A's reopened image", func() bool {
		_, err := a.ReadAt(make([]byte, 512), 0)
		return err == nil
	})
	if _, err := a.WriteAt(make([]byte, 4096), 0); !errors.Is(err, rbdbackend.ErrLockLost) {
		t.Fatalf("A's write after reconnecting = %v, want ErrLockLost", err)
	}
	checkBytes(t, a, 0, bytes.Repeat([]byte{0xBB}, region))
	if held, _ := a.HoldsLock(); held {
		t.Error("A believes it holds the lock after reconnecting")
	}

	// And back: A takes over, B is fenced and recovers in turn.
	bOld := b.c.ClientAddr()
	if err := a.TakeLock(); err != nil {
		t.Fatalf("TakeLock back: %v", err)
	}
	mustWrite(t, a, bytes.Repeat([]byte{0xCC}, 4096), 0)
	if _, err := b.WriteAt(make([]byte, 4096), 0); !errors.Is(err, rbdbackend.ErrLockLost) {
		t.Fatalf("B's write after losing the lock = %v, want ErrLockLost", err)
	}
	eventually(t, 20*time.Second, "B to reconnect", func() bool { return b.c.ClientAddr() != bOld && !b.c.Fenced() })
	checkBytes(t, a, 0, bytes.Repeat([]byte{0xCC}, 4096))
}

// TestBlocklistedClientRecovers fences A's client directly (as an operator
// or another gateway would) while A holds the lock: A detects it on the
// next I/O, reconnects and can take its image back.
func TestBlocklistedClientRecovers(t *testing.T) {
	a, b := twoGateways(t, CreateOptions{})
	if err := a.AcquireLock(); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, a, randomBytes(1, 4096), 0)
	oldAddr := a.c.ClientAddr()
	if err := b.c.Blocklist(oldAddr, time.Minute); err != nil {
		t.Fatalf("Blocklist: %v", err)
	}
	if !blocklisted(t, b.c, oldAddr) {
		t.Fatalf("%s not in the blocklist", oldAddr)
	}
	// The OSD rejects the fenced client once it has the new OSD map (a
	// write racing the blocklist may still land, before any write of the
	// client that fenced it).
	var err error
	eventually(t, 10*time.Second, "the fenced client's writes to fail", func() bool {
		_, err = a.WriteAt(randomBytes(2, 4096), 0)
		return err != nil
	})
	if !errors.Is(err, rbdbackend.ErrLockLost) {
		t.Fatalf("write of the fenced client = %v, want ErrLockLost", err)
	}
	start := time.Now()
	// AcquireLock waits for the reconnect, then for the dead client's lock
	// (librbd breaks it once the old watch is gone).
	if err := a.AcquireLock(); err != nil {
		t.Fatalf("AcquireLock after fencing: %v", err)
	}
	t.Logf("reacquired in %v", time.Since(start))
	if a.c.ClientAddr() == oldAddr {
		t.Fatal("client address unchanged after reconnect")
	}
	data := randomBytes(3, 4096)
	mustWrite(t, a, data, 0)
	checkBytes(t, b, 0, data)

	// The old client is gone, so its entry can be lifted.
	if err := b.c.Unblocklist(oldAddr); err != nil {
		t.Fatalf("Unblocklist: %v", err)
	}
	if blocklisted(t, b.c, oldAddr) {
		t.Fatalf("%s still blocklisted", oldAddr)
	}
	if err := b.c.Blocklist("127.0.0.1", time.Minute); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Blocklist of a bare IP = %v, want ErrInvalid (it would fence every client on the host)", err)
	}
}

func TestReconnectKeepsImagesUsable(t *testing.T) {
	c := connect(t)
	img := newImage(t, c, 8<<20, CreateOptions{})
	if err := img.AcquireLock(); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(1, 4096)
	mustWrite(t, img, data, 0)
	old := c.ClientAddr()
	if err := c.Reconnect(); err != nil {
		t.Fatalf("Reconnect: %v", err)
	}
	if c.ClientAddr() == old {
		t.Fatal("Reconnect kept the client address")
	}
	if held, err := img.HoldsLock(); held || err != nil {
		t.Fatalf("HoldsLock after Reconnect = %v, %v; want false (the lock belonged to the old client)", held, err)
	}
	checkBytes(t, img, 0, data)
	mustWrite(t, img, data, 8192) // nobody else holds the lock: librbd takes it
	if err := img.AcquireLock(); err != nil {
		t.Fatal(err)
	}
}

// TestCompareAndWriteAcrossClients: librbd's compare-and-write is atomic
// cluster-wide, so two clients (no managed lock; librbd passes the lock
// back and forth) never lose an increment.
func TestCompareAndWriteAcrossClients(t *testing.T) {
	a, b := twoGateways(t, CreateOptions{})
	const off, increments = 4096, 15
	var wg sync.WaitGroup
	for _, img := range []*Image{a, b} {
		wg.Go(func() {
			cur, next := make([]byte, 512), make([]byte, 512)
			for done := 0; done < increments; {
				if _, err := img.ReadAt(cur, off); err != nil {
					t.Errorf("ReadAt: %v", err)
					return
				}
				copy(next, cur)
				next[0]++
				next[1] = byte(len(img.c.ClientAddr())) // writers differ
				next[2] ^= 1
				_, err := img.CompareAndWrite(off, cur, next)
				switch {
				case err == nil:
					done++
				case !errors.Is(err, rbdbackend.ErrMiscompare):
					t.Errorf("CompareAndWrite: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := mustRead(t, a, off, 1)[0]; got != 2*increments {
		t.Fatalf("counter = %d, want %d", got, 2*increments)
	}
}

func TestLockOnImageWithoutExclusiveLock(t *testing.T) {
	c := sharedCluster(t)
	img := newImage(t, c, 1<<20, CreateOptions{Features: []string{"layering"}})
	if err := img.AcquireLock(); !errors.Is(err, rbdbackend.ErrUnsupported) {
		t.Errorf("AcquireLock = %v, want ErrUnsupported", err)
	}
	if _, err := img.CompareAndWrite(100, make([]byte, 1000), make([]byte, 1000)); !errors.Is(err, rbdbackend.ErrUnsupported) {
		t.Errorf("locked CompareAndWrite = %v, want ErrUnsupported", err)
	}
	if _, err := img.CompareAndWrite(0, make([]byte, 512), make([]byte, 512)); err != nil {
		t.Errorf("librbd CompareAndWrite = %v", err)
	}
}
