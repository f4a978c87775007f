package cluster

import (
	"encoding/binary"
	"os/exec"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
)

// TestResizeReachesEveryGateway grows a disk's image with the rbd tool
// while a session is logged in to each gateway: on both, the next command
// gets CAPACITY DATA HAS CHANGED and READ CAPACITY then reports the new
// size, without a relogin or a configuration change.
func TestResizeReachesEveryGateway(t *testing.T) {
	c := newCluster(t, 2)
	const before, after = 1 << 30, 2 << 30
	type path struct {
		name string
		in   *iscsitest.Initiator
	}
	var paths []path
	for _, g := range c.gws {
		in, err := iscsitest.Dial(g.portal)
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		if err := in.Login(iscsitest.LoginOptions{InitiatorName: "iqn.2024-01.io.example:resize", TargetName: c.iqn}); err != nil {
			t.Fatalf("%s: %v", g.name, err)
		}
		paths = append(paths, path{g.name, in})
	}
	readCapacity := func(in *iscsitest.Initiator) *iscsitest.Result {
		cdb := make([]byte, 16)
		cdb[0], cdb[1] = 0x9e, 0x10 // READ CAPACITY (16)
		binary.BigEndian.PutUint32(cdb[10:], 32)
		r, err := in.Do(&iscsitest.Cmd{CDB: cdb, Read: true, EDTL: 32})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, p := range paths {
		// Clear the unit attentions of the new I_T nexus.
		for i := 0; i < 5 && readCapacity(p.in).Status != 0; i++ {
		}
		if r := readCapacity(p.in); r.Status != 0 || binary.BigEndian.Uint64(r.Data)+1 != before/512 {
			t.Fatalf("%s: READ CAPACITY before the resize: status %#x data % x", p.name, r.Status, r.Data)
		}
	}
	if out, err := exec.Command("timeout", "60", "rbd", "-c", env.cephConf, "resize", "--no-progress",
		"--size", "2G", "rbd/"+c.images[0]).CombinedOutput(); err != nil {
		t.Fatalf("rbd resize: %v\n%s", err, out)
	}
	for _, p := range paths {
		deadline := time.Now().Add(10 * time.Second)
		sawUA := false
		for {
			r := readCapacity(p.in)
			if r.Status == 0x02 && len(r.Sense) >= 14 && r.Sense[2]&0x0f == 0x06 && r.Sense[12] == 0x2a && r.Sense[13] == 0x09 {
				sawUA = true
				continue
			}
			if r.Status == 0 && binary.BigEndian.Uint64(r.Data)+1 == after/512 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the new size was not reported: status %#x sense % x data % x", p.name, r.Status, r.Sense, r.Data)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !sawUA {
			t.Errorf("%s: no CAPACITY DATA HAS CHANGED unit attention before the new size", p.name)
		}
	}
}
