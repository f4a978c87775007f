package cluster

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
)

// seed writes the fixture-like base state through the store.
func seed(t *testing.T, s *Store, gateways int) int64 {
	t.Helper()
	ops := []Op{
		PutDisk(Disk{Pool: "rbd", Image: "a", Size: 1 << 20}),
		PutTarget(Target{IQN: tIQN}),
		PutLUN(LUN{Target: tIQN, ID: 0, Disk: "rbd/a"}),
	}
	for i := range gateways {
		ops = append(ops, PutGateway(Gateway{Name: gwName(i), Portals: []string{fmt.Sprintf("127.0.0.1:%d", 3260+i)}}))
	}
	rev, err := s.Apply(testContext(t), ops...)
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
	return rev
}

func gwName(i int) string { return fmt.Sprintf("gw%02d", i) }

func TestStoreRoundTrip(t *testing.T) {
	_, s := startStore(t)
	ctx := testContext(t)
	rev := seed(t, s, 2)
	snap, loadRev, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if loadRev != rev || snap.Rev != rev {
		t.Errorf("Load at %d/%d, commit was %d", loadRev, snap.Rev, rev)
	}
	if snap.SchemaVersion != SchemaVersion || len(snap.Gateways) != 2 || len(snap.TargetLUNs(tIQN)) != 1 {
		t.Fatalf("state %+v", snap)
	}
	disk := snap.Disks["rbd/a"]
	if len(disk.WWN) != 16 || len(disk.Serial) != 32 {
		t.Fatalf("identity not stored: %+v", disk)
	}
	if snap.ModRev(DiskKey("rbd/a")) != rev {
		t.Errorf("mod revision %d", snap.ModRev(DiskKey("rbd/a")))
	}

	// Growing keeps the identity every gateway already presents.
	if _, err := s.Apply(ctx, PutDisk(Disk{Pool: "rbd", Image: "a", Size: 1 << 21})); err != nil {
		t.Fatal(err)
	}
	snap2, _, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := snap2.Disks["rbd/a"]; got.WWN != disk.WWN || got.Serial != disk.Serial || got.Size != 1<<21 {
		t.Errorf("after grow: %+v, before %+v", got, disk)
	}

	// Expectations from an old read are refused, not overwritten.
	_, err = s.Apply(ctx, PutDisk(Disk{Pool: "rbd", Image: "a", Size: 1 << 22}).IfModRev(snap.ModRev(DiskKey("rbd/a"))))
	var conflict *ConflictError
	if !errors.As(err, &conflict) || conflict.Key != DiskKey("rbd/a") {
		t.Errorf("stale IfModRev: %v", err)
	}
	if _, err := s.Apply(ctx, PutTarget(Target{IQN: tIQN}).IfAbsent()); !errors.Is(err, ErrExists) {
		t.Errorf("IfAbsent on existing: %v", err)
	}
	if _, err := s.Apply(ctx, DeleteDisk("rbd/a")); !errors.Is(err, ErrInUse) {
		t.Errorf("delete mapped disk: %v", err)
	}

	// A no-op update writes nothing.
	before, _, _ := s.Load(ctx)
	rev3, err := s.Update(ctx, func(*Snapshot) ([]Op, error) { return nil, nil })
	if err != nil || rev3 != before.Rev {
		t.Errorf("empty update: %d, %v (state at %d)", rev3, err, before.Rev)
	}
	// Errors from fn end the update.
	sentinel := errors.New("stop")
	if _, err := s.Update(ctx, func(*Snapshot) ([]Op, error) { return nil, sentinel }); !errors.Is(err, sentinel) {
		t.Errorf("fn error: %v", err)
	}
}

func TestStoreLoadPages(t *testing.T) {
	_, s := startStore(t)
	ctx := testContext(t)
	seed(t, s, 23)
	s.pageSize = 5
	snap, _, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Gateways) != 23 || len(snap.Disks) != 1 || len(snap.TargetLUNs(tIQN)) != 1 {
		t.Errorf("paged load lost keys: %d gateways", len(snap.Gateways))
	}
}

