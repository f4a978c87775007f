package node

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/gateway/cluster"
)

// A gateway daemon opens the cluster to write: at start it migrates records
// of an older schema before it reads them.
func TestNodeMigratesSchemaAtStart(t *testing.T) {
	cli, prefix := setup(t)
	ctx := context.Background()
	const iqn, ini = "iqn.2024-01.io.test:t1", "iqn.2024-01.io.test:host1"
	// What a schema 1 writer left: host1 with no list, meaning every LUN.
	for k, v := range map[cluster.Key]string{
		cluster.SchemaKey:         `{"version":1}`,
		cluster.DiskKey("rbd/d0"): `{"pool":"rbd","image":"d0","size":1048576,"block_size":512,"serial":"0123456789abcdef0123456789abcdef","wwn":"0123456789abcdef"}`,
		cluster.TargetKey(iqn):    `{"iqn":"` + iqn + `","gateways":[]}`,
		cluster.LUNKey(iqn, 0):    `{"target":"` + iqn + `","id":0,"disk":"rbd/d0"}`,
		cluster.HostKey(iqn, ini): `{"target":"` + iqn + `","initiator":"` + ini + `"}`,
	} {
		if _, err := cli.Put(ctx, prefix+string(k), v); err != nil {
			t.Fatal(err)
		}
	}
	n := newTestNode(t, Options{Endpoints: []string{endpoint}, Prefix: prefix, Gateway: "gw-a", LeaseTTL: 2 * time.Second})
	rctx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- n.Run(rctx) }()
	defer func() { stop(); <-ran }()
	select {
	case <-n.Ready():
	case err := <-ran:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not ready")
	}
	snap, _, err := n.Store().Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.SchemaVersion != cluster.SchemaVersion {
		t.Errorf("schema %d once the gateway is ready, want %d", snap.SchemaVersion, cluster.SchemaVersion)
	}
	if got := snap.Hosts[iqn][ini].LUNs; !slices.Equal(got, []uint64{0}) {
		t.Errorf("host1 lists %v after the migration, want [0]", got)
	}
	resp, err := cli.Get(ctx, prefix+string(cluster.SchemaKey))
	if err != nil {
		t.Fatal(err)
	}
	var rec struct{ Version int }
	if err := json.Unmarshal(resp.Kvs[0].Value, &rec); err != nil || rec.Version != cluster.SchemaVersion {
		t.Errorf("stored schema %s", resp.Kvs[0].Value)
	}
}
