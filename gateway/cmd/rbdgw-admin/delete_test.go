package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/internal/clustertest"
)

// testEtcd starts an etcd server for the test, or skips the test where
// there is none (or with -short).
func testEtcd(t *testing.T) *clustertest.Etcd {
	t.Helper()
	e, _ := clustertest.StartForTest(t, false)
	return e
}

// adminEtcd starts etcd and returns a function running rbdgw-admin against
// it under prefix with its -timeout, a client and a store.
func adminEtcd(t *testing.T, prefix, timeout string) (func(args ...string) (string, error), *clientv3.Client, *cluster.Store) {
	t.Helper()
	e := testEtcd(t)
	cmd := func(args ...string) (string, error) {
		t.Helper()
		var b strings.Builder
		err := run(append([]string{"-etcd", e.Endpoint(), "-etcd-prefix", prefix, "-timeout", timeout}, args...), &b)
		return b.String(), err
	}
	cli, err := cluster.Dial(cluster.ClientConfig{Endpoints: []string{e.Endpoint()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	store, err := cluster.New(cli, cluster.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return cmd, cli, store
}

// cancelOnWrite cancels a context when a line containing mark is written.
type cancelOnWrite struct {
	mu     sync.Mutex
	b      strings.Builder
	mark   string
	cancel context.CancelFunc
}

func (w *cancelOnWrite) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if strings.Contains(string(p), w.mark) {
		w.cancel()
	}
	return w.b.Write(p)
}

// A target with more children than etcd's --max-txn-ops is deleted in
// parts; stopped after one, the same command finishes it.
func TestTargetDeleteInParts(t *testing.T) {
	const (
		prefix = "/admin-parts/"
		iqn    = "iqn.2024-01.io.test:big"
		disks  = 40
		hosts  = 300
	)
	cmd, cli, store := adminEtcd(t, prefix, "60s")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := cmd("gateway", "put", "gw-a", "-portal", "127.0.0.1:3390"); err != nil {
		t.Fatal(err)
	}
	ops := []cluster.Op{cluster.PutTarget(cluster.Target{IQN: iqn, Gateways: []string{"gw-a"}})}
	for i := range disks {
		ops = append(ops, cluster.PutDisk(cluster.Disk{Pool: "rbd", Image: fmt.Sprintf("d%02d", i), Size: 1 << 20}))
	}
	if _, err := store.Apply(ctx, ops...); err != nil {
		t.Fatal(err)
	}
	ops = ops[:0]
	for i := range disks {
		ops = append(ops, cluster.PutLUN(cluster.LUN{Target: iqn, ID: uint64(i), Disk: fmt.Sprintf("rbd/d%02d", i)}))
	}
	if _, err := store.Apply(ctx, ops...); err != nil {
		t.Fatal(err)
	}
	for from := 0; from < hosts; from += 50 {
		ops = ops[:0]
		for i := from; i < from+50; i++ {
			ops = append(ops, cluster.PutHost(cluster.Host{Target: iqn, Initiator: fmt.Sprintf("iqn.2024-01.io.test:h%03d", i),
				LUNs: []uint64{uint64(i % disks)}}))
		}
		if _, err := store.Apply(ctx, ops...); err != nil {
			t.Fatal(err)
		}
	}
	keys := func() int64 {
		t.Helper()
		resp, err := cli.Get(ctx, prefix+string(cluster.TargetKey(iqn)), clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		return resp.Count
	}
	total := keys()
	if total != 1+disks+hosts {
		t.Fatalf("%d keys of the target, want %d", total, 1+disks+hosts)
	}

	// Stopped after the first part: a valid target with fewer children,
	// and an error that says how to finish.
	stopCtx, stop := context.WithCancel(ctx)
	w := &cancelOnWrite{mark: "part 1:", cancel: stop}
	a := &admin{store: store, out: w, errOut: io.Discard}
	err := a.targetDelete(stopCtx, []string{iqn})
	if err == nil || !strings.Contains(err.Error(), "1 part(s)") || !strings.Contains(err.Error(), "run target delete "+iqn+" again to finish") {
		t.Fatalf("delete stopped after a part: %v\n%s", err, w.b.String())
	}
	t.Logf("stopped: %v", err)
	left := keys()
	if left == 0 || left >= total {
		t.Fatalf("%d of %d keys left after one part", left, total)
	}
	snap, _, err := store.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := snap.Targets[iqn]; !ok || len(snap.Damaged) != 0 {
		t.Fatalf("after one part: target present %v, damaged %v", ok, snap.Damaged)
	}

	out, err := cmd("target", "delete", iqn)
	if err != nil {
		t.Fatalf("target delete: %v\n%s", err, out)
	}
	t.Logf("target delete:\n%s", out)
	if !strings.Contains(out, "part 1:") || !strings.Contains(out, " parts, ") {
		t.Errorf("output shows no progress:\n%s", out)
	}
	if n := keys(); n != 0 {
		t.Fatalf("%d keys of the target left", n)
	}
	if out, err := cmd("target", "delete", iqn); !errors.Is(err, cluster.ErrNotFound) {
		t.Fatalf("delete again: %v\n%s", err, out)
	}
	// A small target still goes in one transaction.
	if _, err := cmd("target", "put", "iqn.2024-01.io.test:small", "-gateway", "gw-a"); err != nil {
		t.Fatal(err)
	}
	if out, err := cmd("target", "delete", "iqn.2024-01.io.test:small"); err != nil || strings.Contains(out, "part") {
		t.Fatalf("small target delete: %v\n%s", err, out)
	}
}

// gateway delete takes the Ceph client record with the gateway unless the
// gateway is live or owns a disk; a record kept goes with a later gateway
// delete once that no longer holds.
func TestGatewayDeleteClientRecord(t *testing.T) {
	const prefix = "/admin-clients/"
	cmd, cli, store := adminEtcd(t, prefix, "60s")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	recorded := func(gw string) bool {
		t.Helper()
		resp, err := cli.Get(ctx, prefix+string(cluster.ClientKey(gw)))
		if err != nil {
			t.Fatal(err)
		}
		return len(resp.Kvs) == 1
	}
	for i, gw := range []string{"gw-a", "gw-b"} {
		if _, err := cmd("gateway", "put", gw, "-portal", fmt.Sprintf("127.0.0.%d:3260", i+1)); err != nil {
			t.Fatal(err)
		}
		if err := store.RecordClient(ctx, gw, "10.0.0.1:0/"+gw, 1); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := cmd("gateway", "delete", "gw-a"); err != nil || strings.Contains(out, "kept") || recorded("gw-a") {
		t.Fatalf("delete a gateway gone: %v, recorded %v\n%s", err, recorded("gw-a"), out)
	}

	reg, err := store.Register(ctx, "gw-b", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd("gateway", "delete", "gw-b")
	if err != nil || !strings.Contains(out, "clients/gw-b kept: gateway gw-b is live") || !recorded("gw-b") {
		t.Fatalf("delete a live gateway: %v, recorded %v\n%s", err, recorded("gw-b"), out)
	}
	if out, err := cmd("gateway", "delete", "gw-b"); err == nil || !strings.Contains(err.Error(), "is live") {
		t.Fatalf("delete the record of a live gateway: %v\n%s", err, out)
	}
	if err := reg.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if out, err := cmd("gateway", "delete", "gw-b"); err != nil || recorded("gw-b") {
		t.Fatalf("delete the record of a gateway gone: %v, recorded %v\n%s", err, recorded("gw-b"), out)
	}
	if out, err := cmd("gateway", "delete", "gw-b"); !errors.Is(err, cluster.ErrNotFound) {
		t.Fatalf("delete again: %v\n%s", err, out)
	}
}