// Writers that all read the same revision and change the same target: one
// wins, every other one is told it lost, and the winner's change is there.
func TestCommitReportsEveryConflict(t *testing.T) {
	_, s := startStore(t)
	ctx := testContext(t)
	const writers = 12
	seed(t, s, writers)
	for round := range 3 {
		snap, _, err := s.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		errs := make([]error, writers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range writers {
			wg.Go(func() {
				tgt := snap.Targets[tIQN]
				tgt.Gateways = append(slices.Clone(tgt.Gateways), gwName(i))
				tgt.Gateways = slices.Compact(slices.Sorted(slices.Values(tgt.Gateways)))
				<-start
				_, errs[i] = s.Commit(ctx, snap, PutTarget(tgt))
			})
		}
		close(start)
		wg.Wait()
		var winners []int
		for i, err := range errs {
			var conflict *ConflictError
			switch {
			case err == nil:
				winners = append(winners, i)
			case errors.As(err, &conflict) && errors.Is(err, ErrConflict):
			default:
				t.Fatalf("round %d writer %d: %v", round, i, err)
			}
		}
		if len(winners) != 1 {
			t.Fatalf("round %d: %d winners", round, len(winners))
		}
		after, _, err := s.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(after.Targets[tIQN].Gateways, gwName(winners[0])) {
			t.Fatalf("round %d: winner's change lost: %v", round, after.Targets[tIQN].Gateways)
		}
	}
}

// Many read-modify-write updates of one target at once: every update that
// reports success is in the final state, every one that does not was told
// so with ErrConflict and left no trace.
func TestUpdateLosesNothing(t *testing.T) {
	e, _ := startStore(t)
	const writers = 16
	for _, attempts := range []int{2, 100} {
		t.Run(fmt.Sprintf("attempts=%d", attempts), func(t *testing.T) {
			s := newStore(t, newClient(t, e.endpoint()), Options{Prefix: fmt.Sprintf("/attempts%d/", attempts), MaxAttempts: attempts})
			ctx := testContext(t)
			seed(t, s, writers)
			errs := make([]error, writers)
			var calls sync.Map
			var wg sync.WaitGroup
			for i := range writers {
				wg.Go(func() {
					host := fmt.Sprintf("iqn.2001-04.com.example:host%d", i)
					_, errs[i] = s.Update(ctx, func(snap *Snapshot) ([]Op, error) {
						n, _ := calls.LoadOrStore(i, new(int))
						*n.(*int)++
						tgt := snap.Targets[tIQN]
						tgt.Gateways = append(slices.Clone(tgt.Gateways), gwName(i))
						return []Op{PutTarget(tgt), PutHost(Host{Target: tIQN, Initiator: host, LUNs: []uint64{0}})}, nil
					})
				})
			}
			wg.Wait()
			final, _, err := s.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			gws := final.Targets[tIQN].Gateways
			ok, retries := 0, 0
			for i, err := range errs {
				host := fmt.Sprintf("iqn.2001-04.com.example:host%d", i)
				_, hostThere := final.Hosts[tIQN][host]
				n, _ := calls.Load(i)
				retries += *n.(*int) - 1
				switch {
				case err == nil:
					ok++
					if !slices.Contains(gws, gwName(i)) || !hostThere {
						t.Errorf("writer %d succeeded but its change is missing", i)
					}
				case errors.Is(err, ErrConflict):
					if slices.Contains(gws, gwName(i)) || hostThere {
						t.Errorf("writer %d was told it failed but its change is there", i)
					}
				default:
					t.Errorf("writer %d: %v", i, err)
				}
			}
			if len(gws) != ok {
				t.Errorf("%d gateways listed, %d successful writers", len(gws), ok)
			}
			if attempts == 100 && ok != writers {
				t.Errorf("only %d of %d writers succeeded with %d attempts", ok, writers, attempts)
			}
			t.Logf("%d of %d succeeded, %d retries", ok, writers, retries)
		})
	}
}

// Checks made against a snapshot stay true at commit time: a disk deleted
// concurrently with its mapping, and one disk mapped into two targets at
// once, never both succeed.
func TestNoWriteSkew(t *testing.T) {
	_, s := startStore(t)
	ctx := testContext(t)
	seed(t, s, 1)
	if _, err := s.Apply(ctx, PutTarget(Target{IQN: tIQN2})); err != nil {
		t.Fatal(err)
	}
	for round := range 10 {
		disk := fmt.Sprintf("rbd/d%d", round)
		pool, image, _ := SplitDiskID(disk)
		if _, err := s.Apply(ctx, PutDisk(Disk{Pool: pool, Image: image, Size: 512})); err != nil {
			t.Fatal(err)
		}
		snap, _, err := s.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		racers := [][]Op{
			{DeleteDisk(disk)},
			{PutLUN(LUN{Target: tIQN, ID: uint64(1 + round), Disk: disk})},
			{PutLUN(LUN{Target: tIQN2, ID: uint64(1 + round), Disk: disk})},
		}
		errs := make([]error, len(racers))
		var wg sync.WaitGroup
		for i, ops := range racers {
			wg.Go(func() { _, errs[i] = s.Commit(ctx, snap, ops...) })
		}
		wg.Wait()
		wins := 0
		for i, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, ErrConflict):
				t.Fatalf("round %d racer %d: %v", round, i, err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d racers won (%v)", round, wins, errs)
		}
		final, _, err := s.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		mapped := 0
		for _, luns := range final.LUNs {
			for _, l := range luns {
				if l.Disk == disk {
					mapped++
					if _, ok := final.Disks[disk]; !ok {
						t.Fatalf("round %d: LUN maps deleted disk %s", round, disk)
					}
				}
			}
		}
		if mapped > 1 {
			t.Fatalf("round %d: disk mapped %d times", round, mapped)
		}
	}
}

