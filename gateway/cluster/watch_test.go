package cluster

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/clustertest/tcpproxy"
)

// nextChange waits for one Change.
func nextChange(t *testing.T, ch <-chan Change, within time.Duration) Change {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return c
	case <-time.After(within):
		t.Fatalf("no change within %v", within)
	}
	return Change{}
}

// waitFor reads changes until cond holds for one, failing after within.
// Every change read is passed to each (when not nil) first.
func waitFor(t *testing.T, ch <-chan Change, within time.Duration, each func(Change), cond func(Change) bool) Change {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case c, ok := <-ch:
			if !ok {
				t.Fatal("watch channel closed")
			}
			if each != nil {
				each(c)
			}
			if cond(c) {
				return c
			}
		case <-deadline:
			t.Fatalf("condition not met within %v", within)
		}
	}
}

func hasTarget(iqn string) func(Change) bool {
	return func(c Change) bool { _, ok := c.Snapshot.Targets[iqn]; return ok }
}

func TestWatchDeliversChanges(t *testing.T) {
	_, s := startStore(t)
	ctx := testContext(t)
	rev := seed(t, s, 1)
	wctx, cancel := context.WithCancel(ctx)
	ch := s.Watch(wctx, rev)

	rev2, err := s.Apply(ctx, PutTarget(Target{IQN: tIQN2, Gateways: []string{gwName(0)}}))
	if err != nil {
		t.Fatal(err)
	}
	c := nextChange(t, ch, 5*time.Second)
	if c.Resync || c.Snapshot.Rev != rev2 || !slices.Equal(c.Keys, []Key{TargetKey(tIQN2)}) {
		t.Fatalf("change %+v (keys %v), want target at %d", c, c.Keys, rev2)
	}
	if c.Snapshot.ModRev(TargetKey(tIQN2)) != rev2 || len(c.Snapshot.Gateways) != 1 {
		t.Fatalf("snapshot not up to date: %+v", c.Snapshot)
	}

	// Reservation state is not part of the snapshot and makes no change;
	// one multi-key commit is one change.
	if _, err := s.CASPR(ctx, "rbd/a", 0, []byte(`{"generation":1}`)); err != nil {
		t.Fatal(err)
	}
	rev3, err := s.Apply(ctx,
		PutDisk(Disk{Pool: "rbd", Image: "b", Size: 4096}),
		PutLUN(LUN{Target: tIQN2, ID: 0, Disk: "rbd/b"}))
	if err != nil {
		t.Fatal(err)
	}
	c = nextChange(t, ch, 5*time.Second)
	if c.Snapshot.Rev != rev3 || !slices.Equal(c.Keys, []Key{DiskKey("rbd/b"), LUNKey(tIQN2, 0)}) {
		t.Fatalf("keys %v at %d, want disk and LUN at %d", c.Keys, c.Snapshot.Rev, rev3)
	}
	// A watched snapshot can be the base of a commit.
	if _, err := s.Commit(ctx, c.Snapshot, DeleteLUN(tIQN2, 0)); err != nil {
		t.Fatalf("commit on watched snapshot: %v", err)
	}
	c = nextChange(t, ch, 5*time.Second)
	if _, ok := c.Snapshot.LUNs[tIQN2]; ok || !slices.Equal(c.Keys, []Key{LUNKey(tIQN2, 0)}) {
		t.Fatalf("delete not seen: %v", c.Keys)
	}

	// From revision 0 the first change is the whole current state.
	ch0 := s.Watch(wctx, 0)
	c = nextChange(t, ch0, 5*time.Second)
	if !c.Resync || c.Keys != nil || len(c.Snapshot.Disks) != 2 {
		t.Fatalf("first change from 0: %+v", c)
	}
	cancel()
	for range ch {
	}
	for range ch0 {
	}
}

// A reader that does not keep up gets the newest state with every key that
// changed, not a backlog.
func TestWatchMergesForSlowReader(t *testing.T) {
	_, s := startStore(t)
	ctx := testContext(t)
	rev := seed(t, s, 1)
	ch := s.Watch(ctx, rev)
	var last int64
	for i := range 5 {
		r, err := s.Apply(ctx, PutHost(Host{Target: tIQN, Initiator: "iqn.2001-04.com.example:h" + string(rune('a'+i))}))
		if err != nil {
			t.Fatal(err)
		}
		last = r
	}
	var keys []Key
	c := waitFor(t, ch, 5*time.Second, func(c Change) { keys = append(keys, c.Keys...) },
		func(c Change) bool { return c.Snapshot.Rev == last })
	if len(c.Snapshot.Hosts[tIQN]) != 5 || len(keys) != 5 {
		t.Fatalf("hosts %d, keys %v", len(c.Snapshot.Hosts[tIQN]), keys)
	}
}

