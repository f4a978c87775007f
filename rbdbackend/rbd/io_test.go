//go:build pacific

package rbd

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ceph/go-ceph/rados"

	"github.com/rbdgw/rbdgw/rbdbackend"
)

// TestRandomIO writes random data at random places from many goroutines,
// keeps a model of the image, and compares the whole image at the end.
func TestRandomIO(t *testing.T) {
	c := sharedCluster(t)
	const size = 16 << 20
	img := newImage(t, c, size, CreateOptions{})
	const workers, ops = 32, 40
	// Each worker owns an interleaved set of 64 KiB slots, so the model
	// needs no ordering between workers.
	const slot = 64 << 10
	model := make([]byte, size)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			r := randomBytes(uint64(1000+w), ops*3*8)
			for k := range ops {
				s := int64(w) + workers*(int64(r[3*k])%(size/slot/workers))
				within := int64(r[3*k+1]) * 97 % slot
				n := 1 + int64(r[3*k+2])*251%(slot-within)
				off := s*slot + within
				data := randomBytes(uint64(w*ops+k), int(n))
				if _, err := img.WriteAt(data, off); err != nil {
					t.Errorf("WriteAt: %v", err)
					return
				}
				copy(model[off:], data)
				got := make([]byte, n)
				if _, err := img.ReadAt(got, off); err != nil || !bytes.Equal(got, data) {
					t.Errorf("read back at %d (%d bytes): err %v, equal %v", off, n, err, bytes.Equal(got, data))
					return
				}
			}
		})
	}
	wg.Wait()
	checkBytes(t, img, 0, model)
}

// TestLargeRequests crosses many objects in one request.
func TestLargeRequests(t *testing.T) {
	c := sharedCluster(t)
	img := newImage(t, c, 64<<20, CreateOptions{})
	data := randomBytes(5, 9<<20+123)
	mustWrite(t, img, data, 3<<20+7)
	checkBytes(t, img, 3<<20+7, data)
}

// TestChunking lowers the per-request limit so that discard and write
// same are split, and checks the seams.
func TestChunking(t *testing.T) {
	c := sharedCluster(t)
	img := newImage(t, c, 8<<20, CreateOptions{ObjectSize: 64 << 10})
	saved := maxRequest
	maxRequest = 100 << 10 // not a multiple of the pattern or object size
	t.Cleanup(func() { maxRequest = saved })

	junk := randomBytes(1, 8<<20)
	mustWrite(t, img, junk, 0)
	if err := img.Discard(1000, 3<<20); err != nil {
		t.Fatalf("Discard: %v", err)
	}
	want := bytes.Clone(junk)
	clear(want[1000 : 1000+3<<20])
	checkBytes(t, img, 0, want)

	pattern := randomBytes(2, 520)
	const off, n = 4 << 20, 520 * 1000
	if err := img.WriteSame(off, n, pattern); err != nil {
		t.Fatalf("WriteSame: %v", err)
	}
	for i := range int64(n) {
		want[off+i] = pattern[i%520]
	}
	checkBytes(t, img, 0, want)
}

// TestDiscardBeyondINTMAX needs the chunking for real: librbd rejects a
// single discard longer than INT_MAX. The image is thin, so only the
// written objects take memory.
func TestDiscardBeyondINTMAX(t *testing.T) {
	c := sharedCluster(t)
	const size = 5 << 30
	img := newImage(t, c, size, CreateOptions{})
	for _, off := range []int64{0, 2<<30 + 12345, size - 4096} {
		mustWrite(t, img, randomBytes(uint64(off), 4096), off)
	}
	if err := img.Discard(0, size); err != nil {
		t.Fatalf("Discard of 5 GiB: %v", err)
	}
	for _, off := range []int64{0, 2<<30 + 12345, size - 4096} {
		checkBytes(t, img, off, make([]byte, 4096))
	}
	if allocated, n, err := img.Extent(0, size); err != nil || allocated || n != size {
		t.Fatalf("Extent after discard = %v, %d, %v", allocated, n, err)
	}
}

