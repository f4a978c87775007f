package prstore

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/internal/scsi/pr"
)

// fencer stands in for the OSD blocklist: it records the addresses a hub
// fenced; fail makes fencing fail.
type fencer struct {
	mu    sync.Mutex
	addrs []string
	fail  error
}

func (f *fencer) fence(_ context.Context, addr string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.addrs = append(f.addrs, addr)
	return nil
}

func (f *fencer) fenced() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.addrs)
}

// serve tells every hub that the gateways in names serve the disk.
func serve(gws []*gateway, names ...string) {
	snap := &cluster.Snapshot{
		Targets: map[string]cluster.Target{"iqn.2024-01.io.example:t1": {IQN: "iqn.2024-01.io.example:t1", Gateways: names}},
		LUNs:    map[string]map[uint64]cluster.LUN{"iqn.2024-01.io.example:t1": {0: {Target: "iqn.2024-01.io.example:t1", Disk: disk}}},
	}
	for _, g := range gws {
		g.hub.SetConfig(snap)
	}
}

// The acknowledgement timeout of the cases that expect no wait for it:
// long enough that passing it on a loaded machine is a failure.
const longAck = 30 * time.Second

func TestChangeConfirmedOrFenced(t *testing.T) {
	failed := errors.New("mon unreachable")
	tests := []struct {
		name string
		// ack is gw-a's acknowledgement timeout.
		ack time.Duration
		// serving are the gateways of the disk's target.
		serving []string
		// cut makes gw-c unable to confirm: "stopped" (its hub stops
		// following etcd, its record stays), "gone" (its lease ends too),
		// "" (it works).
		cut string
		// reset makes the change a logical unit reset.
		reset     bool
		noFencer  bool
		fenceFail error
		updates   int
		wantErr   error
		// wantFenced are the addresses fenced, by gateway name.
		wantFenced []string
		// wantQuick: the change completes well before the timeout.
		wantQuick bool
	}{
		{name: "every gateway confirms", ack: longAck, serving: []string{"gw-a", "gw-b", "gw-c"},
			updates: 3, wantQuick: true},
		{name: "a gateway that never applies is fenced after the timeout", ack: 300 * time.Millisecond,
			serving: []string{"gw-a", "gw-b", "gw-c"}, cut: "stopped", updates: 1, wantFenced: []string{"gw-c"}},
		{name: "a gateway fenced once is not fenced again", ack: 300 * time.Millisecond,
			serving: []string{"gw-a", "gw-b", "gw-c"}, cut: "stopped", updates: 3, wantFenced: []string{"gw-c"}},
		{name: "a gateway that is not live is fenced at once", ack: longAck,
			serving: []string{"gw-a", "gw-b", "gw-c"}, cut: "gone", updates: 1, wantFenced: []string{"gw-c"}, wantQuick: true},
		{name: "fencing fails", ack: 300 * time.Millisecond, serving: []string{"gw-a", "gw-b", "gw-c"},
			cut: "stopped", fenceFail: failed, updates: 1, wantErr: ErrNotConfirmed},
		{name: "nobody to fence with", ack: 300 * time.Millisecond, serving: []string{"gw-a", "gw-b", "gw-c"},
			cut: "gone", noFencer: true, updates: 1, wantErr: ErrNotConfirmed},
		{name: "a gateway that does not serve the disk is not waited for", ack: longAck,
			serving: []string{"gw-a", "gw-b"}, cut: "stopped", updates: 1, wantQuick: true},
		{name: "a reset fences nobody", ack: 300 * time.Millisecond, serving: []string{"gw-a", "gw-b", "gw-c"},
			cut: "stopped", reset: true, updates: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store, gws := newCluster(t, "gw-a", "gw-b", "gw-c")
			ctx := context.Background()
			f := &fencer{fail: tc.fenceFail}
			a := gws[0]
			a.hub.opts.AckTimeout = tc.ack
			if !tc.noFencer {
				a.hub.opts.Fence = f.fence
			}
			var reports []FenceReport
			a.hub.opts.OnFence = func(_ context.Context, r FenceReport) { reports = append(reports, r) }
			serve(gws, tc.serving...)
			sa := a.open(t)
			gws[1].open(t)
			gws[2].open(t)
			switch tc.cut {
			case "stopped":
				gws[2].stop()
			case "gone":
				gws[2].stop()
				if _, err := gws[2].cli.Revoke(ctx, gws[2].lease); err != nil {
					t.Fatal(err)
				}
			}
			start := time.Now()
			var err error
			for i := range tc.updates {
				if tc.reset {
					err = sa.Reset(ctx)
				} else {
					err = sa.Update(ctx, register(uint64(i+1), "init"))
				}
				if err != nil {
					break
				}
			}
			took := time.Since(start)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("update: %v; want %v", err, tc.wantErr)
			}
			var want []string
			for _, name := range tc.wantFenced {
				want = append(want, "10.0.0.1:0/"+name)
			}
			if got := f.fenced(); !slices.Equal(got, want) {
				t.Fatalf("fenced %v; want %v", got, want)
			}
			if tc.fenceFail != nil && (len(reports) != 1 || !errors.Is(reports[0].Err, tc.fenceFail)) {
				t.Fatalf("fencing reports %+v", reports)
			}
			if tc.wantQuick && took > longAck/2 {
				t.Fatalf("took %v; the change should not wait for the timeout", took)
			}
			// Committed in every case: the state is in etcd.
			if data, _, err := store.GetPR(ctx, disk); err != nil || len(data) == 0 {
				t.Fatalf("stored state: %q %v", data, err)
			}
			t.Logf("%d changes in %v", tc.updates, took)
		})
	}
}

