//go:build pacific

package rbd

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ceph/go-ceph/rados"
	gorbd "github.com/ceph/go-ceph/rbd"
)

// BenchmarkAIO compares ways of keeping many requests in flight against
// librbd: asynchronous submission with a completion callback into Go (what
// Image does), the same request waited for in C
// (rbd_aio_wait_for_complete, one blocked OS thread per request), and
// go-ceph's synchronous ReadAt/WriteAt from as many goroutines. The modes
// run in alternating bursts so that they share the machine's noise; each
// reports the median microseconds per request over its bursts.
//
//	go test -tags pacific -run '^$' -bench AIO -benchtime 20x ./rbdbackend/rbd/
//
// b.N is the number of bursts per mode.
func BenchmarkAIO(b *testing.B) {
	const imageSize = 256 << 20
	c := connect(b)
	img := newImage(b, c, imageSize, CreateOptions{})
	if err := img.WriteSame(0, imageSize, randomBytes(1, 4096)); err != nil {
		b.Fatal(err)
	}
	// go-ceph's handle gets its own image: two writable handles of one
	// image would trade the exclusive lock back and forth.
	gname := createImage(b, c, imageSize, CreateOptions{})
	var gimg *gorbd.Image
	if err := c.withIOContext(testPool, func(ioctx *rados.IOContext) error {
		var err error
		gimg, err = gorbd.OpenImage(ioctx, gname, gorbd.NoSnapshot)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { gimg.Close() })
	if _, err := gimg.WriteSame(0, imageSize, randomBytes(1, 4096), 0); err != nil {
		b.Fatal(err)
	}
	defer func() { waitInC = false }()

	type mode struct {
		name string
		io   func(write bool, p []byte, off int64) error
	}
	ours := func(wait bool) func(bool, []byte, int64) error {
		return func(write bool, p []byte, off int64) error {
			waitInC = wait
			var err error
			if write {
				_, err = img.WriteAt(p, off)
			} else {
				_, err = img.ReadAt(p, off)
			}
			return err
		}
	}
	modes := []mode{
		{"callback", ours(false)},
		{"wait-in-C", ours(true)},
		{"go-ceph-sync", func(write bool, p []byte, off int64) error {
			var err error
			if write {
				_, err = gimg.WriteAt(p, off)
			} else {
				_, err = gimg.ReadAt(p, off)
			}
			return err
		}},
	}
	workloads := []struct {
		bs, qd, burst int
	}{{4096, 1, 200}, {4096, 16, 2000}, {4096, 128, 4000}, {1 << 20, 8, 200}}
	for _, w := range workloads {
		for _, write := range []bool{false, true} {
			kind := "read"
			if write {
				kind = "write"
			}
			b.Run(fmt.Sprintf("%s/bs=%d/qd=%d", kind, w.bs, w.qd), func(b *testing.B) {
				perOp := make([][]float64, len(modes))
				for range b.N {
					for m, mo := range modes {
						d := burst(b, w.qd, w.burst, int64(w.bs), imageSize, func(p []byte, off int64) error {
							return mo.io(write, p, off)
						})
						perOp[m] = append(perOp[m], float64(d.Microseconds())/float64(w.burst))
					}
				}
				for m, mo := range modes {
					slices.Sort(perOp[m])
					b.ReportMetric(perOp[m][len(perOp[m])/2], mo.name+"-µs/op")
				}
			})
		}
	}
}

// burst runs n requests of bs bytes at random offsets from qd goroutines
// and returns the elapsed time.
func burst(b *testing.B, qd, n int, bs, size int64, io func(p []byte, off int64) error) time.Duration {
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range qd {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), uint64(n)))
			p := randomBytes(uint64(w), int(bs))
			for next.Add(1) <= int64(n) {
				if err := io(p, r.Int64N(size/bs)*bs); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}
