package alua

import (
	"context"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/gateway/metrics"
	"github.com/rbdgw/rbdgw/rbdbackend"
)

func diskEvents(r *metrics.Registry, disk string) metrics.DiskEvents {
	for _, d := range r.Snapshot().Disks {
		if d.Disk == disk {
			return d
		}
	}
	return metrics.DiskEvents{}
}

// The provider counts owner changes and gives the registry this gateway's
// access states.
func TestProviderMetrics(t *testing.T) {
	all := []string{"gw-a", "gw-b"}
	reg := metrics.NewRegistry(metrics.Options{Gateway: "gw-b"})
	reg.SetLUN(metrics.LUNInfo{Target: iqn, LUN: 0, Disk: "rbd/d0"})
	p := NewProvider("gw-b", 2, quiet)
	p.SetMetrics(reg)
	p.Update(snapshot(all, all, 1, map[string]string{"rbd/d0": "gw-a"}))
	if s := reg.Snapshot(); s.LUNs[0].ALUAState != "active_non_optimized" {
		t.Errorf("state %s, want active_non_optimized", s.LUNs[0].ALUAState)
	}
	p.Update(snapshot(all, all, 1, map[string]string{"rbd/d0": "gw-b"}))
	if s := reg.Snapshot(); s.LUNs[0].ALUAState != "active_optimized" {
		t.Errorf("state %s after the move, want active_optimized", s.LUNs[0].ALUAState)
	}
	p.Update(snapshot(all, all, 1, map[string]string{"rbd/d0": "gw-b"}))
	if got := diskEvents(reg, "rbd/d0").OwnerChanges; got != 1 {
		t.Errorf("%d owner changes, want 1", got)
	}
	p.setTransitioning("rbd/d0", true)
	if s := reg.Snapshot(); s.LUNs[0].ALUAState != "transitioning" {
		t.Errorf("state %s while taking over", s.LUNs[0].ALUAState)
	}
}

// Takeovers and fencing are counted by the gateway that does them.
func TestManagerMetrics(t *testing.T) {
	store := newStore(t)
	ctx := context.Background()
	if _, err := store.ClaimOwner(ctx, "rbd/d0", "gw-c", 0); err != nil {
		t.Fatal(err)
	}
	reg := metrics.NewRegistry(metrics.Options{Gateway: "gw-a"})
	m := newManager(store, "gw-a", []string{"gw-a", "gw-b"})
	m.opts.Metrics = reg
	defer m.Close()
	img := &lockImage{MemoryImage: rbdbackend.NewMemoryImage(1 << 20), holders: []string{clients["gw-c"]}}
	m.Wrap("rbd/d0", img)
	m.takeover("rbd/d0", 0, true, "test") // stale epoch: gw-c claimed first
	m.takeover("rbd/d0", 1, true, "test")
	waitOwner(t, store, "gw-a", 2)
	d := diskEvents(reg, "rbd/d0")
	if d.Takeovers["conflict"] != 1 || d.Takeovers["claimed"] != 1 || d.FencedClients != 1 || d.FenceErrors != 0 {
		t.Errorf("events %+v", d)
	}
	// A write waiting for a live holder is counted, and fences nobody.
	m.Update(load(t, store, "gw-a", "gw-b"))
	img.mu.Lock()
	img.holders = []string{clients["gw-b"]}
	img.mu.Unlock()
	m.stalled("rbd/d0")
	if d := diskEvents(reg, "rbd/d0"); d.WriteStalls != 1 || d.FencedClients != 1 {
		t.Errorf("after a write stalled by a live holder: %+v", d)
	}
	// One blocked by a client of no live gateway: that client is fenced.
	img.mu.Lock()
	img.holders = []string{"127.0.0.1:0/99"}
	img.mu.Unlock()
	m.stalled("rbd/d0")
	deadline := time.Now().Add(5 * time.Second)
	for diskEvents(reg, "rbd/d0").FencedClients < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if d := diskEvents(reg, "rbd/d0"); d.WriteStalls != 2 || d.FencedClients != 2 || d.Takeovers["claimed"] != 1 {
		t.Errorf("after a stalled write: %+v", d)
	}
}
