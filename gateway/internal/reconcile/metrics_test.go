package reconcile

import (
	"log/slog"
	"slices"
	"testing"

	"github.com/rbdgw/rbdgw/gateway/config"
	"github.com/rbdgw/rbdgw/gateway/internal/iscsi"
	"github.com/rbdgw/rbdgw/gateway/metrics"
	"github.com/rbdgw/rbdgw/rbdbackend"
)

// The reconciler maps every LUN it runs in the metrics registry, with the
// disk's labels, and unmaps what it removes.
func TestApplyMapsMetrics(t *testing.T) {
	const t1, t2 = "iqn.2024-01.org.example:t1", "iqn.2024-01.org.example:t2"
	log := slog.New(slog.DiscardHandler)
	reg := metrics.NewRegistry(metrics.Options{Gateway: "gw1"})
	r := New(Options{
		Server:  iscsi.NewServer(iscsi.Options{Logger: log}),
		Open:    func(config.Disk) (rbdbackend.Image, error) { return rbdbackend.NewMemoryImage(1 << 20), nil },
		Logger:  log,
		Metrics: reg,
	})
	defer r.Close()
	cfg := &config.Config{
		Disks: []config.Disk{
			{Name: "rbd/vm1", Backend: "rbd", Pool: "rbd", Image: "vm1", Size: 1 << 20},
			{Name: "scratch", Backend: "memory", Size: 1 << 20},
		},
		Targets: []config.Target{
			{IQN: t1, LUNs: []config.LUN{{ID: 0, Disk: "rbd/vm1"}, {ID: 1, Disk: "scratch"}}},
			{IQN: t2, LUNs: []config.LUN{{ID: 3, Disk: "scratch"}}},
		},
	}
	if err := r.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	luns := func() []metrics.LUNInfo {
		var out []metrics.LUNInfo
		for _, l := range reg.Snapshot().LUNs {
			out = append(out, l.LUNInfo)
		}
		return out
	}
	want := []metrics.LUNInfo{
		{Target: t1, LUN: 0, Disk: "rbd/vm1", Pool: "rbd", Image: "vm1", Backend: "rbd"},
		{Target: t1, LUN: 1, Disk: "scratch", Backend: "memory"},
		{Target: t2, LUN: 3, Disk: "scratch", Backend: "memory"},
	}
	if got := luns(); !slices.Equal(got, want) {
		t.Fatalf("mapped %+v, want %+v", got, want)
	}

	// LUN 1 moves to another disk, target 2 goes away.
	cfg.Disks = append(cfg.Disks, config.Disk{Name: "other", Backend: "memory", Size: 1 << 20})
	cfg.Targets = []config.Target{{IQN: t1, LUNs: []config.LUN{{ID: 0, Disk: "rbd/vm1"}, {ID: 1, Disk: "other"}}}}
	if err := r.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	want = []metrics.LUNInfo{want[0], {Target: t1, LUN: 1, Disk: "other", Backend: "memory"}}
	if got := luns(); !slices.Equal(got, want) {
		t.Fatalf("after the change mapped %+v, want %+v", got, want)
	}
}
