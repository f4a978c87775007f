package alua

import (
	"cmp"
	"slices"

	"github.com/rbdgw/rbdgw/gateway/cluster"
)

// Plan returns the gateway that should own each mapped disk of s: the
// recorded owner while it is live and still serves the disk's target;
// otherwise a live gateway serving the target, chosen so that every
// gateway owns about as many disks as the others (fewest disks first, then
// lowest target port group id). A disk without a live candidate maps to
// "". Every gateway computes the same plan from the same snapshot, so they
// agree on who claims what without talking to each other.
func Plan(s *cluster.Snapshot) map[string]string {
	type mapped struct {
		disk       string
		candidates []string
	}
	var disks []mapped
	for _, iqn := range s.TargetIQNs() {
		var live []string
		for _, g := range s.Targets[iqn].Gateways {
			if _, ok := s.Live[g]; ok {
				if _, ok := s.Gateways[g]; ok {
					live = append(live, g)
				}
			}
		}
		for _, l := range s.TargetLUNs(iqn) {
			if _, ok := s.Disks[l.Disk]; ok {
				disks = append(disks, mapped{disk: l.Disk, candidates: live})
			}
		}
	}
	slices.SortFunc(disks, func(a, b mapped) int { return cmp.Compare(a.disk, b.disk) })

	plan := make(map[string]string, len(disks))
	load := map[string]int{}
	var open []mapped
	for _, d := range disks {
		if o, ok := s.Owners[d.disk]; ok && slices.Contains(d.candidates, o.Gateway) {
			plan[d.disk] = o.Gateway
			load[o.Gateway]++
			continue
		}
		open = append(open, d)
	}
	for _, d := range open {
		best := ""
		for _, g := range d.candidates {
			if best == "" || lessLoaded(s, load, g, best) {
				best = g
			}
		}
		plan[d.disk] = best
		if best != "" {
			load[best]++
		}
	}
	return plan
}

// lessLoaded orders candidates: fewer owned disks first, then the lower
// target port group id, then the name.
func lessLoaded(s *cluster.Snapshot, load map[string]int, a, b string) bool {
	if load[a] != load[b] {
		return load[a] < load[b]
	}
	ta, tb := s.Gateways[a].TPGID, s.Gateways[b].TPGID
	if ta != tb {
		return ta < tb
	}
	return a < b
}

// effectiveOwner is the gateway reported Active/Optimized for disk: the
// recorded owner, even while it is gone (until another gateway has taken
// the disk over), else the planned one, so that all gateways report the
// same groups before the first claim lands.
func effectiveOwner(s *cluster.Snapshot, plan map[string]string, disk string) string {
	if o, ok := s.Owners[disk]; ok {
		return o.Gateway
	}
	return plan[disk]
}