func TestConcurrentGatewaysGetDistinctTPGIDs(t *testing.T) {
	_, s := startStore(t)
	ctx := testContext(t)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.Apply(ctx, PutGateway(Gateway{Name: gwName(i), Portals: []string{fmt.Sprintf("127.0.0.1:%d", 4000+i)}}))
		})
	}
	wg.Wait()
	snap, _, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint16]string{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("gateway %d: %v", i, err)
		}
		g := snap.Gateways[gwName(i)]
		if g.TPGID < 1 || g.TPGID > n || seen[g.TPGID] != "" {
			t.Fatalf("gateway %s got TPG id %d (seen %v)", g.Name, g.TPGID, seen)
		}
		seen[g.TPGID] = g.Name
	}
}

func TestStoreTxnTooLarge(t *testing.T) {
	e, _ := startStore(t)
	s := newStore(t, newClient(t, e.endpoint()), Options{MaxTxnOps: 8})
	ctx := testContext(t)
	ops := []Op{PutTarget(Target{IQN: tIQN})}
	for i := range 10 {
		ops = append(ops, PutHost(Host{Target: tIQN, Initiator: fmt.Sprintf("iqn.2001-04.com.example:h%d", i)}))
	}
	if _, err := s.Apply(ctx, ops...); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	if _, err := s.Apply(ctx, ops[:5]...); err != nil {
		t.Fatalf("small change: %v", err)
	}
}

func TestNewRejectsBadPrefix(t *testing.T) {
	e := startEtcd(t)
	cli := newClient(t, e.endpoint())
	for _, p := range []string{"rbdgw/", "/rbdgw"} {
		if _, err := New(cli, Options{Prefix: p}); err == nil {
			t.Errorf("prefix %q accepted", p)
		}
	}
	if _, err := New(nil, Options{}); err == nil {
		t.Error("nil client accepted")
	}
}
