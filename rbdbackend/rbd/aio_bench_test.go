//go:build pacific

package rbd

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ceph/go-ceph/rados"
	gorbd "github.com/ceph/go-ceph/rbd"
)

// The benchmarks compare ways of keeping many requests in flight against
// librbd: asynchronous submission with a completion callback into Go
// (the default), the same but waiting in C, and go-ceph's synchronous
// ReadAt/WriteAt from as many goroutines.
//
//	go test -tags pacific -run '^$' -bench AIO ./rbdbackend/rbd/

const benchImageSize = 256 << 20

type ioFunc func(p []byte, off int64) error

// runQueueDepth issues b.N requests of size bs from qd goroutines.
func runQueueDepth(b *testing.B, qd int, bs int64, io ioFunc) {
	var next atomic.Int64
	var wg sync.WaitGroup
	b.SetBytes(bs)
	b.ResetTimer()
	for w := range qd {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			p := randomBytes(uint64(w), int(bs))
			for next.Add(1) <= int64(b.N) {
				off := r.Int64N(benchImageSize/bs) * bs
				if err := io(p, off); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkAIO(b *testing.B) {
	c := connect(b)
	name := createImage(b, c, benchImageSize, CreateOptions{})
	img := openImage(b, c, name)
	// Allocate every object so reads measure data, not holes.
	if err := img.WriteSame(0, benchImageSize, randomBytes(1, 4096)); err != nil {
		b.Fatal(err)
	}
	// go-ceph's handle gets its own image: two writable handles of one
	// image would trade the exclusive lock back and forth.
	gname := createImage(b, c, benchImageSize, CreateOptions{})
	var gimg *gorbd.Image
	if err := c.withIOContext(testPool, func(ioctx *rados.IOContext) error {
		var err error
		gimg, err = gorbd.OpenImage(ioctx, gname, gorbd.NoSnapshot)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { gimg.Close() })
	if _, err := gimg.WriteSame(0, benchImageSize, randomBytes(1, 4096), 0); err != nil {
		b.Fatal(err)
	}

	ours := func(wait bool, write bool) ioFunc {
		return func(p []byte, off int64) error {
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
	goceph := func(write bool) ioFunc {
		return func(p []byte, off int64) error {
			var err error
			if write {
				_, err = gimg.WriteAt(p, off)
			} else {
				_, err = gimg.ReadAt(p, off)
			}
			return err
		}
	}
	defer func() { waitInC = false }()
	for _, bs := range []int64{4096, 1 << 20} {
		for _, qd := range []int{1, 8, 16, 64, 128} {
			if (bs > 4096) != (qd == 8) {
				continue // 4 KiB at QD 1/16/64/128, 1 MiB at QD 8
			}
			for _, write := range []bool{false, true} {
				kind := "read"
				if write {
					kind = "write"
				}
				prefix := fmt.Sprintf("%s/bs=%d/qd=%d", kind, bs, qd)
				b.Run(prefix+"/callback", func(b *testing.B) { runQueueDepth(b, qd, bs, ours(false, write)) })
				b.Run(prefix+"/wait-in-C", func(b *testing.B) { runQueueDepth(b, qd, bs, ours(true, write)) })
				b.Run(prefix+"/go-ceph-sync", func(b *testing.B) { runQueueDepth(b, qd, bs, goceph(write)) })
			}
		}
	}
}
