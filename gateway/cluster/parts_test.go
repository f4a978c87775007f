package cluster

import (
	"errors"
	"fmt"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// seedWide writes target tIQN with luns LUNs (each its own disk), hosts
// hosts (host i sees LUN i%luns, except the members of groups), and groups
// host groups of two members each, through s in transactions that fit.
func seedWide(t *testing.T, s *Store, luns, hosts, groups int) {
	t.Helper()
	ctx := testContext(t)
	apply := func(ops ...Op) {
		t.Helper()
		if _, err := s.Apply(ctx, ops...); err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
	apply(PutTarget(Target{IQN: tIQN}))
	for i := range luns {
		d := Disk{Pool: "rbd", Image: fmt.Sprintf("d%d", i), Size: 1 << 20}
		apply(PutDisk(d), PutLUN(LUN{Target: tIQN, ID: uint64(i), Disk: d.ID()}))
	}
	grouped := hosts - 2*groups
	for i := range hosts {
		h := Host{Target: tIQN, Initiator: fmt.Sprintf("iqn.2001-04.com.example:h%03d", i)}
		if i < grouped {
			h.LUNs = []uint64{uint64(i % luns)}
		}
		apply(PutHost(h))
	}
	for g := range groups {
		a, b := grouped+2*g, grouped+2*g+1
		apply(PutHostGroup(HostGroup{Target: tIQN, Name: fmt.Sprintf("g%d", g), LUNs: []uint64{uint64(g % luns)},
			Members: []string{fmt.Sprintf("iqn.2001-04.com.example:h%03d", a), fmt.Sprintf("iqn.2001-04.com.example:h%03d", b)}}))
	}
}

// TestNextPartDeletesTargetInParts: a target too large to delete in one
// transaction goes in parts, groups before hosts before LUN maps (an
// undecodable child too), each part leaving a valid configuration, the
// target last; no key of it is left.
func TestNextPartDeletesTargetInParts(t *testing.T) {
	e := startEtcd(t)
	cli := newClient(t, e.endpoint())
	s := newStore(t, cli, Options{MaxTxnOps: 16})
	ctx := testContext(t)
	seedWide(t, s, 12, 30, 3)
	// A child no build of this schema can read still goes with the target.
	if _, err := cli.Put(ctx, s.full(HostKey(tIQN, "iqn.2001-04.com.example:zz")), "{not json"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, DeleteTarget(tIQN)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("whole delete: %v, want ErrTooLarge", err)
	}
	parts := 0
	for {
		snap, _, err := s.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		part, last, err := s.NextPart(snap, DeleteTarget(tIQN))
		if err != nil {
			t.Fatalf("part %d: %v", parts+1, err)
		}
		if _, err := s.Commit(ctx, snap, part...); err != nil {
			t.Fatalf("part %d: %v", parts+1, err)
		}
		parts++
		if last {
			break
		}
		after, _, err := s.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := after.Targets[tIQN]; !ok {
			t.Fatalf("target deleted by part %d, before its children", parts)
		}
		if len(after.Hosts[tIQN]) < 30 && len(after.HostGroups[tIQN]) > 0 {
			t.Fatalf("part %d deleted hosts before groups", parts)
		}
		if len(after.LUNs[tIQN]) < 12 && len(after.Hosts[tIQN]) > 0 {
			t.Fatalf("part %d deleted LUN maps before hosts", parts)
		}
		if parts > 20 {
			t.Fatal("no end")
		}
	}
	if parts < 3 {
		t.Errorf("%d parts", parts)
	}
	resp, err := cli.Get(ctx, s.full(TargetKey(tIQN)), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != 0 {
		t.Fatalf("%d keys of the target left", resp.Count)
	}
	snap, _, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Disks) != 12 {
		t.Errorf("%d disks, want them kept", len(snap.Disks))
	}
}

// TestNextPartRequiresTargetUnchanged: a part does not commit once the
// target's record changed since its snapshot.
func TestNextPartRequiresTargetUnchanged(t *testing.T) {
	_, s := startStore(t)
	s.maxTxnOps = 16
	ctx := testContext(t)
	seedWide(t, s, 4, 20, 0)
	snap, _, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	part, last, err := s.NextPart(snap, DeleteTarget(tIQN))
	if err != nil || last {
		t.Fatalf("part: last %v, %v", last, err)
	}
	if _, err := s.Apply(ctx, PutTarget(Target{IQN: tIQN, AllowAnyInitiator: true})); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, snap, part...); !errors.Is(err, ErrConflict) {
		t.Fatalf("part after the target changed: %v, want a conflict", err)
	}
	now, _, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(now.Hosts[tIQN]) != 20 {
		t.Fatalf("%d hosts left, want 20", len(now.Hosts[tIQN]))
	}
}

// TestNextPartSplitsOnlyTargetDeletes: a change that fits is its own last
// part; any other change too large stays refused.
func TestNextPartSplitsOnlyTargetDeletes(t *testing.T) {
	s := &Store{maxTxnOps: 16}
	base := fixture(t)
	part, last, err := s.NextPart(base, DeleteTarget(tIQN))
	if err != nil || !last || len(part) != 1 {
		t.Fatalf("small delete: %v %v %v", part, last, err)
	}
	ops := []Op{PutTarget(Target{IQN: tIQN2})}
	for i := range 20 {
		ops = append(ops, PutHost(Host{Target: tIQN2, Initiator: fmt.Sprintf("iqn.2001-04.com.example:h%d", i)}))
	}
	if _, _, err := s.NextPart(base, ops...); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("large put: %v, want ErrTooLarge", err)
	}
	if _, _, err := s.NextPart(base, DeleteTarget(tIQN2)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing target: %v, want ErrNotFound", err)
	}
}

// TestCommitServerTooManyOps: a transaction etcd refuses as too large
// (its --max-txn-ops below the store's MaxTxnOps) is ErrTooLarge.
func TestCommitServerTooManyOps(t *testing.T) {
	e := startEtcd(t)
	s := newStore(t, newClient(t, e.endpoint()), Options{MaxTxnOps: 1000})
	ops := []Op{PutTarget(Target{IQN: tIQN})}
	for i := range DefaultMaxTxnOps + 10 {
		ops = append(ops, PutHost(Host{Target: tIQN, Initiator: fmt.Sprintf("iqn.2001-04.com.example:h%d", i)}))
	}
	if _, err := s.Apply(testContext(t), ops...); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
}
