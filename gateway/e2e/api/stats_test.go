package api_test

import (
	"context"
	"math"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rbdgw/rbdgw/api"
	"github.com/rbdgw/rbdgw/api/model"
	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/metrics"
	"github.com/rbdgw/rbdgw/gateway/stats"
)

// synthetic publishes the counters of a gateway that has served its LUNs
// at fixed rates for the last 30 s, the way a gateway does (one record
// every stats.Interval, bound to a lease), and returns the lease.
type synthetic struct {
	gateway string
	// per LUN id: reads and writes per second, 4 KiB each, 1 ms.
	reads, writes map[uint64]float64
	alua          map[uint64]string
	inFlight      int64
}

func (e *env) publish(s synthetic) clientv3.LeaseID {
	e.t.Helper()
	ctx := context.Background()
	lease, err := etcdCli.Grant(ctx, 30)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _, _ = etcdCli.Revoke(context.Background(), lease.ID) })
	pub := stats.NewPublisher(etcdCli, e.store.Prefix(), s.gateway)
	now := time.Now().UTC()
	start := now.Add(-time.Hour)
	ms := metrics.BucketBounds()[6] // 1 ms
	for i := 15; i >= 0; i-- {
		at := now.Add(-time.Duration(i) * stats.Interval)
		secs := at.Sub(start).Seconds()
		snap := metrics.Snapshot{Gateway: s.gateway, Start: start, Time: at}
		for _, id := range []uint64{0, 1} {
			var c metrics.Counters
			c.Read.Commands = uint64(math.Round(s.reads[id] * secs))
			c.Write.Commands = uint64(math.Round(s.writes[id] * secs))
			c.ReadBytes, c.WrittenBytes = 4096*c.Read.Commands, 4096*c.Write.Commands
			c.Read.Latency.Buckets[6], c.Read.Latency.Sum = c.Read.Commands, time.Duration(c.Read.Commands)*ms
			c.Write.Latency.Buckets[6], c.Write.Latency.Sum = c.Write.Commands, time.Duration(c.Write.Commands)*ms
			c.InFlight = s.inFlight
			disk := "rbd/d1"
			if id == 1 {
				disk = "rbd/d2"
			}
			snap.LUNs = append(snap.LUNs, metrics.LUNSnapshot{LUNInfo: metrics.LUNInfo{Target: tgt, LUN: id, Disk: disk},
				Since: start, ALUAState: s.alua[id], Counters: c})
			snap.Totals = snap.Totals.Add(c)
		}
		if _, err := pub.Publish(ctx, stats.FromSnapshot(snap), lease.ID); err != nil {
			e.t.Fatal(err)
		}
	}
	return lease.ID
}

// liveReg registers gateway as live and returns the registration.
func (e *env) liveReg(gateway string) *cluster.Registration {
	e.t.Helper()
	reg, err := e.store.Register(context.Background(), gateway, 10*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = reg.Close(context.Background()) })
	return reg
}

func within(got, want, tol float64) bool { return math.Abs(got-want) <= tol*math.Max(want, 1e-9) }

