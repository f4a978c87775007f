package alua

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"testing"

	"github.com/rbdgw/rbdgw/gateway/internal/scsi"
	"github.com/rbdgw/rbdgw/rbdbackend"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// device is one gateway's view of target iqn with disk rbd/d0 at LUN 0.
type device struct {
	t   *testing.T
	tgt *scsi.Target
	n   *scsi.Nexus
}

func newDevice(t *testing.T, p *Provider, tpg uint16) *device {
	t.Helper()
	lu, err := scsi.NewLU(rbdbackend.NewMemoryImage(1<<20), scsi.LUConfig{Name: "rbd/d0", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	tgt := scsi.NewTarget(iqn, scsi.TargetOptions{ALUA: p, Logger: quiet})
	tgt.SetLU(0, lu)
	n := &scsi.Nexus{InitiatorName: "iqn.2024-01.io.test:host", ISID: [6]byte{0x80, 0, 0, 0, 0, 1},
		TargetName: iqn, TPGT: tpg, RelativePortID: tpg, PortGroupID: tpg}
	tgt.NexusLogin(n)
	d := &device{t: t, tgt: tgt, n: n}
	for range 5 { // a new nexus starts with POWER ON
		if d.tur() == [3]byte{} {
			break
		}
	}
	return d
}

func (d *device) exec(cdb []byte) scsi.Result {
	return d.tgt.Execute(context.Background(), &scsi.Command{Nexus: d.n, LUN: 0, CDB: cdb, ExpectedLength: 4096, Read: true})
}

// tur returns the sense key, ASC and ASCQ of TEST UNIT READY (zero: GOOD).
func (d *device) tur() [3]byte {
	r := d.exec([]byte{0, 0, 0, 0, 0, 0})
	if r.Status == scsi.StatusGood {
		return [3]byte{}
	}
	return [3]byte{r.Sense[2] & 0xf, r.Sense[12], r.Sense[13]}
}

// groups returns "state[+pref]" per port group id from REPORT TARGET PORT
// GROUPS.
func (d *device) groups() map[uint16]string {
	r := d.exec([]byte{0xa3, 0x0a, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0})
	if r.Status != scsi.StatusGood {
		d.t.Fatalf("RTPG status %#x", r.Status)
	}
	names := map[byte]string{0: "AO", 1: "ANO", 0xf: "T"}
	out := map[uint16]string{}
	b := r.Data[4:]
	for len(b) >= 8 {
		s := names[b[0]&0xf]
		if b[0]&0x80 != 0 {
			s += "+pref"
		}
		out[binary.BigEndian.Uint16(b[2:4])] = s
		b = b[8+4*int(b[7]):]
	}
	return out
}

func TestProviderReportsTheOwnerEverywhere(t *testing.T) {
	all := []string{"gw-a", "gw-b"}
	s := snapshot(all, all, 1, map[string]string{"rbd/d0": "gw-a"})
	pa, pb := NewProvider("gw-a", 1, quiet), NewProvider("gw-b", 2, quiet)
	pa.Update(s)
	pb.Update(s)
	a, b := newDevice(t, pa, 1), newDevice(t, pb, 2)
	want := map[uint16]string{1: "AO+pref", 2: "ANO"}
	for name, d := range map[string]*device{"gw-a": a, "gw-b": b} {
		if got := d.groups(); len(got) != 2 || got[1] != want[1] || got[2] != want[2] {
			t.Fatalf("%s reports %v, want %v", name, got, want)
		}
	}

	// The owner moves: both gateways report it, with a unit attention.
	moved := snapshot(all, all, 1, map[string]string{"rbd/d0": "gw-b"})
	pa.Update(moved)
	pb.Update(moved)
	for name, d := range map[string]*device{"gw-a": a, "gw-b": b} {
		if got := d.tur(); got != [3]byte{6, 0x2a, 0x06} {
			t.Fatalf("%s: first command after the change: %x, want UNIT ATTENTION 2A/06", name, got)
		}
		if got := d.groups(); got[1] != "ANO" || got[2] != "AO+pref" {
			t.Fatalf("%s reports %v after the move", name, got)
		}
	}
	// An update that changes nothing establishes nothing.
	pa.Update(moved)
	if got := a.tur(); got != [3]byte{} {
		t.Fatalf("unchanged owner: %x", got)
	}
}

func TestProviderTransitioning(t *testing.T) {
	all := []string{"gw-a", "gw-b"}
	p := NewProvider("gw-b", 2, quiet)
	p.Update(snapshot(all, all, 1, map[string]string{"rbd/d0": "gw-a"}))
	d := newDevice(t, p, 2)
	p.setTransitioning("rbd/d0", true)
	if got := d.tur(); got != [3]byte{2, 0x04, 0x0a} {
		t.Fatalf("TUR while transitioning: %x, want NOT READY 04/0A", got)
	}
	if got := d.groups(); got[2] != "T" || got[1] != "AO+pref" {
		t.Fatalf("groups while transitioning: %v", got)
	}
	p.setTransitioning("rbd/d0", false)
	if got := d.tur(); got != [3]byte{} {
		t.Fatalf("TUR after the transition: %x", got)
	}
}

func TestProviderUnownedDiskUsesThePlan(t *testing.T) {
	all := []string{"gw-a", "gw-b"}
	p := NewProvider("gw-b", 2, quiet)
	p.Update(snapshot(all, all, 1, nil))
	d := newDevice(t, p, 2)
	if got := d.groups(); got[1] != "AO+pref" || got[2] != "ANO" {
		t.Fatalf("before the first claim: %v (the plan gives rbd/d0 to gw-a)", got)
	}
}

func TestProviderUnknownDisk(t *testing.T) {
	p := NewProvider("gw-a", 1, quiet)
	d := newDevice(t, p, 1)
	if got := d.groups(); len(got) != 1 || got[1] != "ANO" {
		t.Fatalf("disk missing from the configuration: %v", got)
	}
}

func TestProviderState(t *testing.T) {
	all := []string{"gw-a", "gw-b"}
	s := snapshot(all, all, 1, map[string]string{"rbd/d0": "gw-a"})
	pa, pb := NewProvider("gw-a", 1, quiet), NewProvider("gw-b", 2, quiet)
	pa.Update(s)
	pb.Update(s)
	if got := pa.State("rbd/d0"); got != scsi.ActiveOptimized {
		t.Errorf("owner reports %#x", got)
	}
	if got := pb.State("rbd/d0"); got != scsi.ActiveNonOptimized {
		t.Errorf("other gateway reports %#x", got)
	}
	pb.setTransitioning("rbd/d0", true)
	if got := pb.State("rbd/d0"); got != scsi.Transitioning {
		t.Errorf("taking over: %#x", got)
	}
	if got := pa.State("rbd/unmapped"); got != scsi.ActiveNonOptimized {
		t.Errorf("unmapped disk: %#x", got)
	}
}
