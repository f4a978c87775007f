//go:build pacific

package rbd

import (
	"sync"
	"testing"

	"github.com/rbdgw/rbdgw/rbdbackend"
	"github.com/rbdgw/rbdgw/rbdbackend/imagetest"
)

// contractObject is the object size of contract images: small objects
// make object boundaries and object-granular extents easy to hit.
const contractObject = 64 << 10

// contractSize is not a multiple of the object size, so the last object
// is partial.
const contractSize = 5<<20 + 3*4096

// contractImage opens an image the way the owning gateway would: with the
// exclusive lock held, which compare-and-write beyond librbd's own
// 512-byte primitive needs.
func contractImage(t testing.TB, size int64) *Image {
	c := sharedCluster(t)
	img := newImage(t, c, size, CreateOptions{ObjectSize: contractObject})
	if err := img.AcquireLock(); err != nil {
		t.Fatalf("AcquireLock: %v", err)
	}
	return img
}

// TestContract runs the rbdbackend.Image contract every implementation
// shares against librbd images (allocation is reported per RADOS object,
// which the contract allows).
func TestContract(t *testing.T) {
	imagetest.Run(t, func(t testing.TB, size int64) rbdbackend.Image { return contractImage(t, size) })
}

var (
	sharedOnce sync.Once
	shared     *Cluster
	sharedErr  error
)

// sharedCluster is one client for the tests that need only one, as in a
// gateway process. It is never closed: the process ends after the tests.
func sharedCluster(t testing.TB) *Cluster {
	cfg := testConfig(t)
	sharedOnce.Do(func() { shared, sharedErr = Connect(cfg) })
	if sharedErr != nil {
		t.Fatalf("Connect: %v", sharedErr)
	}
	return shared
}
