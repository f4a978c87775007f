package stats

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rbdgw/rbdgw/gateway/internal/clustertest"
	"github.com/rbdgw/rbdgw/gateway/metrics"
)

var endpoint string

func TestMain(m *testing.M) {
	clustertest.MainWithEtcd(m, "stats", func(e *clustertest.Etcd) {
		if e != nil {
			endpoint = e.Endpoint()
		}
	})
}

func client(t *testing.T) (*clientv3.Client, string) {
	t.Helper()
	if endpoint == "" {
		t.Skip("no etcd")
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli, fmt.Sprintf("/stats-%s-%d/", t.Name(), time.Now().UnixNano())
}

// hist puts n observations of about d in a histogram.
func hist(n uint64, d time.Duration) Hist {
	var h metrics.Histogram
	bounds := metrics.BucketBounds()
	i := 0
	for i < len(bounds) && bounds[i] < d {
		i++
	}
	h.Buckets[i] = n
	h.Sum = time.Duration(n) * d
	return Hist(h)
}

// counters of a LUN that did reads and writes at 1 ms each.
func counters(reads, writes uint64) Counters {
	return Counters{
		Commands:     [numClasses]uint64{reads, writes, 0, 2},
		ReadBytes:    reads * 4096,
		WrittenBytes: writes * 4096,
		ReadLatency:  hist(reads, 900*time.Microsecond),
		WriteLatency: hist(writes, 900*time.Microsecond),
		BackendTime:  time.Duration(reads+writes) * 500 * time.Microsecond,
		BackendCount: reads + writes,
	}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-6*max(1, math.Abs(b)) }

func TestBetween(t *testing.T) {
	prev, cur := counters(100, 50), counters(1100, 2050)
	cur.InFlight = 7
	cur.Errors = 20
	r := Between(prev, cur, 10*time.Second)
	if !near(r.ReadIOPS, 100) || !near(r.WriteIOPS, 200) || !near(r.IOPS, 300) || r.QueueDepth != 7 ||
		!near(r.ReadBytesPS, 100*4096) || !near(r.WrittenBytesPS, 200*4096) || !near(r.ErrorsPS, 2) {
		t.Fatalf("rates: %+v", r)
	}
	if r.P50 < 500*time.Microsecond || r.P50 > time.Millisecond || r.P99 < r.P50 || r.P99 > time.Millisecond {
		t.Fatalf("percentiles: p50 %v p99 %v", r.P50, r.P99)
	}
	if r.BackendMean != 500*time.Microsecond {
		t.Fatalf("backend mean %v", r.BackendMean)
	}
	// Counters that went down started again: the window counts from zero.
	if r := Between(counters(5000, 0), counters(300, 0), 10*time.Second); !near(r.ReadIOPS, 30) {
		t.Fatalf("after a reset: %+v", r)
	}
	if r := Between(prev, cur, 0); r.IOPS != 0 || r.QueueDepth != 7 {
		t.Fatalf("no window: %+v", r)
	}
}

func TestWindowRates(t *testing.T) {
	start := time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)
	t0, t1 := start.Add(time.Minute), start.Add(time.Minute+10*time.Second)
	lun := func(id uint64, since time.Time, c Counters) LUN {
		return LUN{Target: "iqn.t", LUN: id, Disk: fmt.Sprintf("rbd/d%d", id), ALUA: "active_optimized", Since: since, Counters: c}
	}
	base := &Record{Time: t0, Start: start, Totals: counters(1000, 1000), LUNs: []LUN{
		lun(0, start, counters(1000, 0)),
		lun(1, start, counters(0, 1000)),
	}}
	remapped := t0.Add(5 * time.Second)
	cur := Record{Time: t1, Start: start, Totals: counters(3000, 2000), LUNs: []LUN{
		lun(0, start, counters(3000, 0)),
		lun(1, remapped, counters(0, 500)),              // another disk mapped at 1: from its Since
		lun(2, t0.Add(8*time.Second), counters(0, 400)), // mapped within the window
		lun(3, start.Add(-time.Hour), counters(10, 10)), // absent from the base (truncated): unknown
	}}
	cur.LUNs[1].Disk = "rbd/other"
	w := Window{Cur: cur, AsOf: t1, Base: base}
	if g := w.GatewayRates(); !near(g.ReadIOPS, 200) || !near(g.WriteIOPS, 100) || g.Window != 10*time.Second {
		t.Fatalf("gateway: %+v", g)
	}
	rs := w.LUNRates()
	if !near(rs[0].ReadIOPS, 200) || rs[0].Window != 10*time.Second {
		t.Errorf("LUN 0: %+v", rs[0])
	}
	if !near(rs[1].WriteIOPS, 100) || rs[1].Window != 5*time.Second {
		t.Errorf("remapped LUN 1: %+v", rs[1])
	}
	if !near(rs[2].WriteIOPS, 200) || rs[2].Window != 2*time.Second {
		t.Errorf("new LUN 2: %+v", rs[2])
	}
	if rs[3].IOPS != 0 || rs[3].Window != 0 {
		t.Errorf("LUN 3 missing from the base: %+v", rs[3])
	}
	// Without a base the counters started within the window.
	w = Window{Cur: cur, AsOf: t1}
	if g := w.GatewayRates(); g.Window != 70*time.Second || !near(g.ReadIOPS, 3000/70.0) {
		t.Fatalf("gateway from its start: %+v", g)
	}
	// History compacted away: rates unknown, the queue depth still shown.
	cur.Totals.InFlight = 3
	w = Window{Cur: cur, AsOf: t1, Unavailable: true}
	if g := w.GatewayRates(); g.Window != 0 || g.IOPS != 0 || g.QueueDepth != 3 {
		t.Fatalf("unavailable: %+v", g)
	}
}