func TestStats(t *testing.T) {
	e := newEnv(t)
	e.base()
	e.must(200, "PUT", "/gateways/gw-c", model.GatewayPut{Portals: []string{"127.0.0.1:3262"}})
	e.live("gw-a")
	e.live("gw-c") // live, publishes nothing
	e.publish(synthetic{gateway: "gw-a",
		reads: map[uint64]float64{0: 100}, writes: map[uint64]float64{1: 50},
		alua: map[uint64]string{0: "active_optimized", 1: "active_non_optimized"}, inFlight: 3})

	var st model.Stats
	e.must(200, "GET", "/luns/stats?window=10s", nil).decode(t, &st)
	if st.Window != 10 || len(st.LUNs) != 2 || len(st.Gateways) != 3 {
		t.Fatalf("stats: %+v", st)
	}
	l0, l1 := st.LUNs[0], st.LUNs[1]
	if l0.Target != tgt || l0.LUN != 0 || l0.Disk != "rbd/d1" || l0.Gateway != "gw-a" || l0.ALUAState != "active_optimized" ||
		!within(l0.ReadIOPS, 100, 0.01) || l0.WriteIOPS != 0 || !within(l0.ReadMBps, 0.4096, 0.01) || l0.QueueDepth != 3 ||
		l0.Window < 10 || l0.Window > 12 || l0.P50Ms < 0.5 || l0.P50Ms > 1 || l0.P99Ms < l0.P50Ms || l0.P99Ms > 1 {
		t.Fatalf("LUN 0: %+v", l0)
	}
	if l1.LUN != 1 || l1.ALUAState != "active_non_optimized" || !within(l1.WriteIOPS, 50, 0.01) || !within(l1.WriteMBps, 0.2048, 0.01) {
		t.Fatalf("LUN 1: %+v", l1)
	}
	states := map[string]string{}
	for _, g := range st.Gateways {
		states[g.Name] = g.State
		if g.Name == "gw-a" && (g.Totals == nil || !within(g.Totals.IOPS, 150, 0.01) || g.Updated == nil) {
			t.Fatalf("gw-a totals: %+v", g)
		}
	}
	if states["gw-a"] != model.StatsUp || states["gw-b"] != model.StatsDown || states["gw-c"] != model.StatsNone ||
		len(st.Down) != 1 || st.Down[0] != "gw-b" {
		t.Fatalf("gateways: %+v down %v", st.Gateways, st.Down)
	}

	// Windows the history still holds; the default is 5 s.
	for _, w := range []string{"", "?window=2s", "?window=25", "?window=1m"} {
		e.must(200, "GET", "/luns/stats"+w, nil).decode(t, &st)
		if len(st.LUNs) != 2 || !within(st.LUNs[0].ReadIOPS, 100, 0.02) {
			t.Fatalf("window %q: %+v", w, st.LUNs)
		}
	}
	if st.LUNs[0].Window > 32 {
		t.Fatalf("a 1m window over 30 s of history spans %v s", st.LUNs[0].Window)
	}
	for _, w := range []string{"soon", "0s", "10m", "-5s", "NaN"} {
		if r := e.do(api.RoleViewer, "GET", "/luns/stats?window="+w, nil); r.status != 400 || r.err().Code != model.CodeInvalid {
			t.Fatalf("window %s: %d %s", w, r.status, r.body)
		}
	}

	// Per target and per gateway.
	e.must(200, "GET", "/targets/"+tgt+"/stats?window=10s", nil).decode(t, &st)
	if len(st.LUNs) != 2 || len(st.Gateways) != 2 || len(st.Down) != 1 {
		t.Fatalf("target stats: %+v", st)
	}
	e.must(404, "GET", "/targets/iqn.2024-01.io.rbdgw:nope/stats", nil)
	e.must(200, "GET", "/gateways/gw-a/stats", nil).decode(t, &st)
	if len(st.LUNs) != 2 || len(st.Gateways) != 1 || st.Gateways[0].State != model.StatsUp || len(st.Down) != 0 {
		t.Fatalf("gw-a stats: %+v", st)
	}
	e.must(200, "GET", "/gateways/gw-b/stats", nil).decode(t, &st)
	if len(st.LUNs) != 0 || st.Gateways[0].State != model.StatsDown || len(st.Down) != 1 {
		t.Fatalf("gw-b stats: %+v", st)
	}
	e.must(404, "GET", "/gateways/gw-nope/stats", nil)

	// A second gateway: each LUN has a row per gateway.
	lease := e.publish(synthetic{gateway: "gw-b", reads: map[uint64]float64{1: 20},
		alua: map[uint64]string{0: "active_non_optimized", 1: "active_optimized"}})
	reg := e.liveReg("gw-b")
	e.must(200, "GET", "/luns/stats", nil).decode(t, &st)
	if len(st.LUNs) != 4 || st.LUNs[3].Gateway != "gw-b" || st.LUNs[3].LUN != 1 || !within(st.LUNs[3].ReadIOPS, 20, 0.02) {
		t.Fatalf("two gateways: %+v", st.LUNs)
	}
	// It goes down: its record goes with its lease, and it is down, never
	// an error.
	if _, err := etcdCli.Revoke(context.Background(), lease); err != nil {
		t.Fatal(err)
	}
	_ = reg.Close(context.Background())
	e.must(200, "GET", "/luns/stats", nil).decode(t, &st)
	if len(st.LUNs) != 2 || len(st.Down) != 1 || st.Down[0] != "gw-b" {
		t.Fatalf("gw-b down again: %+v", st)
	}
	// Viewers read statistics; no token, no statistics.
	if r := e.do(0, "GET", "/luns/stats", nil); r.status != 401 {
		t.Fatalf("no token: %d", r.status)
	}
}
