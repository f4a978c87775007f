package rbdbackend_test

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/rbdgw/rbdgw/rbdbackend"
)

// benchSize is the span random I/O covers: larger than the memory chunk and
// lock stripe ranges so parallel I/O spreads over them.
const benchSize = 256 << 20

func BenchmarkImage(b *testing.B) {
	for _, impl := range implementations {
		b.Run(impl.name, func(b *testing.B) {
			img := impl.open(b, benchSize)
			// Fill the span so reads copy real chunks and file blocks.
			fill := make([]byte, 4<<20)
			for i := range fill {
				fill[i] = byte(i * 7)
			}
			for off := int64(0); off < benchSize; off += int64(len(fill)) {
				if _, err := img.WriteAt(fill, off); err != nil {
					b.Fatal(err)
				}
			}
			for _, size := range []int{4 << 10, 1 << 20} {
				name := fmt.Sprintf("%dKiB", size>>10)
				b.Run("read/"+name, func(b *testing.B) { benchIO(b, img, size, false) })
				b.Run("write/"+name, func(b *testing.B) { benchIO(b, img, size, true) })
			}
		})
	}
}

// benchIO runs random, size-aligned I/O from GOMAXPROCS goroutines. Go
// allocates buffers of these sizes page-aligned, so O_DIRECT needs no
// bounce buffer.
func benchIO(b *testing.B, img rbdbackend.Image, size int, write bool) {
	b.SetBytes(int64(size))
	slots := uint64(benchSize / size)
	var seed atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(seed.Add(1), 0))
		buf := make([]byte, size)
		for pb.Next() {
			off := int64(r.Uint64N(slots)) * int64(size)
			var err error
			if write {
				_, err = img.WriteAt(buf, off)
			} else {
				_, err = img.ReadAt(buf, off)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
