package rbdbackend

import (
	"math/rand/v2"
	"sync/atomic"
	"testing"
)

// benchSize is the span random I/O covers: larger than the memory chunk and
// lock stripe ranges so parallel I/O spreads over them.
const benchSize = 256 << 20

func BenchmarkImage(b *testing.B) {
	for _, impl := range imageImplementations() {
		b.Run(impl.name, func(b *testing.B) {
			img := impl.open(b, benchSize)
			// Fill the span so reads copy real chunks and file blocks.
			fill := randomBytes(1, 4<<20)
			for off := int64(0); off < benchSize; off += int64(len(fill)) {
				mustWrite(b, img, fill, off)
			}
			for _, size := range []int{4 << 10, 1 << 20} {
				b.Run("read/"+sizeName(size), func(b *testing.B) { benchIO(b, img, size, false) })
				b.Run("write/"+sizeName(size), func(b *testing.B) { benchIO(b, img, size, true) })
			}
		})
	}
}

// benchIO runs random, size-aligned I/O from GOMAXPROCS goroutines.
func benchIO(b *testing.B, img Image, size int, write bool) {
	b.SetBytes(int64(size))
	slots := uint64(benchSize / size)
	var seed atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(seed.Add(1), 0))
		buf := alignedBuffer(size, 4096)
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

func sizeName(n int) string {
	if n >= 1<<20 {
		return itoa(n>>20) + "MiB"
	}
	return itoa(n>>10) + "KiB"
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
