package peer

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/internal/clustertest"
)

var endpoint string

func TestMain(m *testing.M) {
	clustertest.MainWithEtcd(m, "peer", func(e *clustertest.Etcd) {
		if e != nil {
			endpoint = e.Endpoint()
		}
	})
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// setup returns a client and a prefix of the test's own.
func setup(t *testing.T) (*clientv3.Client, string) {
	t.Helper()
	if endpoint == "" {
		t.Skip("etcd not available")
	}
	cli, err := cluster.Dial(cluster.ClientConfig{Endpoints: []string{endpoint}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli, "/" + strings.ReplaceAll(t.Name(), "/", "_") + "/"
}

func lease(t *testing.T, cli *clientv3.Client) clientv3.LeaseID {
	t.Helper()
	l, err := cli.Grant(context.Background(), 30)
	if err != nil {
		t.Fatal(err)
	}
	return l.ID
}

func TestRecordsFollowPublishAndLease(t *testing.T) {
	cli, prefix := setup(t)
	ctx := context.Background()
	a := New(cli, prefix, "gw-a", quiet)
	// Before Publish nothing is written; the values are kept for it.
	if err := a.SetClient(ctx, "127.0.0.1:0/1"); err != nil {
		t.Fatal(err)
	}
	recs, _, err := a.Records(ctx)
	if err != nil || len(recs) != 0 {
		t.Fatalf("before publish: %v %v", recs, err)
	}
	l := lease(t, cli)
	if err := a.Publish(ctx, l); err != nil {
		t.Fatal(err)
	}
	if err := a.SetApplied(ctx, 42); err != nil {
		t.Fatal(err)
	}
	recs, _, err = a.Records(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := Record{Gateway: "gw-a", Client: "127.0.0.1:0/1", Applied: 42}
	if !reflect.DeepEqual(recs["gw-a"], want) {
		t.Fatalf("record %+v, want %+v", recs["gw-a"], want)
	}
	// The record goes with the lease.
	if _, err := cli.Revoke(ctx, l); err != nil {
		t.Fatal(err)
	}
	if recs, _, _ = a.Records(ctx); len(recs) != 0 {
		t.Fatalf("after revoke: %v", recs)
	}
}

func TestWaitApplied(t *testing.T) {
	cli, prefix := setup(t)
	ctx := context.Background()
	a := New(cli, prefix, "gw-a", quiet)
	b := New(cli, prefix, "gw-b", quiet)
	c := New(cli, prefix, "gw-c", quiet)
	la, lb, lc := lease(t, cli), lease(t, cli), lease(t, cli)
	for _, p := range []struct {
		d *Directory
		l clientv3.LeaseID
	}{{a, la}, {b, lb}, {c, lc}} {
		if err := p.d.Publish(ctx, p.l); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name    string
		act     func()
		wantErr bool
	}{
		{"both confirm", func() {
			_ = b.SetApplied(ctx, 10)
			_ = c.SetApplied(ctx, 12)
		}, false},
		{"one never confirms", func() { _ = b.SetApplied(ctx, 20) }, true},
		// A gateway whose record went with its lease never applied the
		// change: it stays behind until the waiter fences it.
		{"a laggard dies", func() {
			_ = b.SetApplied(ctx, 30)
			_, _ = cli.Revoke(ctx, lc)
		}, true},
	}
	revs := []int64{10, 20, 30}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- a.WaitApplied(wctx, revs[i], []string{"gw-b", "gw-c"}) }()
			time.Sleep(50 * time.Millisecond)
			tc.act()
			err := <-done
			if (err != nil) != tc.wantErr {
				t.Fatalf("WaitApplied(%d) = %v", revs[i], err)
			}
			var na *NotAppliedError
			if tc.wantErr && (!errors.Is(err, ErrNotApplied) || !errors.As(err, &na) || !reflect.DeepEqual(na.Behind, []string{"gw-c"})) {
				t.Fatalf("error %v should name gw-c alone", err)
			}
		})
	}
}

func TestSetStatusWritesChanges(t *testing.T) {
	cli, prefix := setup(t)
	ctx := context.Background()
	a := New(cli, prefix, "gw-a", quiet)
	if err := a.SetStatus(ctx, []byte(`{"version":"1"}`)); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(ctx, lease(t, cli)); err != nil {
		t.Fatal(err)
	}
	get := func() (string, int64) {
		resp, err := cli.Get(ctx, a.Key("gw-a"))
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("get: %v %v", resp, err)
		}
		return string(resp.Kvs[0].Value), resp.Kvs[0].ModRevision
	}
	v, rev := get()
	if v != `{"gateway":"gw-a","applied":0,"status":{"version":"1"}}` {
		t.Fatalf("record %s", v)
	}
	// The same document again writes nothing; another one does.
	if err := a.SetStatus(ctx, []byte(`{"version":"1"}`)); err != nil {
		t.Fatal(err)
	}
	if _, again := get(); again != rev {
		t.Fatalf("unchanged status rewritten (%d -> %d)", rev, again)
	}
	if err := a.SetStatus(ctx, []byte(`{"version":"2"}`)); err != nil {
		t.Fatal(err)
	}
	recs, _, err := a.Records(ctx)
	if err != nil || string(recs["gw-a"].Status) != `{"version":"2"}` {
		t.Fatalf("records %v %v", recs, err)
	}
}
