package node

import (
	"cmp"
	"slices"
	"strconv"

	"github.com/rbdgw/rbdgw/gateway/cluster"
)

// targetPortals lists, for every target, the portals of the gateways that
// serve it and are live (this one always), each tagged with its gateway's
// portal group tag, in port group order.
func targetPortals(s *cluster.Snapshot, self string) map[string][]string {
	out := map[string][]string{}
	for _, iqn := range s.TargetIQNs() {
		groups := s.PortGroups(iqn)
		slices.SortFunc(groups, func(a, b cluster.PortGroup) int { return cmp.Compare(a.TPGID, b.TPGID) })
		var portals []string
		for _, g := range groups {
			if _, live := s.Live[g.Gateway]; !live && g.Gateway != self {
				continue
			}
			for _, p := range g.Portals {
				portals = append(portals, p+","+strconv.Itoa(int(g.TPGID)))
			}
		}
		out[iqn] = portals
	}
	return out
}
