package node

import (
	"slices"
	"testing"

	"github.com/rbdgw/rbdgw/gateway/cluster"
)

func TestTargetPortals(t *testing.T) {
	s := &cluster.Snapshot{
		Gateways: map[string]cluster.Gateway{
			"gw-a": {Name: "gw-a", TPGID: 1, Portals: []string{"10.0.0.1:3260"}},
			"gw-b": {Name: "gw-b", TPGID: 2, Portals: []string{"10.0.0.2:3260", "10.0.1.2:3260"}},
			"gw-c": {Name: "gw-c", TPGID: 3, Portals: []string{"10.0.0.3:3260"}},
		},
		Targets: map[string]cluster.Target{
			"iqn.2024-01.io.x:one": {IQN: "iqn.2024-01.io.x:one", Gateways: []string{"gw-b", "gw-a", "gw-c"}},
			"iqn.2024-01.io.x:two": {IQN: "iqn.2024-01.io.x:two", Gateways: []string{"gw-a"}},
		},
		Live: map[string]cluster.Live{"gw-b": {}},
	}
	got := targetPortals(s, "gw-a")
	// gw-a lists itself even before its own registration shows; gw-c is
	// not live; every portal carries its own gateway's tag.
	want := map[string][]string{
		"iqn.2024-01.io.x:one": {"10.0.0.1:3260,1", "10.0.0.2:3260,2", "10.0.1.2:3260,2"},
		"iqn.2024-01.io.x:two": {"10.0.0.1:3260,1"},
	}
	for iqn, w := range want {
		if !slices.Equal(got[iqn], w) {
			t.Errorf("%s: %v, want %v", iqn, got[iqn], w)
		}
	}
}
