package events

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/config"
	"github.com/rbdgw/rbdgw/gateway/internal/clustertest"
)

var endpoint string

func TestMain(m *testing.M) {
	clustertest.MainWithEtcd(m, "events", func(e *clustertest.Etcd) {
		if e != nil {
			endpoint = e.Endpoint()
		}
	})
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

const (
	iqn = "iqn.2024-01.io.rbdgw:t1"
	ini = "iqn.1994-05.com.redhat:h1"
)

func setup(t *testing.T) (*clientv3.Client, *cluster.Store) {
	t.Helper()
	if endpoint == "" {
		t.Skip("no etcd")
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	store, err := cluster.New(cli, cluster.Options{Prefix: fmt.Sprintf("/events-%s-%d/", t.Name(), time.Now().UnixNano()), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return cli, store
}

// recorder follows the cluster into a list.
type recorder struct {
	mu     sync.Mutex
	start  int64
	events []Event
	done   chan error
	cancel context.CancelFunc
}

func follow(t *testing.T, cli *clientv3.Client, prefix string, since int64) *recorder {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &recorder{done: make(chan error, 1), cancel: cancel, start: -1}
	started := make(chan struct{})
	go func() {
		r.done <- Follow(ctx, cli, Options{Prefix: prefix, Since: since, Logger: quiet,
			Start: func(rev int64) error {
				r.mu.Lock()
				r.start = rev
				r.mu.Unlock()
				close(started)
				return nil
			},
			Send: func(evs []Event) error {
				if len(evs) == 0 {
					t.Error("empty batch")
				}
				for _, e := range evs[1:] {
					if e.Revision != evs[0].Revision {
						t.Errorf("one batch holds revisions %d and %d", evs[0].Revision, e.Revision)
					}
				}
				r.mu.Lock()
				r.events = append(r.events, evs...)
				r.mu.Unlock()
				return nil
			}})
	}()
	t.Cleanup(func() { cancel(); <-r.done })
	select {
	case <-started:
	case err := <-r.done:
		t.Fatalf("follow ended before it started: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not start")
	}
	return r
}

// wait returns the events once there are n.
func (r *recorder) wait(t *testing.T, n int) []Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		got := append([]Event(nil), r.events...)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events, want %d: %+v", len(got), n, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestFollow(t *testing.T) {
	cli, store := setup(t)
	ctx := context.Background()
	prefix := store.Prefix()
	r := follow(t, cli, prefix, 0)

	rev1, err := store.Apply(ctx,
		cluster.PutGateway(cluster.Gateway{Name: "gw-a", Portals: []string{"127.0.0.1:3260"}}),
		cluster.PutGateway(cluster.Gateway{Name: "gw-b", Portals: []string{"127.0.0.1:3261"}}),
		cluster.PutDisk(cluster.Disk{Pool: "rbd", Image: "d1", Size: 1 << 20}),
		cluster.PutTarget(cluster.Target{IQN: iqn, Gateways: []string{"gw-a", "gw-b"}}),
		cluster.PutLUN(cluster.LUN{Target: iqn, ID: 0, Disk: "rbd/d1"}))
	if err != nil {
		t.Fatal(err)
	}
	rev2, err := store.Apply(ctx, cluster.PutHost(cluster.Host{Target: iqn, Initiator: ini,
		CHAP: &config.CHAP{User: "h1", Secret: "topsecret0001"}, LUNs: []uint64{0}}))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := store.Register(ctx, "gw-a", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.ClaimOwner(ctx, "rbd/d1", "gw-a", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := store.ClaimOwner(ctx, "rbd/d1", "gw-b", 1); err != nil {
		t.Fatal(err)
	}
	if err := RecordFence(ctx, cli, prefix, Fence{Disk: "rbd/d1", Gateway: "gw-b", From: "gw-a", Epoch: 2,
		Clients: []string{"127.0.0.1:0/1234"}, Reason: "owner gw-a is gone"}); err != nil {
		t.Fatal(err)
	}
	// Keys that are not events: status records, counters, reservations,
	// tokens, the audit trail.
	for _, k := range []string{"peers/gw-a", "stats/gw-a", "pr/rbd/d1", "tokens/abc", "audit/00000000000000000001"} {
		if _, err := cli.Put(ctx, prefix+k, `{"x": 1}`); err != nil {
			t.Fatal(err)
		}
	}
	if err := reg.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Apply(ctx, cluster.DeleteHost(iqn, ini)); err != nil {
		t.Fatal(err)
	}

	evs := r.wait(t, 13)
	var got []string
	for i, e := range evs {
		if i > 0 && e.Revision < evs[i-1].Revision {
			t.Fatalf("out of order: %+v", evs)
		}
		s := e.Type + " " + e.Op
		switch e.Type {
		case TypeConfig:
			s += " " + e.Kind + " " + e.Key
		case TypeOwner:
			s += fmt.Sprintf(" %s %s>%s %d", e.Disk, e.From, e.To, e.Epoch)
		case TypeFence:
			s += fmt.Sprintf(" %s by %s from %s %v", e.Disk, e.Gateway, e.From, e.Clients)
		case TypeGateway:
			s += " " + e.Gateway
		}
		got = append(got, s)
	}
	want := []string{
		"config put schema schema",
		"config put gateway gateways/gw-a",
		"config put gateway gateways/gw-b",
		"config put disk disks/rbd/d1",
		"config put target targets/" + iqn,
		"config put lun targets/" + iqn + "/luns/0",
		"config put host targets/" + iqn + "/hosts/" + ini,
		"gateway join gw-a",
		"owner  rbd/d1 >gw-a 1",
		"owner  rbd/d1 gw-a>gw-b 2",
		"fence  rbd/d1 by gw-b from gw-a [127.0.0.1:0/1234]",
		"gateway leave gw-a",
		"config delete host targets/" + iqn + "/hosts/" + ini,
	}
	if len(got) != len(want) {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for i := range want {
		// The first commit writes its keys in one revision, in an order
		// of the store's choosing.
		if evs[i].Revision == rev1 {
			continue
		}
		if got[i] != want[i] {
			t.Fatalf("event %d: %q, want %q\nall:\n%s", i, got[i], want[i], strings.Join(got, "\n"))
		}
	}
	host := evs[6]
	if host.Revision != rev2 || host.Target != iqn || host.Name != ini || strings.Contains(string(host.Value), "topsecret") ||
		!strings.Contains(string(host.Value), `"secret":"***"`) {
		t.Fatalf("host event: %+v %s", host, host.Value)
	}
	if evs[5].LUN == nil || *evs[5].LUN != 0 {
		t.Fatalf("LUN event: %+v", evs[5])
	}
	if evs[7].Time == nil || evs[10].Time == nil {
		t.Fatalf("join and fence carry their time: %+v %+v", evs[7], evs[10])
	}

	// Resuming after any revision gives exactly the events after it.
	for cut := 1; cut < len(evs); cut++ {
		if evs[cut].Revision == evs[cut-1].Revision {
			continue
		}
		r2 := follow(t, cli, prefix, evs[cut-1].Revision)
		if r2.start != evs[cut-1].Revision {
			t.Fatalf("resumed stream starts after %d, want %d", r2.start, evs[cut-1].Revision)
		}
		rest := r2.wait(t, len(evs)-cut)
		for i := range rest {
			if rest[i].Revision != evs[cut+i].Revision || rest[i].Type != evs[cut+i].Type || rest[i].Key != evs[cut+i].Key ||
				rest[i].From != evs[cut+i].From {
				t.Fatalf("resumed after %d: event %d is %+v, want %+v", evs[cut-1].Revision, i, rest[i], evs[cut+i])
			}
		}
		r2.cancel()
	}
}

// A revision compacted away is reported, with the revision the stream
// continues after.
func TestFollowCompacted(t *testing.T) {
	cli, store := setup(t)
	ctx := context.Background()
	first, err := store.Apply(ctx, cluster.PutGateway(cluster.Gateway{Name: "gw-a", Portals: []string{"127.0.0.1:3260"}}))
	if err != nil {
		t.Fatal(err)
	}
	last, err := store.Apply(ctx, cluster.PutGateway(cluster.Gateway{Name: "gw-b", Portals: []string{"127.0.0.1:3261"}}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, last); err != nil {
		t.Fatal(err)
	}
	r := follow(t, cli, store.Prefix(), first-1)
	evs := r.wait(t, 1)
	if evs[0].Type != TypeCompacted || evs[0].Since != first-1 || evs[0].Revision < last || r.start != evs[0].Revision {
		t.Fatalf("compacted: start %d, %+v", r.start, evs)
	}
	if _, err := store.Apply(ctx, cluster.PutGateway(cluster.Gateway{Name: "gw-c", Portals: []string{"127.0.0.1:3262"}})); err != nil {
		t.Fatal(err)
	}
	evs = r.wait(t, 2)
	if evs[1].Type != TypeConfig || evs[1].Key != "gateways/gw-c" {
		t.Fatalf("after the compaction: %+v", evs)
	}
}

// A revision etcd has not reached (restored from a backup) is reported as
// compacted: the stream continues from the current one.
func TestFollowFutureRevision(t *testing.T) {
	cli, store := setup(t)
	ctx := context.Background()
	rev, err := store.Apply(ctx, cluster.PutGateway(cluster.Gateway{Name: "gw-a", Portals: []string{"127.0.0.1:3260"}}))
	if err != nil {
		t.Fatal(err)
	}
	r := follow(t, cli, store.Prefix(), rev+1000)
	evs := r.wait(t, 1)
	if evs[0].Type != TypeCompacted || evs[0].Since != rev+1000 || evs[0].Revision < rev || r.start != evs[0].Revision {
		t.Fatalf("future revision: start %d, %+v", r.start, evs)
	}
}

// An error from Send ends Follow with it.
func TestFollowSendError(t *testing.T) {
	cli, store := setup(t)
	ctx := context.Background()
	stop := errors.New("reader gone")
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		done <- Follow(ctx, cli, Options{Prefix: store.Prefix(), Logger: quiet,
			Start: func(int64) error { close(started); return nil },
			Send:  func([]Event) error { return stop }})
	}()
	<-started
	if _, err := store.Apply(ctx, cluster.PutGateway(cluster.Gateway{Name: "gw-a", Portals: []string{"127.0.0.1:3260"}})); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, stop) {
			t.Fatalf("Follow returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Follow did not end")
	}
}