// preempt is a change with effects: the registration of "x" goes, and
// its nexus through gw-b gets REGISTRATIONS PREEMPTED and loses its tasks.
func preempt(key uint64) func(*pr.State) (pr.Effects, error) {
	x := pr.Port{InitiatorPort: "x", TargetPort: "t,gw-b"}
	return func(st *pr.State) (pr.Effects, error) {
		st.Generation++
		st.Registrations = append(st.Registrations, pr.Registration{Key: key, Port: pr.Port{InitiatorPort: "y"}})
		return pr.Effects{
			UAs:          []pr.UnitAttention{{InitiatorPort: x.InitiatorPort, TargetPort: x.TargetPort, ASC: 0x2a, ASCQ: byte(key)}},
			AbortNexuses: []pr.Port{x},
			AbortTasksOf: []string{x.InitiatorPort},
		}, nil
	}
}

func TestEffectsAppliedEverywhereBeforeTheChangeCompletes(t *testing.T) {
	_, gws := newCluster(t, "gw-a", "gw-b")
	ctx := context.Background()
	for _, g := range gws {
		g.hub.opts.AckTimeout = longAck
	}
	serve(gws, "gw-a", "gw-b")
	// gw-b's aborted task takes a while to finish; the change must wait
	// for it. Each gateway records what it applied.
	var mu sync.Mutex
	applied := map[string][]uint8{}
	for _, g := range gws {
		g.hub.opts.OnPeerChange = func(d string, eff pr.Effects) {
			if d != disk || len(eff.AbortNexuses) != 1 || len(eff.UAs) != 1 {
				t.Errorf("%s applies %s %+v", g.name, d, eff)
				return
			}
			time.Sleep(200 * time.Millisecond)
			mu.Lock()
			applied[g.name] = append(applied[g.name], eff.UAs[0].ASCQ)
			mu.Unlock()
		}
	}
	a := gws[0].open(t)
	gws[1].open(t)
	for key := uint64(1); key <= 3; key++ {
		if err := a.UpdateEffects(ctx, preempt(key)); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		got := slices.Clone(applied["gw-b"])
		mu.Unlock()
		if len(got) != int(key) || got[key-1] != uint8(key) {
			t.Fatalf("after change %d gw-b applied %v", key, got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(applied["gw-a"]) != 0 {
		t.Fatalf("gw-a applied its own effects again: %v", applied["gw-a"])
	}
	// A change without effects records none.
	if err := a.UpdateEffects(ctx, func(st *pr.State) (pr.Effects, error) { st.Generation++; return pr.Effects{}, nil }); err != nil {
		t.Fatal(err)
	}
	if st := a.cur.Load(); st.rec.Seq != 3 || len(st.rec.Changes) != 3 {
		t.Fatalf("record seq %d with %d changes", st.rec.Seq, len(st.rec.Changes))
	}
}

func TestEffectsOfMissedRevisionsAppliedInOrder(t *testing.T) {
	// A gateway that sees only the newest revision (its watch was slow,
	// or it reloaded) still applies every change's effects, once, in
	// order, as long as the record keeps them.
	var got []uint8
	hub := &Hub{log: quiet, opts: Options{Gateway: "gw-b",
		OnPeerChange: func(_ string, eff pr.Effects) { got = append(got, eff.UAs[0].ASCQ) }}}
	s := &Store{hub: hub, disk: disk}
	initial, _ := decode(nil)
	s.cur.Store(&snapshot{rev: -1, rec: initial})
	rec := initial
	s.observe(5, rec, true) // first load: nothing to apply
	for key := uint64(1); key <= 12; key++ {
		eff, _ := preempt(key)(rec.State.Clone())
		by := "gw-a"
		if key == 2 {
			by = "gw-b" // its own change: applied when it was made
		}
		rec = rec.withChange(by, eff)
		if key == 1 || key == 3 || key == 12 {
			s.observe(int64(10+key), rec, true)
		}
	}
	s.observe(22, rec, true) // the same revision again changes nothing
	want := []uint8{1, 3, 5, 6, 7, 8, 9, 10, 11, 12}
	if !slices.Equal(got, want) {
		t.Fatalf("applied %v; want %v (changes 4 fell out of the record's history)", got, want)
	}
	if len(rec.Changes) != keepChanges {
		t.Fatalf("record keeps %d changes", len(rec.Changes))
	}
}