func TestThin(t *testing.T) {
	now := time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)
	var h []Mark
	// Ten minutes of records every two seconds.
	for i := 300; i >= 1; i-- {
		h = append(h, Mark{Rev: int64(1000 - i), Time: now.Add(-time.Duration(i) * 2 * time.Second)})
	}
	h = thin(h, now)
	if len(h) > maxMarks {
		t.Fatalf("%d marks", len(h))
	}
	oldest := now.Sub(h[0].Time)
	if oldest < MaxWindow+Refresh || oldest > MaxWindow+Refresh+historySlot {
		t.Fatalf("oldest mark %v old", oldest)
	}
	recent := 0
	for i, m := range h {
		if i > 0 && !m.Time.After(h[i-1].Time) {
			t.Fatalf("marks out of order at %d", i)
		}
		if i > 0 && m.Time.Sub(h[i-1].Time) > 2*historySlot {
			t.Fatalf("gap of %v before mark %d", m.Time.Sub(h[i-1].Time), i)
		}
		if now.Sub(m.Time) <= keepAll {
			recent++
		}
	}
	if recent != 15 {
		t.Fatalf("%d marks in the last %v, want every one (15)", recent, keepAll)
	}
	// Thinning again later keeps the marks kept.
	again := thin(append([]Mark(nil), h...), now.Add(2*time.Second))
	if len(again) < len(h)-2 {
		t.Fatalf("rethinning dropped %d of %d marks", len(h)-len(again), len(h))
	}
}

func TestMarkJSON(t *testing.T) {
	m := Mark{Rev: 42, Time: time.UnixMilli(1700000000123).UTC()}
	b, err := json.Marshal(m)
	if err != nil || string(b) != "[42,1700000000123]" {
		t.Fatalf("%s %v", b, err)
	}
	var back Mark
	if err := json.Unmarshal(b, &back); err != nil || back != m {
		t.Fatalf("%+v %v", back, err)
	}
}

func TestHistJSON(t *testing.T) {
	for _, h := range []Hist{{}, hist(5, time.Millisecond), hist(7, time.Hour), hist(3, time.Microsecond)} {
		b, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		var back Hist
		if err := json.Unmarshal(b, &back); err != nil || back != h {
			t.Fatalf("%s: %+v %v", b, back, err)
		}
	}
	h := hist(5, time.Millisecond)
	h.Buckets[8] = 2
	if b, _ := json.Marshal(h); string(b) != "[5000000,6,5,0,2]" {
		t.Fatalf("encoded as %s", b)
	}
	var back Hist
	for _, bad := range []string{"[]", "[1]", "[1,18]", "[1,16,1,2]", `"x"`} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("%s decoded", bad)
		}
	}
}

func TestFromSnapshot(t *testing.T) {
	now := time.Now()
	var c metrics.Counters
	c.Read.Commands, c.Write.Commands, c.Other.Commands = 10, 20, 3
	c.Read.Latency, c.Write.Latency = metrics.Histogram(hist(10, time.Millisecond)), metrics.Histogram(hist(20, 2*time.Millisecond))
	c.Read.Backend, c.Write.Backend = metrics.Histogram(hist(10, 500*time.Microsecond)), metrics.Histogram(hist(20, time.Millisecond))
	c.SenseKeys[3] = 2
	c.InFlight = 4
	snap := metrics.Snapshot{Gateway: "gw-a", Start: now.Add(-time.Hour), Time: now, Totals: c}
	for i := range MaxLUNs + 5 {
		snap.LUNs = append(snap.LUNs, metrics.LUNSnapshot{LUNInfo: metrics.LUNInfo{Target: "iqn.t", LUN: uint64(i), Disk: "rbd/x"},
			ALUAState: "active_non_optimized", Since: now.Add(-time.Minute), Counters: c})
	}
	r := FromSnapshot(snap)
	if len(r.LUNs) != MaxLUNs || !r.LUNsTruncated {
		t.Fatalf("%d LUNs, truncated %v", len(r.LUNs), r.LUNsTruncated)
	}
	l := r.LUNs[7]
	if l.Commands != [numClasses]uint64{10, 20, 0, 3} || l.Errors != 2 || l.InFlight != 4 || l.ALUA != "active_non_optimized" ||
		l.BackendCount != 30 || l.BackendTime != 10*500*time.Microsecond+20*time.Millisecond || l.LUN != 7 {
		t.Fatalf("LUN: %+v", l)
	}
	body, _ := json.Marshal(FromSnapshot(metrics.Snapshot{Gateway: "gw-a", Time: now, LUNs: snap.LUNs[:1]}))
	if len(body) > 700 {
		t.Fatalf("a record with one LUN takes %d bytes:\n%s", len(body), body)
	}
	t.Logf("record with one LUN: %d bytes", len(body))
}

