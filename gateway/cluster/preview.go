package cluster

import (
	"maps"
	"slices"
)

// KeyChange is one key that committing a set of ops would put or delete.
type KeyChange struct {
	Key    Key
	Delete bool
	// Value is the entity a put stores (secrets included: callers that
	// show it mask them).
	Value any
}

// Preview validates ops against base exactly as Commit does and returns
// the changes a commit would make, without writing anything (a dry run).
func Preview(base *Snapshot, ops ...Op) ([]KeyChange, error) {
	if len(ops) == 0 {
		return nil, nil
	}
	p, err := buildPlan(base, ops)
	if err != nil {
		return nil, err
	}
	var out []KeyChange
	for _, k := range slices.Sorted(maps.Keys(unionKeys(p.writes, p.sideDeletes))) {
		if v, ok := p.draft.valueOf(k); ok && p.writes[k] {
			out = append(out, KeyChange{Key: k, Value: v})
		} else {
			out = append(out, KeyChange{Key: k, Delete: true})
		}
	}
	return out, nil
}