func TestWatchFromCompactedRevision(t *testing.T) {
	_, s := startStore(t)
	ctx := testContext(t)
	old := seed(t, s, 1)
	cur, err := s.Apply(ctx, PutTarget(Target{IQN: tIQN2}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.cli.Compact(ctx, cur); err != nil {
		t.Fatal(err)
	}
	ch := s.Watch(ctx, old)
	c := nextChange(t, ch, 5*time.Second)
	if !c.Resync || c.Snapshot.Rev != cur || !hasTarget(tIQN2)(c) {
		t.Fatalf("from a compacted revision: %+v", c)
	}
	rev, err := s.Apply(ctx, DeleteTarget(tIQN2))
	if err != nil {
		t.Fatal(err)
	}
	c = nextChange(t, ch, 5*time.Second)
	if c.Resync || c.Snapshot.Rev != rev || hasTarget(tIQN2)(c) {
		t.Fatalf("after resync: %+v", c)
	}

	// A revision the cluster never reached (etcd restored from an older
	// backup) also starts from the current state.
	c = nextChange(t, s.Watch(ctx, rev+1000), 5*time.Second)
	if !c.Resync || c.Snapshot.Rev != rev {
		t.Fatalf("from a future revision: %+v", c)
	}
}

// The watcher is cut off from etcd while changes happen and their
// revisions are compacted; when it reconnects it cannot resume, so it
// reloads and reports a resync with the newest state, then keeps following.
func TestWatchResyncsAfterCompactionWhileDisconnected(t *testing.T) {
	e, s := startStore(t)
	ctx := testContext(t)
	seed(t, s, 1)
	proxy, err := tcpproxy.New(e.endpoint()[len("http://"):])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	ws := newStore(t, newClient(t, "http://"+proxy.Addr()), Options{})
	ch := ws.Watch(ctx, 0)
	if c := nextChange(t, ch, 5*time.Second); !c.Resync {
		t.Fatalf("first change %+v", c)
	}
	if _, err := s.Apply(ctx, PutTarget(Target{IQN: tIQN2})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ch, 5*time.Second, nil, hasTarget(tIQN2))

	proxy.Partition()
	if _, err := s.Apply(ctx, DeleteTarget(tIQN2)); err != nil {
		t.Fatal(err)
	}
	cur, err := s.Apply(ctx, PutDisk(Disk{Pool: "rbd", Image: "b", Size: 512}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.cli.Compact(ctx, cur); err != nil {
		t.Fatal(err)
	}
	proxy.Heal()

	c := waitFor(t, ch, 20*time.Second, nil, func(c Change) bool { return c.Snapshot.Rev >= cur })
	if !c.Resync || hasTarget(tIQN2)(c) || len(c.Snapshot.Disks) != 2 {
		t.Fatalf("after reconnect: resync=%v rev=%d targets=%v", c.Resync, c.Snapshot.Rev, c.Snapshot.TargetIQNs())
	}
	rev, err := s.Apply(ctx, PutTarget(Target{IQN: tIQN2}))
	if err != nil {
		t.Fatal(err)
	}
	c = waitFor(t, ch, 5*time.Second, nil, func(c Change) bool { return c.Snapshot.Rev == rev })
	if c.Resync || !hasTarget(tIQN2)(c) {
		t.Fatalf("following after resync: %+v", c)
	}
}

// etcd stops and starts again on the same data; the watch resumes from the
// last revision it saw, without a resync and without losing a change.
func TestWatchSurvivesEtcdRestart(t *testing.T) {
	e, s := startStore(t)
	ctx := testContext(t)
	rev := seed(t, s, 1)
	ch := s.Watch(ctx, rev)
	r1, err := s.Apply(ctx, PutTarget(Target{IQN: tIQN2}))
	if err != nil {
		t.Fatal(err)
	}
	if c := nextChange(t, ch, 5*time.Second); c.Snapshot.Rev != r1 {
		t.Fatalf("before restart: %+v", c)
	}

	e.restart()

	// Two changes after the restart; the first may well be committed before
	// the watcher has reconnected.
	if _, err := s.Apply(ctx, PutHost(Host{Target: tIQN2, Initiator: ini1})); err != nil {
		t.Fatal(err)
	}
	r3, err := s.Apply(ctx, PutHost(Host{Target: tIQN2, Initiator: ini2}))
	if err != nil {
		t.Fatal(err)
	}
	var keys []Key
	c := waitFor(t, ch, 20*time.Second, func(c Change) {
		if c.Resync {
			t.Errorf("resync after a restart without compaction")
		}
		keys = append(keys, c.Keys...)
	}, func(c Change) bool { return c.Snapshot.Rev == r3 })
	if len(c.Snapshot.Hosts[tIQN2]) != 2 || !slices.Equal(keys, []Key{HostKey(tIQN2, ini1), HostKey(tIQN2, ini2)}) {
		t.Fatalf("after restart: hosts %v, keys %v", c.Snapshot.Hosts[tIQN2], keys)
	}
}

func TestWatchClosesWithContext(t *testing.T) {
	_, s := startStore(t)
	ctx, cancel := context.WithCancel(testContext(t))
	ch := s.Watch(ctx, 0)
	nextChange(t, ch, 5*time.Second)
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			// A change may have been in flight; the close must follow.
			if _, ok := <-ch; ok {
				t.Fatal("channel still open")
			}
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watch did not stop")
	}
}
