//go:build pacific

package rbd

import (
	"bytes"
	"sync"
	"testing"
)

func TestAtomicWriteLimitsFollowTheObjectSize(t *testing.T) {
	c := sharedCluster(t)
	for _, objectSize := range []int64{64 << 10, 4 << 20} {
		img := newImage(t, c, 8<<20, CreateOptions{ObjectSize: objectSize})
		maxBytes, align, gran := img.AtomicWriteLimits()
		if maxBytes != objectSize || align != objectSize || gran != 0 {
			t.Errorf("object size %d: limits %d, %d, %d", objectSize, maxBytes, align, gran)
		}
		img.Close()
		if maxBytes, _, _ := img.AtomicWriteLimits(); maxBytes != 0 {
			t.Errorf("closed image promises atomic writes of %d bytes", maxBytes)
		}
	}
}

// Writers of two patterns over one whole object race with readers of it:
// every read sees one pattern.
func TestAtomicWriteWithinAnObjectIsWhole(t *testing.T) {
	img := contractImage(t, contractSize)
	n, align, _ := img.AtomicWriteLimits()
	off := 3 * align
	patterns := [][]byte{bytes.Repeat([]byte{0xAA}, int(n)), bytes.Repeat([]byte{0xBB}, int(n))}
	const rounds = 100
	var wg sync.WaitGroup
	for _, p := range patterns {
		wg.Go(func() {
			for range rounds {
				if _, err := img.WriteAt(p, off); err != nil {
					t.Errorf("WriteAt: %v", err)
					return
				}
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			buf := make([]byte, n)
			for range rounds {
				if _, err := img.ReadAt(buf, off); err != nil {
					t.Errorf("ReadAt: %v", err)
					return
				}
				if !bytes.Equal(buf, bytes.Repeat(buf[:1], len(buf))) {
					t.Errorf("read of the object at %d is torn", off)
					return
				}
			}
		})
	}
	wg.Wait()
}
