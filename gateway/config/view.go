package config

import "fmt"

// validateView checks the LUN view of an ACL against the LUN ids its
// target maps (luns): a view names only LUNs the target has, each once.
// This is the one place the rule is checked; cluster.Render only produces
// views that pass it.
func (a ACL) validateView(luns map[uint64]bool) error {
	ids, all := a.View()
	if all {
		return nil
	}
	seen := make(map[uint64]bool, len(ids))
	for _, id := range ids {
		if !luns[id] {
			return fmt.Errorf("luns: the target has no LUN %d", id)
		}
		if seen[id] {
			return fmt.Errorf("luns: LUN %d listed twice", id)
		}
		seen[id] = true
	}
	return nil
}
