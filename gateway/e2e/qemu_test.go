package e2e

import (
	"crypto/rand"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const dataConfig = `
portals: ["127.0.0.1:%PORT%"]
disks:
  - {name: d0, backend: memory, size: 301989888}
targets:
  - iqn: iqn.2024-01.io.rbdgw:data
    luns: [{id: 0, disk: d0}]
    allow_any_initiator: true
`

func fileSHA256(t *testing.T, path string, limit int64) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, limit)); err != nil {
		t.Fatal(err)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// writeRandomFile fills path with size random bytes.
func writeRandomFile(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		t.Fatal(err)
	}
}

// roundTripSize is how much random data the round-trip tests move.
const roundTripSize = 256 << 20

// qemuRoundTrip writes roundTripSize random bytes into the LUN at url with
// qemu-img (libiscsi), reads them back out, and fails the test unless they
// are identical. It returns the checksum of the data written.
func qemuRoundTrip(t *testing.T, url string) [32]byte {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.raw")
	writeRandomFile(t, src, roundTripSize)
	if out, err := run(t, 5*time.Minute, "qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", src, url); err != nil {
		t.Fatalf("convert into the LUN: %v\n%s", err, out)
	}
	dst := filepath.Join(dir, "dst.raw")
	if out, err := run(t, 5*time.Minute, "qemu-img", "convert", "-f", "raw", "-O", "raw", url, dst); err != nil {
		t.Fatalf("convert out of the LUN: %v\n%s", err, out)
	}
	want := fileSHA256(t, src, roundTripSize)
	if fileSHA256(t, dst, roundTripSize) != want {
		t.Fatal("data read back through the gateway differs from the data written")
	}
	return want
}

// TestQemuRoundTrip writes 256 MiB of random data through qemu-img (libiscsi)
// into a LUN and reads it back out: the bytes must be identical.
func TestQemuRoundTrip(t *testing.T) {
	needTools(t, "qemu-img")
	g := startGateway(t, dataConfig)
	qemuRoundTrip(t, "iscsi://"+g.portal()+"/iqn.2024-01.io.rbdgw:data/0")
}

// TestReloadKeepsSessions adds a disk and a LUN with SIGHUP while qemu-img
// streams data: the session must survive (the daemon logs no session end
// before the copy finishes) and the new LUN must be reachable.
func TestReloadKeepsSessions(t *testing.T) {
	needTools(t, "qemu-img", "iscsi-ls")
	g := startGateway(t, dataConfig)
	url := "iscsi://" + g.portal() + "/iqn.2024-01.io.rbdgw:data/0"
	done := make(chan error, 1)
	var out string
	go func() {
		var err error
		out, err = run(t, 2*time.Minute, "qemu-img", "bench", "-w", "-f", "raw", "-c", "40000", "-d", "8", "-s", "4096", url)
		done <- err
	}()
	time.Sleep(500 * time.Millisecond)
	grown := strings.Replace(dataConfig, "luns: [{id: 0, disk: d0}]", "luns: [{id: 0, disk: d0}, {id: 1, disk: d1}]", 1)
	grown = strings.Replace(grown, "disks:\n", "disks:\n  - {name: d1, backend: memory, size: 16777216}\n", 1)
	g.reload(grown)
	ls, err := run(t, 20*time.Second, "iscsi-ls", "-s", "iscsi://"+g.portal())
	if err != nil || !strings.Contains(ls, "Lun:1") {
		t.Fatalf("the LUN added by the reload is not listed: %v\n%s", err, ls)
	}
	if err := <-done; err != nil {
		t.Fatalf("qemu-img bench failed across the reload: %v\n%s", err, out)
	}
	// qemu-img logs in once; a second login means the reload dropped it.
	logins := 0
	for _, line := range strings.Split(g.log.String(), "\n") {
		if strings.Contains(line, "login complete") && strings.Contains(line, "linux-kvm") {
			logins++
		}
	}
	if logins != 1 {
		t.Fatalf("qemu-img logged in %d times: the reload dropped its session:\n%s", logins, g.log)
	}
}