// A publisher writes changed counters, skips unchanged ones until Refresh,
// and a reader finds the record a window back through the history index.
func TestPublishAndRead(t *testing.T) {
	cli, prefix := client(t)
	ctx := context.Background()
	lease, err := cli.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	pub := NewPublisher(cli, prefix, "gw-a")
	t0 := time.Now().Add(-40 * time.Second).UTC().Truncate(time.Millisecond)
	rec := func(i int, reads uint64) Record {
		return Record{Gateway: "gw-a", Time: t0.Add(time.Duration(i) * 2 * time.Second), Start: start, Interval: Interval,
			Totals: counters(reads, 0), LUNs: []LUN{{Target: "iqn.t", LUN: 0, Disk: "rbd/d", ALUA: "active_optimized", Since: start, Counters: counters(reads, 0)}}}
	}
	// 100 reads per second for 40 s.
	for i := 0; i <= 20; i++ {
		wrote, err := pub.Publish(ctx, rec(i, uint64(i)*200), lease.ID)
		if err != nil || !wrote {
			t.Fatalf("publish %d: %v %v", i, wrote, err)
		}
	}
	if wrote, _ := pub.Publish(ctx, rec(20, 4000), lease.ID); wrote {
		t.Fatal("unchanged counters written again")
	}
	t.Logf("record of one LUN with history: %d bytes", pub.Size())
	now := t0.Add(40 * time.Second)
	for _, window := range []time.Duration{2 * time.Second, 5 * time.Second, 30 * time.Second} {
		ws, err := Read(ctx, cli, prefix, window, now)
		if err != nil {
			t.Fatal(err)
		}
		w, ok := ws["gw-a"]
		if !ok || w.Base == nil || w.Unavailable {
			t.Fatalf("window %v: %+v", window, w)
		}
		g := w.GatewayRates()
		if g.Window < window || g.Window > window+Interval || !near(g.ReadIOPS, 100) {
			t.Fatalf("window %v: %+v", window, g)
		}
		if l := w.LUNRates()[0]; !near(l.ReadIOPS, 100) {
			t.Fatalf("window %v: LUN %+v", window, l)
		}
	}
	// A record older than a few intervals has not changed since: idle.
	later := now.Add(20 * time.Second)
	ws, err := Read(ctx, cli, prefix, 5*time.Second, later)
	if err != nil {
		t.Fatal(err)
	}
	if g := ws["gw-a"].GatewayRates(); g.IOPS != 0 || g.Window != 20*time.Second || !ws["gw-a"].AsOf.Equal(later) {
		t.Fatalf("idle: %+v as of %v", g, ws["gw-a"].AsOf)
	}
	// The record goes with the lease.
	if _, err := cli.Revoke(ctx, lease.ID); err != nil {
		t.Fatal(err)
	}
	if ws, err := Read(ctx, cli, prefix, 5*time.Second, later); err != nil || len(ws) != 0 {
		t.Fatalf("after the lease: %v %v", ws, err)
	}
}

// A gateway whose history was compacted away reports its rates as
// unavailable rather than wrong.
func TestReadCompacted(t *testing.T) {
	cli, prefix := client(t)
	ctx := context.Background()
	start := time.Now().Add(-time.Hour).UTC()
	pub := NewPublisher(cli, prefix, "gw-b")
	t0 := time.Now().Add(-20 * time.Second).UTC()
	for i := 0; i < 10; i++ {
		r := Record{Gateway: "gw-b", Time: t0.Add(time.Duration(i) * 2 * time.Second), Start: start, Totals: counters(uint64(i)*10, 0)}
		if _, err := pub.Publish(ctx, r, 0); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := cli.Get(ctx, "compact-probe")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	ws, err := Read(ctx, cli, prefix, 10*time.Second, t0.Add(18*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if w := ws["gw-b"]; !w.Unavailable || w.Base != nil {
		t.Fatalf("compacted: %+v", w)
	}
}
