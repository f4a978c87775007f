package cluster

import (
	"fmt"
	"slices"
	"strings"
)

// NextPart returns what to commit next, against base, of ops that may be
// too large for one etcd transaction (--max-txn-ops, Options.MaxTxnOps),
// and whether that is the last part. When ops fit in one transaction the
// part is ops themselves and last is true.
//
// Only the delete of a target (DeleteTarget alone) is split: a part
// deletes as many of its children as fit, host groups first, then hosts,
// then LUN maps, the order in which no part leaves a reference dangling
// (a group names its members, hosts and groups name LUNs). The target goes
// last, with whatever children are left. A delete that stops half-way
// thus leaves a valid target with fewer children, and deleting it again
// finishes the job. Every part requires the target's record to keep the
// mod revision it has in base, so a change of the target stops the part
// with a conflict like any other write. The caller commits each part
// against the snapshot it was computed from and computes the next from a
// fresh one.
//
// Any other change that does not fit returns ErrTooLarge.
func (s *Store) NextPart(base *Snapshot, ops ...Op) (part []Op, last bool, err error) {
	p, err := buildPlan(base, ops)
	if err != nil {
		return nil, false, err
	}
	nc, no := p.size()
	if nc <= s.maxTxnOps && no <= s.maxTxnOps {
		return ops, true, nil
	}
	tooLarge := fmt.Errorf("%w: %d compares and %d writes, etcd accepts %d of each per transaction; split the change",
		ErrTooLarge, nc, no, s.maxTxnOps)
	if len(ops) != 1 || ops[0].put || ops[0].read {
		return nil, false, tooLarge
	}
	ref := parseKey(ops[0].key)
	if ref.kind != kindTarget {
		return nil, false, tooLarge
	}
	children := targetChildren(base, ref.target)
	fits := func(n int) (bool, error) {
		p, err := buildPlan(base, append(slices.Clip(children[:n]), requireUnchanged(ops[0].key)))
		if err != nil {
			return false, err
		}
		nc, no := p.size()
		return nc <= s.maxTxnOps && no <= s.maxTxnOps, nil
	}
	// The largest prefix of children that fits; every prefix is a valid
	// change because of their order.
	lo, hi := 0, min(len(children), s.maxTxnOps)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		ok, err := fits(mid)
		if err != nil {
			return nil, false, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	if lo == 0 {
		return nil, false, tooLarge
	}
	return append(slices.Clip(children[:lo]), requireUnchanged(ops[0].key)), false, nil
}

// targetChildren are the deletes of every child of target iqn in base,
// undecodable ones included, in the order they can go: host groups, hosts,
// LUN maps, each kind in key order.
func targetChildren(base *Snapshot, iqn string) []Op {
	keys := map[Key]bool{}
	for id := range base.LUNs[iqn] {
		keys[LUNKey(iqn, id)] = true
	}
	for name := range base.Hosts[iqn] {
		keys[HostKey(iqn, name)] = true
	}
	for name := range base.HostGroups[iqn] {
		keys[HostGroupKey(iqn, name)] = true
	}
	prefix := string(targetChildrenPrefix(iqn))
	for k := range base.Damaged {
		if strings.HasPrefix(string(k), prefix) {
			keys[k] = true
		}
	}
	rank := map[keyKind]int{kindHostGroup: 0, kindHost: 1, kindLUN: 2}
	sorted := make([]Key, 0, len(keys))
	for k := range keys {
		if _, ok := rank[parseKey(k).kind]; ok {
			sorted = append(sorted, k)
		}
	}
	slices.SortFunc(sorted, func(a, b Key) int {
		if ra, rb := rank[parseKey(a).kind], rank[parseKey(b).kind]; ra != rb {
			return ra - rb
		}
		return strings.Compare(string(a), string(b))
	})
	out := make([]Op, 0, len(sorted))
	for _, k := range sorted {
		out = append(out, deleteOp(k))
	}
	return out
}
