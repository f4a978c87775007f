package prstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/internal/clustertest"
	"github.com/rbdgw/rbdgw/gateway/internal/peer"
	"github.com/rbdgw/rbdgw/gateway/internal/scsi/pr"
)

var etcd *clustertest.Etcd

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "prstore-etcd")
	if err != nil {
		panic(err)
	}
	etcd, err = clustertest.StartEtcd(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "prstore tests without etcd:", err)
		etcd = nil
	}
	code := m.Run()
	if etcd != nil {
		etcd.Stop()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

const disk = "rbd/lun0"

// gateway is one gateway's view: its hub on a shared etcd prefix.
type gateway struct {
	name   string
	addr   string // its Ceph client address, in clients/ and peers/
	lease  clientv3.LeaseID
	cli    *clientv3.Client
	hub    *Hub
	resets atomic.Int32
	cancel context.CancelFunc
	done   chan struct{}
}

// newCluster defines a disk and starts one hub per gateway name, each
// registered with its own lease, all under a prefix of the test's own.
func newCluster(t *testing.T, names ...string) (*cluster.Store, []*gateway) {
	t.Helper()
	if etcd == nil {
		t.Skip("etcd not available")
	}
	cli, err := cluster.Dial(cluster.ClientConfig{Endpoints: []string{etcd.Endpoint()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	// The time keeps a test run again (-count) off its earlier run's keys.
	prefix := fmt.Sprintf("/%s-%d/", strings.ReplaceAll(t.Name(), "/", "_"), time.Now().UnixNano())
	store, err := cluster.New(cli, cluster.Options{Prefix: prefix, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := store.Apply(ctx, cluster.PutDisk(cluster.Disk{Pool: "rbd", Image: "lun0", Size: 1 << 20})); err != nil {
		t.Fatal(err)
	}
	var gws []*gateway
	for _, n := range names {
		gws = append(gws, startGateway(t, store, cli, prefix, n, 2*time.Second))
	}
	return store, gws
}

func startGateway(t *testing.T, store *cluster.Store, cli *clientv3.Client, prefix, name string, ack time.Duration) *gateway {
	t.Helper()
	ctx := context.Background()
	l, err := cli.Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	addr := "10.0.0.1:0/" + name
	dir := peer.New(cli, prefix, name, quiet)
	_ = dir.SetClient(ctx, addr)
	if err := dir.Publish(ctx, l.ID); err != nil {
		t.Fatal(err)
	}
	if err := store.RecordClient(ctx, name, addr, l.ID); err != nil {
		t.Fatal(err)
	}
	g := &gateway{name: name, addr: addr, lease: l.ID, cli: cli, done: make(chan struct{})}
	g.hub = NewHub(Options{Store: store, Client: cli, Peers: dir, Gateway: name, Logger: quiet,
		AckTimeout: ack, OnPeerReset: func(string) { g.resets.Add(1) }})
	hctx, cancel := context.WithCancel(ctx)
	g.cancel = cancel
	go func() { defer close(g.done); g.hub.Run(hctx) }()
	t.Cleanup(func() {
		g.stop()
		_, _ = cli.Revoke(context.Background(), l.ID)
	})
	return g
}

func (g *gateway) stop() {
	g.cancel()
	<-g.done
}

func (g *gateway) open(t *testing.T) *Store {
	t.Helper()
	s, err := g.hub.Open(context.Background(), disk)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func register(key uint64, initiator string) func(*pr.State) error {
	return func(st *pr.State) error {
		st.Registrations = append(st.Registrations, pr.Registration{Key: key, Port: pr.Port{InitiatorPort: initiator}})
		st.Generation++
		return nil
	}
}

func TestChangeIsEnforcedEverywhereWhenUpdateReturns(t *testing.T) {
	_, gws := newCluster(t, "gw-a", "gw-b", "gw-c")
	a, b, c := gws[0].open(t), gws[1].open(t), gws[2].open(t)
	ctx := context.Background()
	for i := range 20 {
		// The peers learn through their watch; Update returns only after
		// they confirmed, so there is no window where they are behind.
		if err := a.Update(ctx, register(uint64(i+1), fmt.Sprintf("init-%d", i))); err != nil {
			t.Fatal(err)
		}
		for _, s := range []*Store{b, c} {
			st, _ := s.Get(ctx)
			if len(st.Registrations) != i+1 {
				t.Fatalf("after update %d a peer sees %d registrations", i+1, len(st.Registrations))
			}
		}
	}
}

func TestConcurrentUpdatesLoseNothing(t *testing.T) {
	_, gws := newCluster(t, "gw-a", "gw-b")
	stores := []*Store{gws[0].open(t), gws[1].open(t)}
	var wg sync.WaitGroup
	var calls atomic.Int32
	for g, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 15 {
				err := s.Update(context.Background(), func(st *pr.State) error {
					calls.Add(1)
					return register(uint64(g*100+i+1), fmt.Sprintf("g%d-%d", g, i))(st)
				})
				if err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	for _, s := range stores {
		st, _ := s.Get(context.Background())
		if len(st.Registrations) != 30 || st.Generation != 30 {
			t.Fatalf("%d registrations, generation %d; want 30 and 30", len(st.Registrations), st.Generation)
		}
	}
	t.Logf("fn ran %d times for 30 updates", calls.Load())
}

func TestAbortedUpdateWritesNothing(t *testing.T) {
	store, gws := newCluster(t, "gw-a")
	s := gws[0].open(t)
	stop := errors.New("refused")
	if err := s.Update(context.Background(), func(*pr.State) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("Update = %v", err)
	}
	if data, rev, _ := store.GetPR(context.Background(), disk); data != nil || rev != 0 {
		t.Fatalf("stored %q at %d", data, rev)
	}
}

func TestResetReachesTheOthersFirst(t *testing.T) {
	_, gws := newCluster(t, "gw-a", "gw-b")
	a := gws[0].open(t)
	gws[1].open(t)
	if err := a.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	if gws[1].resets.Load() != 1 || gws[0].resets.Load() != 0 {
		t.Fatalf("resets seen: a %d, b %d; want 0 and 1", gws[0].resets.Load(), gws[1].resets.Load())
	}
	// A reset does not touch the reservation state.
	st, _ := a.Get(context.Background())
	if st.Generation != 0 || len(st.Registrations) != 0 {
		t.Fatalf("state changed by reset: %+v", st)
	}
}

func TestStateSurvivesRestartAndIsNotAnEvent(t *testing.T) {
	store, gws := newCluster(t, "gw-a")
	ctx := context.Background()
	a := gws[0].open(t)
	if err := a.Update(ctx, register(7, "x")); err != nil {
		t.Fatal(err)
	}
	if err := a.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	// A gateway that starts later loads the state; the old reset is no
	// unit attention for it.
	cli, err := cluster.Dial(cluster.ClientConfig{Endpoints: []string{etcd.Endpoint()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() }) // after the gateway's cleanup
	late := startGateway(t, store, cli, store.Prefix(), "gw-late", time.Second)
	st, _ := late.open(t).Get(ctx)
	if len(st.Registrations) != 1 || st.Registrations[0].Key != 7 {
		t.Fatalf("late gateway sees %+v", st)
	}
	if late.resets.Load() != 0 {
		t.Fatal("an old reset was reported as new")
	}
}

func TestWatchSurvivesCompactionAndRestart(t *testing.T) {
	store, gws := newCluster(t, "gw-a", "gw-b")
	gws[0].hub.opts.AckTimeout = 200 * time.Millisecond
	gws[0].hub.opts.Fence = (&fencer{}).fence
	ctx := context.Background()
	a, b := gws[0].open(t), gws[1].open(t)
	if err := a.Update(ctx, register(1, "i1")); err != nil {
		t.Fatal(err)
	}
	// gw-b misses changes while its watch is down, and the history is
	// compacted meanwhile. (gw-a's updates wait for gw-b's confirmation
	// until their acknowledgement timeout, since gw-b is still registered,
	// and then fence it.)
	gws[1].stop()
	for i := 2; i <= 4; i++ {
		if err := a.Update(ctx, register(uint64(i), fmt.Sprintf("i%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	cli, err := cluster.Dial(cluster.ClientConfig{Endpoints: []string{etcd.Endpoint()}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	resp, err := cli.Get(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go gws[1].hub.Run(hctx)
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, _ := b.Get(ctx)
		if len(st.Registrations) == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gw-b sees %d registrations after its watch resumed", len(st.Registrations))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if data, _, err := store.GetPR(ctx, disk); err != nil || len(data) == 0 {
		t.Fatalf("stored state: %q %v", data, err)
	}
}

func TestDiskDeletedAndCreatedAgain(t *testing.T) {
	store, gws := newCluster(t, "gw-a")
	ctx := context.Background()
	s := gws[0].open(t)
	if err := s.Update(ctx, register(1, "i1")); err != nil {
		t.Fatal(err)
	}
	// Deleting the disk deletes its state; a new disk of the same name
	// starts from nothing, and the open store follows.
	if _, err := store.Apply(ctx, cluster.DeleteDisk(disk)); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Apply(ctx, cluster.PutDisk(cluster.Disk{Pool: "rbd", Image: "lun0", Size: 1 << 20})); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if st, _ := s.Get(ctx); len(st.Registrations) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the deleted state is still served")
		}
	}
	if err := s.Update(ctx, register(2, "i2")); err != nil {
		t.Fatalf("update of the new disk: %v", err)
	}
	if st, _ := s.Get(ctx); len(st.Registrations) != 1 || st.Registrations[0].Key != 2 {
		t.Fatalf("state of the new disk: %+v", st)
	}
}

func TestRecordCodec(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr bool
		resets  uint64
	}{
		{"empty is initial", "", false, 0},
		{"current", `{"version":1,"state":{"generation":3,"registrations":[]},"resets":2,"reset_by":"gw-a"}`, false, 2},
		{"no state", `{"version":1}`, false, 0},
		{"newer version", `{"version":2,"state":{}}`, true, 0},
		{"garbage", `{`, true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := decode([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("decode: %v", err)
			}
			if err != nil {
				return
			}
			if r.State == nil || r.Resets != tc.resets {
				t.Fatalf("decoded %+v", r)
			}
			b, err := encode(r)
			if err != nil {
				t.Fatal(err)
			}
			again, err := decode(b)
			if err != nil || again.Resets != r.Resets || again.State.Generation != r.State.Generation {
				t.Fatalf("round trip: %+v %v", again, err)
			}
		})
	}
}
