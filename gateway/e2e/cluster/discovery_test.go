package cluster

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// Every gateway is one target port group of the same target: discovery
// through either lists both portals with their own tags, and both report
// the same logical unit and the same port groups.
func TestDiscoveryAndIdentity(t *testing.T) {
	c := newCluster(t, 2)
	a, b := c.gws[0], c.gws[1]
	for _, g := range c.gws {
		out, err := exec.Command("iscsi-ls", "-s", "iscsi://"+g.portal).CombinedOutput()
		if err != nil {
			t.Fatalf("iscsi-ls through %s: %v\n%s", g.name, err, out)
		}
		for i, p := range []*gateway{a, b} {
			want := fmt.Sprintf("Target:%s Portal:%s,%d", c.iqn, p.portal, i+1)
			if !strings.Contains(string(out), want) {
				t.Errorf("discovery through %s lacks %q:\n%s", g.name, want, out)
			}
		}
	}
	ia, ib := c.identity(a), c.identity(b)
	if ia["naa"] == nil || ia["naa"] != ib["naa"] {
		t.Fatalf("logical unit identity differs: %v vs %v", ia["naa"], ib["naa"])
	}
	for i, id := range []map[string]any{ia, ib} {
		if int(id["port_group"].(float64)) != i+1 || int(id["relative_port"].(float64)) != i+1 {
			t.Errorf("gateway %d reports port group %v, relative port %v", i, id["port_group"], id["relative_port"])
		}
	}
	sa, sb := groupStates(ia), groupStates(ib)
	owner := map[string]int{"gw-a": 1, "gw-b": 2}[c.owner()]
	for g := 1; g <= 2; g++ {
		want := "ANO"
		if g == owner {
			want = "AO+pref"
		}
		if sa[g] != want || sb[g] != want {
			t.Errorf("group %d: gw-a reports %s, gw-b %s, want %s (owner %s)", g, sa[g], sb[g], want, c.owner())
		}
	}
}
