package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rbdgw/rbdgw/api"
	"github.com/rbdgw/rbdgw/api/model"
	"github.com/rbdgw/rbdgw/gateway/cluster"
)

// bigTarget is a target with more children than one etcd transaction
// holds (etcd's default --max-txn-ops, 128).
const (
	bigTarget = "iqn.2024-01.io.rbdgw:big"
	bigLUNs   = 250 // LUN ids end at 255
	bigHosts  = 300 // the last 20 are in 10 groups
	bigGroups = 10
)

func bigHost(i int) string { return fmt.Sprintf("iqn.1994-05.com.redhat:h%03d", i) }

// seedBigTarget writes bigTarget through the store, in transactions that
// fit: bigLUNs disks mapped as its LUNs, bigHosts hosts each seeing one,
// except the last 2*bigGroups, members two by two of groups that list
// two LUNs. It returns the number of keys of the target.
func (e *env) seedBigTarget() int {
	e.t.Helper()
	ctx := context.Background()
	apply := func(ops []cluster.Op) {
		e.t.Helper()
		if _, err := e.store.Apply(ctx, ops...); err != nil {
			e.t.Fatalf("seed: %v", err)
		}
	}
	e.must(200, "PUT", "/gateways/gw-a", model.GatewayPut{Portals: []string{"127.0.0.1:3260"}})
	e.must(200, "PUT", "/targets/"+bigTarget, model.TargetPut{Gateways: []string{"gw-a"}})
	const batch = 30
	for from := 0; from < bigLUNs; from += batch {
		var ops []cluster.Op
		for i := from; i < min(from+batch, bigLUNs); i++ {
			d := cluster.Disk{Pool: "rbd", Image: fmt.Sprintf("big%03d", i), Size: 1 << 20}
			ops = append(ops, cluster.PutDisk(d), cluster.PutLUN(cluster.LUN{Target: bigTarget, ID: uint64(i), Disk: d.ID()}))
		}
		apply(ops)
	}
	grouped := bigHosts - 2*bigGroups
	for from := 0; from < bigHosts; from += batch {
		var ops []cluster.Op
		for i := from; i < min(from+batch, bigHosts); i++ {
			h := cluster.Host{Target: bigTarget, Initiator: bigHost(i)}
			if i < grouped {
				h.LUNs = []uint64{uint64(i % bigLUNs)}
			}
			ops = append(ops, cluster.PutHost(h))
		}
		apply(ops)
	}
	var ops []cluster.Op
	for g := range bigGroups {
		a, b := grouped+2*g, grouped+2*g+1
		ops = append(ops, cluster.PutHostGroup(cluster.HostGroup{Target: bigTarget, Name: fmt.Sprintf("g%02d", g),
			Members: []string{bigHost(a), bigHost(b)}, LUNs: []uint64{uint64(2 * g), uint64(2*g + 1)}}))
	}
	apply(ops)
	return 1 + bigLUNs + bigHosts + bigGroups
}

// targetKeys counts the keys of bigTarget (its record and its children)
// left in etcd.
func (e *env) targetKeys() int64 {
	e.t.Helper()
	ctx := context.Background()
	n := int64(0)
	for _, k := range []string{string(cluster.TargetKey(bigTarget)), string(cluster.TargetKey(bigTarget)) + "/"} {
		opts := []clientv3.OpOption{clientv3.WithCountOnly()}
		if strings.HasSuffix(k, "/") {
			opts = append(opts, clientv3.WithPrefix())
		}
		resp, err := etcdCli.Get(ctx, e.prefix+k, opts...)
		if err != nil {
			e.t.Fatal(err)
		}
		n += resp.Count
	}
	return n
}

