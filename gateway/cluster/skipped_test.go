package cluster

import (
	"fmt"
	"slices"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestLoadRangesSkipTokensAndAudit(t *testing.T) {
	s := &Store{prefix: "/rbdgw/"}
	want := [][2]string{{"/rbdgw/", "/rbdgw/audit/"}, {"/rbdgw/audit0", "/rbdgw/events/"}, {"/rbdgw/events0", "/rbdgw/stats/"},
		{"/rbdgw/stats0", "/rbdgw/tokens/"}, {"/rbdgw/tokens0", "/rbdgw0"}}
	if got := s.loadRanges(); !slices.Equal(got, want) {
		t.Fatalf("loadRanges = %q, want %q", got, want)
	}
	if !slices.IsSorted(skippedPrefixes) {
		t.Fatal("skippedPrefixes must be sorted")
	}
}

// The audit trail and the tokens share the prefix but not the snapshot, and
// Load still reads every configuration key around them, page by page.
func TestLoadAroundAuditAndTokens(t *testing.T) {
	e, s := startStore(t)
	ctx := testContext(t)
	seed(t, s, 7)
	cli := newClient(t, e.endpoint())
	for i := range 12 {
		if _, err := cli.Put(ctx, fmt.Sprintf("%saudit/%020d", s.prefix, i+1), "{not config"); err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Put(ctx, fmt.Sprintf("%stokens/id%02d", s.prefix, i), "{not config"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Put(ctx, s.prefix+"audit/seq", "12"); err != nil {
		t.Fatal(err)
	}
	s.pageSize = 2
	snap, _, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Gateways) != 7 || len(snap.Disks) != 1 || len(snap.TargetLUNs(tIQN)) != 1 || snap.SchemaVersion != SchemaVersion {
		t.Errorf("load lost keys: %d gateways, %d disks", len(snap.Gateways), len(snap.Disks))
	}
	if len(snap.Damaged) != 0 {
		t.Errorf("damaged: %v", snap.Damaged)
	}
	resp, err := cli.Get(ctx, s.prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count < 25 {
		t.Fatalf("keys under the prefix: %v, %v", resp, err)
	}
}
