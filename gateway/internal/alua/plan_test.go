package alua

import (
	"maps"
	"testing"

	"github.com/rbdgw/rbdgw/gateway/cluster"
)

const iqn = "iqn.2024-01.io.rbdgw:t"

// snapshot builds a cluster state: gateways gw-a (tpg 1), gw-b (2) and
// gw-c (3), the live ones, one target served by serving, and disks
// d0..d<n-1> mapped as LUNs with the given owners.
func snapshot(live []string, serving []string, n int, owners map[string]string) *cluster.Snapshot {
	s := &cluster.Snapshot{
		Gateways: map[string]cluster.Gateway{}, Disks: map[string]cluster.Disk{},
		Targets: map[string]cluster.Target{}, LUNs: map[string]map[uint64]cluster.LUN{},
		Owners: map[string]cluster.Owner{}, Live: map[string]cluster.Live{},
	}
	for i, g := range []string{"gw-a", "gw-b", "gw-c"} {
		s.Gateways[g] = cluster.Gateway{Name: g, TPGID: uint16(i + 1), Portals: []string{"127.0.0.1:" + string(rune('1'+i)) + "260"}}
	}
	for _, g := range live {
		s.Live[g] = cluster.Live{Gateway: g}
	}
	s.Targets[iqn] = cluster.Target{IQN: iqn, Gateways: serving}
	s.LUNs[iqn] = map[uint64]cluster.LUN{}
	for i := range n {
		id := "rbd/d" + string(rune('0'+i))
		s.Disks[id] = cluster.Disk{Pool: "rbd", Image: id[4:]}
		s.LUNs[iqn][uint64(i)] = cluster.LUN{Target: iqn, ID: uint64(i), Disk: id}
	}
	for d, g := range owners {
		s.Owners[d] = cluster.Owner{Disk: d, Gateway: g, Epoch: 1}
	}
	return s
}

func TestPlan(t *testing.T) {
	all := []string{"gw-a", "gw-b", "gw-c"}
	tests := []struct {
		name    string
		live    []string
		serving []string
		disks   int
		owners  map[string]string
		want    map[string]string
	}{
		{"new disks spread evenly", all, all, 4, nil,
			map[string]string{"rbd/d0": "gw-a", "rbd/d1": "gw-b", "rbd/d2": "gw-c", "rbd/d3": "gw-a"}},
		{"live owners keep their disks", all, all, 3,
			map[string]string{"rbd/d0": "gw-c", "rbd/d1": "gw-c"},
			map[string]string{"rbd/d0": "gw-c", "rbd/d1": "gw-c", "rbd/d2": "gw-a"}},
		{"a dead owner's disks go to the least loaded", []string{"gw-a", "gw-b"}, all, 3,
			map[string]string{"rbd/d0": "gw-c", "rbd/d1": "gw-a", "rbd/d2": "gw-c"},
			map[string]string{"rbd/d0": "gw-b", "rbd/d1": "gw-a", "rbd/d2": "gw-a"}},
		{"an owner that no longer serves the target is replaced", all, []string{"gw-a", "gw-b"}, 1,
			map[string]string{"rbd/d0": "gw-c"}, map[string]string{"rbd/d0": "gw-a"}},
		{"only gateways of the target", all, []string{"gw-b"}, 2, nil,
			map[string]string{"rbd/d0": "gw-b", "rbd/d1": "gw-b"}},
		{"nobody live", nil, all, 1, map[string]string{"rbd/d0": "gw-a"}, map[string]string{"rbd/d0": ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Plan(snapshot(tc.live, tc.serving, tc.disks, tc.owners))
			if !maps.Equal(got, tc.want) {
				t.Fatalf("Plan = %v, want %v", got, tc.want)
			}
		})
	}
}
