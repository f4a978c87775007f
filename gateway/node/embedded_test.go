package node

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/internal/clustertest"
)

// TestNodeEmbeddedEtcd runs a single-node gateway with the etcd server
// inside the process, as -embedded-etcd does, twice on the same data.
func TestNodeEmbeddedEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an etcd server")
	}
	dir := t.TempDir()
	cport, err := clustertest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	pport, err := clustertest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	iport, err := clustertest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Endpoints: []string{"127.0.0.1:" + strconv.Itoa(cport)}, EmbeddedDir: dir,
		EmbeddedPeer: "127.0.0.1:" + strconv.Itoa(pport), Gateway: "gw-a", LeaseTTL: 2 * time.Second}

	run := func(define bool) {
		t.Helper()
		n := newTestNode(t, opts)
		ctx, stop := context.WithCancel(context.Background())
		defer stop()
		ran := make(chan error, 1)
		go func() { ran <- n.Run(ctx) }()
		select {
		case <-n.Ready():
		case err := <-ran:
			t.Fatalf("Run: %v", err)
		case <-time.After(60 * time.Second):
			t.Fatal("embedded etcd not ready")
		}
		if define {
			_, err := n.Store().Apply(ctx, cluster.PutGateway(cluster.Gateway{Name: "gw-a",
				Portals: []string{"127.0.0.1:" + strconv.Itoa(iport)}}))
			if err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(15 * time.Second)
		for s := n.Status(); !s.Etcd.LeaseHeld || s.Applied.Revision == 0; s = n.Status() {
			if time.Now().After(deadline) {
				t.Fatalf("not registered: %+v", s)
			}
			time.Sleep(20 * time.Millisecond)
		}
		list, _, err := ReadCluster(ctx, n.Client(), cluster.DefaultPrefix)
		if err != nil || len(list) != 1 || !list[0].Live {
			t.Fatalf("cluster: %+v %v", list, err)
		}
		stop()
		if err := <-ran; err != nil {
			t.Fatalf("Run: %v", err)
		}
	}
	run(true)
	// The configuration survived: the gateway starts without defining it
	// again.
	run(false)
}