// consistent fails the test unless the stored configuration decodes and
// every reference of bigTarget's children resolves: what a delete that
// stopped half-way must leave.
func (e *env) consistent() (children int) {
	e.t.Helper()
	snap, _, err := e.store.Load(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	if len(snap.Damaged) > 0 {
		e.t.Fatalf("damaged keys: %v", snap.Damaged)
	}
	if _, ok := snap.Targets[bigTarget]; !ok {
		e.t.Fatalf("target gone")
	}
	for _, h := range snap.Hosts[bigTarget] {
		for _, l := range h.LUNs {
			if _, ok := snap.LUNs[bigTarget][l]; !ok {
				e.t.Fatalf("host %s lists LUN %d, which is gone", h.Initiator, l)
			}
		}
	}
	for _, g := range snap.HostGroups[bigTarget] {
		for _, m := range g.Members {
			if _, ok := snap.Hosts[bigTarget][m]; !ok {
				e.t.Fatalf("group %s lists host %s, which is gone", g.Name, m)
			}
		}
		for _, l := range g.LUNs {
			if _, ok := snap.LUNs[bigTarget][l]; !ok {
				e.t.Fatalf("group %s lists LUN %d, which is gone", g.Name, l)
			}
		}
	}
	return len(snap.LUNs[bigTarget]) + len(snap.Hosts[bigTarget]) + len(snap.HostGroups[bigTarget])
}

// hookedStore is the real store with a hook run before each commit: it may
// fail the commit or change the configuration first.
type hookedStore struct {
	*cluster.Store
	mu      sync.Mutex
	commits int
	before  func(n int) error // n counts commits from 1
}

func (h *hookedStore) Commit(ctx context.Context, base *cluster.Snapshot, ops ...cluster.Op) (int64, error) {
	h.mu.Lock()
	h.commits++
	n, before := h.commits, h.before
	h.mu.Unlock()
	if before != nil {
		if err := before(n); err != nil {
			return 0, err
		}
	}
	return h.Store.Commit(ctx, base, ops...)
}

// hook serves e's API over the store with a commit hook; the audit is
// returned to be read.
func (e *env) hook() (*hookedStore, *memAudit) {
	e.t.Helper()
	hs := &hookedStore{Store: e.store}
	audit := &memAudit{}
	e.srv.Close()
	e.api = api.New(api.Options{Store: hs, Ceph: e.ceph, Gateways: liveGateways{e.store}, Tokens: e.toks,
		Audit: audit, Gateway: "gw-test", Version: "test"})
	e.srv = httptest.NewServer(e.recording(e.api.Handler()))
	return hs, audit
}

// TestDeleteLargeTarget: a target with more LUN maps, hosts and groups
// than one transaction holds is deleted by one DELETE, in parts, leaving
// no key of it; a dry run lists every key without deleting, and If-Match
// is checked against the target's record.
func TestDeleteLargeTarget(t *testing.T) {
	e := newEnv(t)
	keys := e.seedBigTarget()
	_, audit := e.hook()
	path := "/targets/" + bigTarget

	var dry model.WriteResult
	e.must(200, "DELETE", path+"?dry_run=true", nil).decode(t, &dry)
	if !dry.DryRun || len(dry.Changes) != keys || dry.Parts != 0 {
		t.Fatalf("dry run: dry_run %v, %d changes (want %d), parts %d", dry.DryRun, len(dry.Changes), keys, dry.Parts)
	}
	if n := e.targetKeys(); n != int64(keys) {
		t.Fatalf("dry run left %d keys, want %d", n, keys)
	}

	tag := e.must(200, "GET", path, nil).header.Get("ETag")
	if r := e.do(api.RoleOperator, "DELETE", path, nil, "If-Match", `"1"`); r.status != http.StatusPreconditionFailed {
		t.Fatalf("stale If-Match: %d %s", r.status, r.body)
	}
	if n := e.targetKeys(); n != int64(keys) {
		t.Fatalf("refused delete left %d keys, want %d", n, keys)
	}

	var res model.WriteResult
	r := e.must(200, "DELETE", path+"?wait=applied&timeout=5s", nil, "If-Match", tag)
	r.decode(t, &res)
	if res.Parts < 2 || len(res.Changes) != keys || res.Applied == nil || !res.Applied.Done {
		t.Fatalf("delete: %d parts, %d changes (want %d), applied %+v", res.Parts, len(res.Changes), keys, res.Applied)
	}
	if !deletes(res.Changes, cluster.TargetKey(bigTarget)) {
		t.Errorf("changes lack the target's delete")
	}
	if r.header.Get("ETag") != fmt.Sprintf(`"%d"`, res.Revision) {
		t.Errorf("ETag %s, revision %d", r.header.Get("ETag"), res.Revision)
	}
	if n := e.targetKeys(); n != 0 {
		t.Fatalf("%d keys of the target left", n)
	}
	e.must(404, "GET", path, nil)
	if snap, _, err := e.store.Load(context.Background()); err != nil || len(snap.Disks) != bigLUNs {
		t.Errorf("disks kept: %v %v", len(snap.Disks), err)
	}

	// One audit entry per request, the delete's with its final revision.
	entries, _, _ := audit.List(context.Background(), 10, "")
	if len(entries) != 3 {
		t.Fatalf("audit: %d entries: %+v", len(entries), entries)
	}
	if entries[0].Status != 200 || entries[0].Revision != res.Revision {
		t.Errorf("audit of the delete: %+v, want revision %d", entries[0], res.Revision)
	}
}

// TestDeleteLargeTargetStopsHalfWay: a delete in parts that fails after
// some of them leaves a consistent target with fewer children, says so,
// and is finished by the same DELETE again; a change of the target's
// record between parts stops a DELETE with If-Match at 412.
func TestDeleteLargeTargetStopsHalfWay(t *testing.T) {
	e := newEnv(t)
	keys := e.seedBigTarget()
	hs, audit := e.hook()
	path := "/targets/" + bigTarget

	var committedRev int64
	hs.before = func(n int) error {
		if n == 3 {
			committedRev = e.currentRev()
			return fmt.Errorf("cluster: commit: %w", context.DeadlineExceeded)
		}
		return nil
	}
	r := e.do(api.RoleOperator, "DELETE", path, nil)
	if r.status != http.StatusServiceUnavailable || !strings.Contains(r.err().Message, "send it again to finish") {
		t.Fatalf("failed part: %d %s", r.status, r.body)
	}
	left := e.consistent()
	if left == 0 || left >= keys-1 {
		t.Fatalf("%d children left of %d", left, keys-1)
	}
	entries, _, _ := audit.List(context.Background(), 10, "")
	if len(entries) != 1 || entries[0].Status != http.StatusServiceUnavailable || entries[0].Revision != committedRev {
		t.Fatalf("audit: %+v, want one entry at revision %d", entries, committedRev)
	}

	// The target's record changes after the next part: If-Match no
	// longer holds, and the delete stops there.
	hs.mu.Lock()
	hs.commits = 0
	hs.mu.Unlock()
	tag := e.must(200, "GET", path, nil).header.Get("ETag")
	hs.before = func(n int) error {
		if n == 2 {
			if _, err := e.store.Apply(context.Background(), cluster.PutTarget(cluster.Target{IQN: bigTarget, Gateways: []string{"gw-a"}, AllowAnyInitiator: true})); err != nil {
				t.Error(err)
			}
		}
		return nil
	}
	r = e.do(api.RoleOperator, "DELETE", path, nil, "If-Match", tag)
	if r.status != http.StatusPreconditionFailed || !strings.Contains(r.err().Message, "send it again to finish") {
		t.Fatalf("If-Match broken between parts: %d %s", r.status, r.body)
	}
	if n := e.consistent(); n == 0 || n >= left {
		t.Fatalf("%d children left, before %d", n, left)
	}

	hs.before = nil
	var res model.WriteResult
	e.must(200, "DELETE", path, nil).decode(t, &res)
	if !deletes(res.Changes, cluster.TargetKey(bigTarget)) {
		t.Fatalf("retry: %d changes, none the target's delete", len(res.Changes))
	}
	if n := e.targetKeys(); n != 0 {
		t.Fatalf("%d keys of the target left", n)
	}
}

func deletes(changes []model.Change, k cluster.Key) bool {
	for _, c := range changes {
		if c.Op == "delete" && c.Key == string(k) {
			return true
		}
	}
	return false
}

// currentRev is etcd's current revision.
func (e *env) currentRev() int64 {
	e.t.Helper()
	resp, err := etcdCli.Get(context.Background(), e.prefix+"schema")
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.Header.Revision
}
