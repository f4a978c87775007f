//go:build pacific

package rbd

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

const testPool = "rbd"

// testConf returns the ceph.conf of the test cluster or skips the test.
func testConf(t testing.TB) string {
	t.Helper()
	for _, v := range []string{"RBDGW_CEPH_CONF", "CEPH_CONF"} {
		if p := os.Getenv(v); p != "" {
			return p
		}
	}
	t.Skip("no Ceph cluster: set CEPH_CONF or RBDGW_CEPH_CONF (start one with: eval \"$(deploy/microceph.sh start)\")")
	return ""
}

func testConfig(t testing.TB) Config {
	return Config{
		ConfPath:        testConf(t),
		OSDOpTimeout:    20 * time.Second,
		MonOpTimeout:    20 * time.Second,
		MountTimeout:    10 * time.Second,
		BlocklistExpiry: 10 * time.Minute,
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// connect returns a new rados client, closed when the test ends.
func connect(t testing.TB) *Cluster {
	t.Helper()
	cfg := testConfig(t)
	c, err := Connect(cfg)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// imageName is unique per call and says which test made it.
func imageName(t testing.TB) string {
	var b [4]byte
	rand.Read(b[:])
	n := unsafeName.ReplaceAllString(t.Name(), "-")
	if len(n) > 60 {
		n = n[len(n)-60:]
	}
	return "t-" + strings.Trim(n, "-") + "-" + hex.EncodeToString(b[:])
}

// createImage creates an image that is removed when the test ends.
func createImage(t testing.TB, c *Cluster, size int64, opts CreateOptions) string {
	t.Helper()
	name := imageName(t)
	if err := c.Create(testPool, name, size, opts); err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() { removeImage(t, c, name) })
	return name
}

// removeImage deletes a test image, with its snapshots. A client that was
// fenced by the test may still be reconnecting, and a watch of a closed
// handle may linger for a moment, so it retries for a while.
func removeImage(t testing.TB, c *Cluster, name string) {
	var err error
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		snaps, _ := c.SnapshotList(testPool, name)
		for _, s := range snaps {
			c.SnapshotRemove(testPool, name, s.Name)
		}
		err = c.Remove(testPool, name)
		if err == nil || errors.Is(err, ErrNotFound) {
			return
		}
	}
	t.Errorf("Remove %s: %v", name, err)
}

// openImage opens an image and closes it when the test ends.
func openImage(t testing.TB, c *Cluster, name string) *Image {
	t.Helper()
	img, err := c.Open(testPool, name)
	if err != nil {
		t.Fatalf("Open %s: %v", name, err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

// newImage creates and opens a fresh image.
func newImage(t testing.TB, c *Cluster, size int64, opts CreateOptions) *Image {
	t.Helper()
	return openImage(t, c, createImage(t, c, size, opts))
}

// randomBytes returns n bytes that depend only on seed.
func randomBytes(seed uint64, n int) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	b := make([]byte, n)
	mrand.NewChaCha8(key).Read(b)
	return b
}

func mustWrite(t testing.TB, img *Image, p []byte, off int64) {
	t.Helper()
	if n, err := img.WriteAt(p, off); err != nil || n != len(p) {
		t.Fatalf("WriteAt(%d bytes, %d) = %d, %v", len(p), off, n, err)
	}
}

func mustRead(t testing.TB, img *Image, off, n int64) []byte {
	t.Helper()
	p := make([]byte, n)
	if got, err := img.ReadAt(p, off); err != nil || got != len(p) {
		t.Fatalf("ReadAt(%d bytes, %d) = %d, %v", n, off, got, err)
	}
	return p
}

// checkBytes fails unless img holds want at off.
func checkBytes(t testing.TB, img *Image, off int64, want []byte) {
	t.Helper()
	got := mustRead(t, img, off, int64(len(want)))
	if d := firstDifference(got, want); d >= 0 {
		t.Fatalf("at %d: byte %d is %#x, want %#x", off, off+d, got[d], want[d])
	}
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