func TestResizeSeenByOtherClient(t *testing.T) {
	a, b := connect(t), connect(t)
	name := createImage(t, a, 8<<20, CreateOptions{})
	img := openImage(t, a, name)
	if err := img.AcquireLock(); err != nil {
		t.Fatal(err)
	}
	// Another client grows the image; librbd forwards the resize to the
	// lock owner, and the owner's header watch updates Size.
	if err := b.Resize(testPool, name, 24<<20); err != nil {
		t.Fatalf("Resize from another client: %v", err)
	}
	eventually(t, 10*time.Second, "Size to follow the resize", func() bool { return img.Size() == 24<<20 })
	mustWrite(t, img, randomBytes(1, 4096), 20<<20)
	if err := b.Resize(testPool, name, 16<<20); !errors.Is(err, ErrShrink) || !errors.Is(err, rbdbackend.ErrUnsupported) {
		t.Fatalf("shrinking Resize = %v, want ErrShrink", err)
	}
}

// TestOSDTimeout pauses I/O cluster-wide ("ceph osd pause") so that a
// write outlives rados_osd_op_timeout.
func TestOSDTimeout(t *testing.T) {
	cfg := testConfig(t)
	cfg.OSDOpTimeout = 2 * time.Second
	c, err := Connect(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	img := newImage(t, c, 1<<20, CreateOptions{})
	mustWrite(t, img, randomBytes(1, 4096), 0)

	setFlag := func(op, flag string) error {
		return c.monCommand("osd "+op+" "+flag, `{"prefix":"osd `+op+`","key":"`+flag+`"}`, nil)
	}
	unpause := func() {
		if err := setFlag("unset", "pause"); err != nil {
			t.Errorf("osd unset pause: %v (unpause by hand: ceph osd unpause)", err)
		}
	}
	if err := setFlag("set", "pause"); err != nil {
		t.Fatalf("osd set pause: %v", err)
	}
	t.Cleanup(unpause)
	// Requests carry the client's OSD map; make it the paused one.
	if err := c.withConn(func(conn *rados.Conn, _ uint64) error { return conn.WaitForLatestOSDMap() }); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = img.WriteAt(randomBytes(2, 4096), 0)
	if !errors.Is(err, rbdbackend.ErrTimeout) {
		t.Fatalf("WriteAt with writes paused = %v, want ErrTimeout", err)
	}
	// librbd's timer runs on Ceph's coarse monotonic clock, which may end
	// a few milliseconds before Go's clock says 2 s have passed (1.997 s
	// was seen): the test tells a timeout from an immediate failure.
	if d := time.Since(start); d < 2*time.Second-50*time.Millisecond || d > 20*time.Second {
		t.Errorf("timed out after %v, want about 2 s", d)
	}
	unpause()
	// The timed-out write may or may not have landed; the image works.
	data := randomBytes(3, 4096)
	mustWrite(t, img, data, 0)
	checkBytes(t, img, 0, data)
}

// TestExtentWithoutObjectMap: librbd lists objects one by one, so one
// call reports at most slowExtentObjects objects of a hole.
func TestExtentWithoutObjectMap(t *testing.T) {
	c := sharedCluster(t)
	const obj = 64 << 10
	const size = 2 * slowExtentObjects * obj
	img := newImage(t, c, size, CreateOptions{Features: []string{"layering", "exclusive-lock"}, ObjectSize: obj})
	if allocated, n, err := img.Extent(0, size); err != nil || allocated || n != slowExtentObjects*obj {
		t.Fatalf("Extent of an empty image = %v, %d, %v; want false, %d", allocated, n, err, slowExtentObjects*obj)
	}
	mustWrite(t, img, randomBytes(1, 100), 3*obj+5)
	if allocated, n, err := img.Extent(0, size); err != nil || allocated || n != 3*obj {
		t.Fatalf("Extent before the data = %v, %d, %v; want false, %d", allocated, n, err, 3*obj)
	}
	if allocated, n, err := img.Extent(3*obj, size); err != nil || !allocated || n > obj || n < 105 {
		t.Fatalf("Extent at the data = %v, %d, %v; want true, within one object", allocated, n, err)
	}
}
