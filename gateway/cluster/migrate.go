package cluster

import (
	"context"
	"fmt"
	"maps"
	"slices"
)

// Schema versions (SchemaVersion is the newest):
//
//	1  a host's or host group's empty LUN list meant every LUN of the target
//	2  LUN lists are explicit: an empty list maps no LUN
//
// The records of an older schema are migrated to the current one in the
// transaction of the first write a writer of this build makes (Migrate
// makes one at once), together with the schema key, so the stored records
// always match the version it holds. A reader of an older, not yet
// migrated cluster interprets the records by their version (hostView).

// migrations[v] rewrites the draft of a plan from schema v to v+1, marking
// what it changes as written and guarding what it read; check[v], when
// set, then verifies that the draft, with the ops of the commit applied,
// holds nothing the migration could not rewrite.
var migrations = map[int]struct {
	migrate func(*plan)
	check   func(*plan) error
}{
	1: {migrateExplicitLUNLists, checkExplicitLUNLists},
}

// outdated reports whether the records were written under an older schema
// and are migrated by the next commit.
func (s *Snapshot) outdated() bool { return s.SchemaVersion != 0 && s.SchemaVersion < SchemaVersion }

// upgrade migrates the draft of p to SchemaVersion.
func (p *plan) upgrade() {
	for v := p.base.SchemaVersion; v < SchemaVersion; v++ {
		migrations[v].migrate(p)
	}
	p.draft.SchemaVersion = SchemaVersion
	p.writes[SchemaKey] = true
}

// checkUpgrade runs the checks of the migrations upgrade made.
func (p *plan) checkUpgrade() error {
	for v := p.base.SchemaVersion; v < SchemaVersion; v++ {
		if check := migrations[v].check; check != nil {
			if err := check(p); err != nil {
				return fmt.Errorf("%w: migrating the cluster from schema %d to %d: %w", ErrSchema, v, v+1, err)
			}
		}
	}
	return nil
}

// migrateExplicitLUNLists (1 to 2) replaces the empty LUN list of every
// host group, and of every host outside a group, with the ids of the LUNs
// its target has now. A grouped host's own list stays empty: it takes its
// group's. A target without LUNs needs nothing: "all" and "none" are the
// same there.
func migrateExplicitLUNLists(p *plan) {
	d := p.draft
	// A LUN mapped concurrently would be missing from the lists written.
	p.guard(targetsPrefix)
	for iqn, hosts := range d.Hosts {
		all := slices.Sorted(maps.Keys(d.LUNs[iqn]))
		if len(all) == 0 {
			continue
		}
		for name, h := range hosts {
			if _, grouped := d.GroupOf(iqn, name); grouped || len(h.LUNs) > 0 {
				continue
			}
			h.LUNs = slices.Clone(all)
			hosts[name] = h
			p.writes[HostKey(iqn, name)] = true
		}
	}
	for iqn, groups := range d.HostGroups {
		all := slices.Sorted(maps.Keys(d.LUNs[iqn]))
		if len(all) == 0 {
			continue
		}
		for name, g := range groups {
			if len(g.LUNs) > 0 {
				continue
			}
			g.LUNs = slices.Clone(all)
			groups[name] = g
			p.writes[HostGroupKey(iqn, name)] = true
		}
	}
}

// checkExplicitLUNLists refuses the migration while a host or group record
// does not decode (or holds secrets this writer cannot decrypt): what it
// maps cannot be known. The commit that deletes or rewrites it migrates.
func checkExplicitLUNLists(p *plan) error {
	for _, k := range slices.Sorted(maps.Keys(p.draft.Damaged)) {
		if kind := parseKey(k).kind; kind == kindHost || kind == kindHostGroup {
			return invalidf("%s cannot be read (%s); rewrite or delete it, or give this writer the secret key file", k, p.draft.Damaged[k])
		}
	}
	return nil
}

// Migrate brings the stored records up to this build's schema in one
// transaction, retrying like Update when a concurrent change interferes.
// Every writer migrates with its first commit anyway; Migrate is for those
// that open the store to write (a gateway daemon at start, rbdgw-admin),
// so the cluster is migrated before anyone reads it for a change. It
// returns the schema version found (0: an empty cluster, which the first
// write creates at the current version) and does nothing unless it is
// older. A cluster of a newer schema is refused with ErrSchema. A cluster
// too large for one transaction (more hosts and groups to rewrite than
// etcd's --max-txn-ops) fails with ErrTooLarge: raise the limit of etcd
// (and Options.MaxTxnOps) and migrate again.
func (s *Store) Migrate(ctx context.Context) (from int, err error) {
	_, err = s.Update(ctx, func(snap *Snapshot) ([]Op, error) {
		from = snap.SchemaVersion
		return nil, nil
	})
	return from, err
}
