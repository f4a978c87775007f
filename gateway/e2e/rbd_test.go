//go:build pacific

package e2e

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
)

// rbdImage creates a fresh image in the micro cluster named by CEPH_CONF
// and removes it at the end of the test.
func rbdImage(t *testing.T, size string) (conf, spec string) {
	t.Helper()
	conf = os.Getenv("CEPH_CONF")
	if conf == "" {
		t.Skip("CEPH_CONF is not set: no Ceph cluster (make test starts a micro cluster)")
	}
	needTools(t, "rbd")
	spec = fmt.Sprintf("rbd/e2e-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	if out, err := exec.Command("rbd", "-c", conf, "create", "--size", size, spec).CombinedOutput(); err != nil {
		t.Fatalf("rbd create: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("rbd", "-c", conf, "rm", "--no-progress", spec).Run() })
	return conf, spec
}

func rbdConfig(spec string) string {
	pool, image := filepath.Split(spec)
	return `
portals: ["127.0.0.1:%PORT%"]
disks:
  - {name: r0, backend: rbd, pool: ` + filepath.Clean(pool) + `, image: ` + image + `}
targets:
  - iqn: iqn.2024-01.io.rbdgw:rbd
    luns: [{id: 0, disk: r0}]
    allow_any_initiator: true
`
}

// TestRBDQemuRoundTrip writes 256 MiB of random data through the gateway
// into an RBD image, reads it back through the gateway, and reads it with
// `rbd export` straight from the cluster: all three must be identical.
func TestRBDQemuRoundTrip(t *testing.T) {
	needTools(t, "qemu-img")
	conf, spec := rbdImage(t, "300M")
	t.Setenv("CEPH_CONF", conf)
	g := startGateway(t, rbdConfig(spec))
	want := qemuRoundTrip(t, "iscsi://"+g.portal()+"/iqn.2024-01.io.rbdgw:rbd/0")
	exported := filepath.Join(t.TempDir(), "export.raw")
	if out, err := run(t, 5*time.Minute, "rbd", "-c", conf, "export", "--no-progress", spec, exported); err != nil {
		t.Fatalf("rbd export: %v\n%s", err, out)
	}
	if fileSHA256(t, exported, roundTripSize) != want {
		t.Fatal("rbd export of the image differs from the data written through the gateway")
	}
}

// TestRBDResizeSeenWithoutRelogin grows the image with the rbd CLI while a
// session is logged in: the next command gets CAPACITY DATA HAS CHANGED and
// READ CAPACITY then reports the new size, on the same session.
func TestRBDResizeSeenWithoutRelogin(t *testing.T) {
	conf, spec := rbdImage(t, "64M")
	t.Setenv("CEPH_CONF", conf)
	g := startGateway(t, rbdConfig(spec))
	in, err := iscsitest.Dial(g.portal())
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := in.Login(iscsitest.LoginOptions{InitiatorName: "iqn.2024-01.io.example:resize", TargetName: "iqn.2024-01.io.rbdgw:rbd"}); err != nil {
		t.Fatal(err)
	}
	readCapacity := func() *iscsitest.Result {
		cdb := make([]byte, 16)
		cdb[0], cdb[1] = 0x9e, 0x10 // READ CAPACITY (16)
		binary.BigEndian.PutUint32(cdb[10:], 32)
		r, err := in.Do(&iscsitest.Cmd{CDB: cdb, Read: true, EDTL: 32})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// Clear the unit attention of the new I_T nexus.
	for i := 0; i < 5 && readCapacity().Status != 0; i++ {
	}
	r := readCapacity()
	if r.Status != 0 || binary.BigEndian.Uint64(r.Data)+1 != 64<<20/512 {
		t.Fatalf("READ CAPACITY before the resize: status %#x data % x", r.Status, r.Data)
	}
	if out, err := exec.Command("rbd", "-c", conf, "resize", "--no-progress", "--size", "128M", spec).CombinedOutput(); err != nil {
		t.Fatalf("rbd resize: %v\n%s", err, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	sawUA := false
	for {
		r = readCapacity()
		if r.Status == 0x02 && len(r.Sense) >= 14 && r.Sense[2]&0x0f == 0x06 && r.Sense[12] == 0x2a && r.Sense[13] == 0x09 {
			sawUA = true
			continue
		}
		if r.Status == 0 && binary.BigEndian.Uint64(r.Data)+1 == 128<<20/512 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new size was not reported: status %#x sense % x data % x", r.Status, r.Sense, r.Data)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !sawUA {
		t.Fatal("no CAPACITY DATA HAS CHANGED unit attention before the new size")
	}
}
