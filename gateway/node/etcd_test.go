package node

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/internal/clustertest"
	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
	"github.com/rbdgw/rbdgw/gateway/internal/peer"
	"github.com/rbdgw/rbdgw/gateway/stats"
)

// endpoint is the test etcd server's, empty when etcd is not installed.
var endpoint string

func TestMain(m *testing.M) {
	clustertest.MainWithEtcd(m, "node", func(e *clustertest.Etcd) {
		if e != nil {
			endpoint = e.Endpoint()
		}
	})
}

// setup returns a client and a cluster prefix of the test's own.
func setup(t *testing.T) (*clientv3.Client, string) {
	t.Helper()
	// Unique per run, so that -count=N does not meet an earlier run's keys.
	return dial(t), "/" + strings.ReplaceAll(t.Name(), "/", "_") + "-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "/"
}

func dial(t *testing.T) *clientv3.Client {
	t.Helper()
	if endpoint == "" {
		t.Skip("etcd not available")
	}
	cli, err := cluster.Dial(cluster.ClientConfig{Endpoints: []string{endpoint}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// defineGateways puts gateways gw-a, gw-b, ... with one loopback portal
// each.
func defineGateways(t *testing.T, store *cluster.Store, names ...string) int64 {
	t.Helper()
	var ops []cluster.Op
	for i, name := range names {
		ops = append(ops, cluster.PutGateway(cluster.Gateway{Name: name, Portals: []string{"127.0.0." + strconv.Itoa(i+1) + ":3260"}}))
	}
	rev, err := store.Apply(context.Background(), ops...)
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// fakeGateway is a gateway's registration and status record, without the
// gateway: what Run writes, written by hand.
type fakeGateway struct {
	t     *testing.T
	reg   *cluster.Registration
	peers *peer.Directory
}

// register makes name live through cli with the given TTL and publishes
// its record with a status that applied revision applied.
func register(t *testing.T, cli *clientv3.Client, prefix, name string, ttl time.Duration, applied int64) *fakeGateway {
	t.Helper()
	ctx := context.Background()
	store, err := cluster.New(cli, cluster.Options{Prefix: prefix, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := store.Register(ctx, name, ttl)
	if err != nil {
		t.Fatal(err)
	}
	g := &fakeGateway{t: t, reg: reg, peers: peer.New(cli, prefix, name, quiet)}
	g.publish(applied)
	if err := g.peers.Publish(ctx, reg.Lease()); err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *fakeGateway) publish(applied int64) {
	g.t.Helper()
	doc, err := json.Marshal(Published{Version: "1.0", Applied: AppliedConfig{Revision: applied, Complete: true},
		Sessions: []Session{{Initiator: "iqn.2024-01.io.test:host"}}})
	if err != nil {
		g.t.Fatal(err)
	}
	if err := g.peers.SetStatus(context.Background(), doc); err != nil {
		g.t.Fatal(err)
	}
}

func TestReadClusterReportsGatewayDownAfterLeaseEnds(t *testing.T) {
	cli, prefix := setup(t)
	ctx := context.Background()
	store, err := cluster.New(cli, cluster.Options{Prefix: prefix, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	rev := defineGateways(t, store, "gw-a", "gw-b")
	// gw-a's process: its own client, so that closing it stops the
	// keepalives without revoking the lease.
	acli := dial(t)
	register(t, acli, prefix, "gw-a", time.Second, rev)

	list, _, err := ReadCluster(ctx, cli, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "gw-a" || !list[0].Live || !list[0].Configured ||
		list[0].Published == nil || list[0].Published.Applied.Revision != rev || len(list[0].Published.Sessions) != 1 {
		t.Fatalf("gw-a live: %+v", list)
	}
	if b := list[1]; b.Name != "gw-b" || b.Live || !b.Configured || b.Published != nil {
		t.Fatalf("gw-b never started: %+v", b)
	}

	acli.Close() // gw-a dies: its lease expires
	deadline := time.Now().Add(15 * time.Second)
	for {
		list, at, err := ReadCluster(ctx, cli, prefix)
		if err != nil {
			t.Fatalf("a gateway that is down is not an error: %v", err)
		}
		if a := list[0]; !a.Live {
			if a.Published != nil || !a.Configured || at <= rev {
				t.Fatalf("gw-a down: %+v at %d", a, at)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("gw-a still live 15 s after its client went away")
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A live gateway without a configuration record is listed too.
	register(t, cli, prefix, "gw-x", 30*time.Second, 0)
	list, _, err = ReadCluster(ctx, cli, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 || list[2].Name != "gw-x" || list[2].Configured || !list[2].Live {
		t.Fatalf("unconfigured live gateway: %+v", list)
	}
}

func TestWaitApplied(t *testing.T) {
	cli, prefix := setup(t)
	ctx := context.Background()
	store, err := cluster.New(cli, cluster.Options{Prefix: prefix, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	rev := defineGateways(t, store, "gw-a", "gw-b", "gw-c")
	a := register(t, cli, prefix, "gw-a", 30*time.Second, rev)
	b := register(t, cli, prefix, "gw-b", 30*time.Second, rev)
	all := []string{"gw-a", "gw-b", "gw-c"} // gw-c is down

	// Already applied: no waiting.
	pending, down, err := WaitApplied(ctx, cli, prefix, rev, all)
	if err != nil || len(pending) != 0 || !slices.Equal(down, []string{"gw-c"}) {
		t.Fatalf("applied already: pending %v down %v err %v", pending, down, err)
	}

	// Both reach the new revision during the wait.
	next := rev + 10
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	type result struct {
		pending, down []string
		err           error
		took          time.Duration
	}
	done := make(chan result, 1)
	wait := func(ctx context.Context) {
		start := time.Now()
		p, d, err := WaitApplied(ctx, cli, prefix, next, all)
		done <- result{p, d, err, time.Since(start)}
	}
	go wait(wctx)
	time.Sleep(100 * time.Millisecond)
	a.publish(next)
	time.Sleep(100 * time.Millisecond)
	b.publish(next + 1)
	r := <-done
	if r.err != nil || len(r.pending) != 0 || !slices.Equal(r.down, []string{"gw-c"}) || r.took > 5*time.Second {
		t.Fatalf("reached: %+v", r)
	}

	// gw-b never applies: pending at the deadline.
	next += 10
	wctx, cancel = context.WithTimeout(ctx, time.Second)
	defer cancel()
	go wait(wctx)
	time.Sleep(100 * time.Millisecond)
	a.publish(next)
	r = <-done
	if !errors.Is(r.err, context.DeadlineExceeded) || !slices.Equal(r.pending, []string{"gw-b"}) || !slices.Equal(r.down, []string{"gw-c"}) {
		t.Fatalf("deadline: %+v", r)
	}

	// gw-b dies during the wait: down, not pending, and the wait ends.
	wctx, cancel = context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	go wait(wctx)
	time.Sleep(100 * time.Millisecond)
	if err := b.reg.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r = <-done
	if r.err != nil || len(r.pending) != 0 || !slices.Equal(r.down, []string{"gw-b", "gw-c"}) {
		t.Fatalf("laggard died: %+v", r)
	}
}

// TestNodeRun runs a real node against etcd with memory disks: it waits
// for its definition, applies the configuration, serves an initiator,
// publishes its status for the others and leaves the cluster when
// stopped.
func TestNodeRun(t *testing.T) {
	cli, prefix := setup(t)
	ctx := context.Background()
	store, err := cluster.New(cli, cluster.Options{Prefix: prefix, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	port, err := clustertest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	portal := "127.0.0.1:" + strconv.Itoa(port)
	const iqn, ini = "iqn.2024-01.io.test:t1", "iqn.2024-01.io.test:host1"

	backends := &memBackends{}
	n := newTestNode(t, Options{Endpoints: []string{endpoint}, Prefix: prefix, Gateway: "gw-a",
		LeaseTTL: 2 * time.Second, APIURL: "http://127.0.0.1:5000", Backends: backends})
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	ran := make(chan error, 1)
	go func() { ran <- n.Run(rctx) }()
	select {
	case <-n.Ready():
	case err := <-ran:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not ready")
	}
	if n.Store() == nil || n.Client() == nil {
		t.Fatal("no store or client once ready")
	}
	// Connected, not defined yet: no lease, nothing applied.
	if s := n.Status(); s.Etcd.LeaseHeld || s.Applied.Revision != 0 {
		t.Fatalf("before the definition: %+v", s)
	}

	rev, err := store.Apply(ctx,
		cluster.PutGateway(cluster.Gateway{Name: "gw-a", Portals: []string{portal}}),
		cluster.PutGateway(cluster.Gateway{Name: "gw-b", Portals: []string{"127.0.0.2:3260"}}),
		cluster.PutDisk(cluster.Disk{Pool: "rbd", Image: "d0", Size: 1 << 20}),
		cluster.PutTarget(cluster.Target{IQN: iqn, Gateways: []string{"gw-a", "gw-b"}, AllowAnyInitiator: true}),
		cluster.PutLUN(cluster.LUN{Target: iqn, ID: 0, Disk: "rbd/d0"}))
	if err != nil {
		t.Fatal(err)
	}
	// Defined, it registers; a gateway that is not live yet is down for
	// WaitApplied.
	deadline := time.Now().Add(15 * time.Second)
	for !n.Status().Etcd.LeaseHeld {
		if time.Now().After(deadline) {
			t.Fatal("gw-a did not register")
		}
		time.Sleep(20 * time.Millisecond)
	}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if pending, down, err := WaitApplied(wctx, cli, prefix, rev, []string{"gw-a"}); err != nil || len(pending)+len(down) != 0 {
		t.Fatalf("gw-a did not apply %d: %v %v %v (status %+v)", rev, pending, down, err, n.Status())
	}
	s := n.Status()
	if s.Applied.Revision < rev || !s.Applied.Complete || !s.Etcd.Connected || !s.Etcd.LeaseHeld ||
		!slices.Equal(s.Portals, []string{portal}) || !slices.Contains(s.LiveGateways, "gw-a") ||
		len(s.Disks) != 1 || s.Disks[0].Disk != "rbd/d0" {
		t.Fatalf("applied: %+v", s)
	}

	in, err := iscsitest.Dial(portal)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	in.Timeout = 5 * time.Second
	if err := in.Login(iscsitest.LoginOptions{InitiatorName: ini, TargetName: iqn}); err != nil {
		t.Fatal(err)
	}
	if ss := n.Status().Sessions; len(ss) != 1 || ss[0].Initiator != ini || ss[0].Portal != portal || !slices.Equal(ss[0].LUNs, []uint64{0}) {
		t.Fatalf("sessions %+v", ss)
	}
	// The session reaches the published record within about a second.
	deadline = time.Now().Add(10 * time.Second)
	for {
		list, _, err := ReadCluster(ctx, cli, prefix)
		if err != nil {
			t.Fatal(err)
		}
		a := list[0]
		if p := a.Published; a.Live && p != nil && len(p.Sessions) == 1 {
			if p.APIURL != "http://127.0.0.1:5000" || p.Version != "9.9-test" || p.Applied.Revision < rev ||
				p.Sessions[0].Initiator != ini || p.UpdatedAt.IsZero() || !p.Started.Equal(s.Started) {
				t.Fatalf("published %+v", p)
			}
			if list[1].Name != "gw-b" || list[1].Live {
				t.Fatalf("gw-b: %+v", list[1])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("session not published: %+v", a)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Its counters are published, bound to its lease (package stats).
	deadline = time.Now().Add(10 * time.Second)
	for {
		ws, err := stats.Read(ctx, cli, prefix, 5*time.Second, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if w, ok := ws["gw-a"]; ok && len(w.Cur.LUNs) == 1 {
			if l := w.Cur.LUNs[0]; l.Target != iqn || l.LUN != 0 || l.Disk != "rbd/d0" || l.ALUA == "" || w.Cur.Start.IsZero() {
				t.Fatalf("published counters: %+v", w.Cur)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("counters not published: %+v", ws)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A change is applied and confirmed.
	rev, err = store.Apply(ctx, cluster.PutDisk(cluster.Disk{Pool: "rbd", Image: "d1", Size: 1 << 20}),
		cluster.PutLUN(cluster.LUN{Target: iqn, ID: 1, Disk: "rbd/d1"}))
	if err != nil {
		t.Fatal(err)
	}
	if pending, down, err := WaitApplied(wctx, cli, prefix, rev, []string{"gw-a", "gw-b"}); err != nil ||
		len(pending) != 0 || !slices.Equal(down, []string{"gw-b"}) {
		t.Fatalf("second change: pending %v down %v err %v", pending, down, err)
	}

	in.Close()
	stop()
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
	// It left the cluster at once (lease revoked), not after the TTL.
	list, _, err := ReadCluster(ctx, cli, prefix)
	if err != nil || list[0].Live {
		t.Fatalf("after stop: %+v %v", list, err)
	}
	if ws, err := stats.Read(ctx, cli, prefix, 5*time.Second, time.Now()); err != nil || len(ws) != 0 {
		t.Fatalf("counters after stop: %+v %v", ws, err)
	}
	backends.mu.Lock()
	defer backends.mu.Unlock()
	if !backends.closed || !slices.Contains(backends.opened, "rbd/d1") {
		t.Fatalf("backends: %+v", backends)
	}
}
