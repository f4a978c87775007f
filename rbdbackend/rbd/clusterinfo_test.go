//go:build pacific

package rbd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/ceph/go-ceph/rados"
)

// The samples in testdata/cluster are replies of a micro cluster (Ceph
// 16.2.15, one mon, one memstore OSD) to the commands Health and Pools send:
//
//	ok_*     healthy, with a mgr: pools rbd and device_health_metrics
//	warn_*   noout set; an erasure pool "ecdata" (profile ec21, k=2 m=1,
//	         allow_ec_overwrites, application rbd) whose PGs cannot be
//	         placed on one OSD; a replicated pool "plain" without an
//	         application; 16 MiB written to an image in rbd
//	nomgr_*  a new cluster whose mgr never ran: "df" knows no pools
//	mgrdown_* (status, health detail) such a cluster 2 minutes on: the
//	         mons warn MGR_DOWN (they escalate it to an error only after
//	         an active mgr went away)

func sample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "cluster", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseHealth(t *testing.T) {
	const fsid = "bfe3a98f-4a7d-4259-b17b-7cfb2a0cdf61"
	tests := []struct {
		sample string
		want   Health
	}{
		{"ok", Health{FSID: fsid, Status: HealthOK, Checks: []HealthCheck{}, Mons: 1, Quorum: []string{"a"},
			OSDs: 1, OSDsUp: 1, OSDsIn: 1, MgrAvailable: true}},
		{"warn", Health{FSID: fsid, Status: HealthWarn, Checks: []HealthCheck{
			{Name: "OSDMAP_FLAGS", Severity: HealthWarn, Summary: "noout flag(s) set", Count: 5},
			{Name: "PG_AVAILABILITY", Severity: HealthWarn, Summary: "Reduced data availability: 8 pgs incomplete", Count: 8,
				Detail: pgIncomplete(8)},
		}, Mons: 1, Quorum: []string{"a"}, OSDs: 1, OSDsUp: 1, OSDsIn: 1, MgrAvailable: true}},
		{"nomgr", Health{FSID: "d4636f3b-1655-4e81-802b-80610fe2ef7d", Status: HealthOK, Checks: []HealthCheck{},
			Mons: 1, Quorum: []string{"a"}, OSDs: 1, OSDsUp: 1, OSDsIn: 1}},
		{"mgrdown", Health{FSID: "ec618ce1-8b9d-486b-96ca-c55b7d3c3c6f", Status: HealthWarn, Checks: []HealthCheck{
			{Name: "MGR_DOWN", Severity: HealthWarn, Summary: "no active mgr"},
		}, Mons: 1, Quorum: []string{"a"}, OSDs: 1, OSDsUp: 1, OSDsIn: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.sample, func(t *testing.T) {
			got, err := parseHealth(sample(t, tc.sample+"_status"), sample(t, tc.sample+"_health_detail"))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func pgIncomplete(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("pg 3.%d is creating+incomplete, acting [0,2147483647,2147483647] "+
			"(reducing pool ecdata min_size from 2 may help; search ceph.com/docs for 'incomplete')", i))
	}
	return out
}

func TestParseHealthOrderAndErrors(t *testing.T) {
	status := sample(t, "ok_status")
	detail := []byte(`{"status":"HEALTH_ERR","checks":{
		"B_WARN":{"severity":"HEALTH_WARN","summary":{"message":"b","count":1},"detail":[],"muted":true},
		"Z_ERR":{"severity":"HEALTH_ERR","summary":{"message":"z","count":2},"detail":[{"message":"z1"}],"muted":false},
		"A_WARN":{"severity":"HEALTH_WARN","summary":{"message":"a","count":3},"muted":false},
		"C_ERR":{"severity":"HEALTH_ERR","summary":{"message":"c","count":4},"muted":false}},"mutes":[]}`)
	h, err := parseHealth(status, detail)
	if err != nil {
		t.Fatal(err)
	}
	want := []HealthCheck{
		{Name: "C_ERR", Severity: HealthErr, Summary: "c", Count: 4},
		{Name: "Z_ERR", Severity: HealthErr, Summary: "z", Count: 2, Detail: []string{"z1"}},
		{Name: "A_WARN", Severity: HealthWarn, Summary: "a", Count: 3},
		{Name: "B_WARN", Severity: HealthWarn, Summary: "b", Count: 1, Muted: true},
	}
	if h.Status != HealthErr || !reflect.DeepEqual(h.Checks, want) {
		t.Errorf("got %s %+v\nwant HEALTH_ERR %+v", h.Status, h.Checks, want)
	}

	bad := []struct{ name, status, detail string }{
		{"status not JSON", "HEALTH_OK", `{"status":"HEALTH_OK"}`},
		{"status without fsid", `{}`, `{"status":"HEALTH_OK"}`},
		{"detail not JSON", string(status), `HEALTH_OK`},
		{"detail without status", string(status), `{"checks":{}}`},
		{"checks of the wrong type", string(status), `{"status":"HEALTH_OK","checks":[]}`},
	}
	for _, tc := range bad {
		if _, err := parseHealth([]byte(tc.status), []byte(tc.detail)); !errors.Is(err, ErrBadReply) {
			t.Errorf("%s: err = %v, want ErrBadReply", tc.name, err)
		}
	}
}

func TestParsePools(t *testing.T) {
	rbdPool := PoolInfo{Name: "rbd", ID: 1, Type: PoolReplicated, Size: 1, MinSize: 1, PGs: 8,
		Applications: []string{"rbd"}, RBD: true}
	health := PoolInfo{Name: "device_health_metrics", ID: 2, Type: PoolReplicated, Size: 1, MinSize: 1, PGs: 1,
		Applications: []string{"mgr_devicehealth"}, StatsKnown: true}
	stats := func(p PoolInfo, objects, stored, used, avail int64) PoolInfo {
		p.StatsKnown, p.Objects, p.Stored, p.Used, p.MaxAvail = true, objects, stored, used, avail
		return p
	}
	tests := []struct {
		sample string
		want   []PoolInfo
	}{
		{"ok", []PoolInfo{
			stats(health, 0, 0, 0, 2040077696),
			stats(rbdPool, 2, 22, 22, 2040077696),
		}},
		{"warn", []PoolInfo{
			stats(health, 0, 0, 0, 2023271808),
			stats(PoolInfo{Name: "ecdata", ID: 3, Type: PoolErasure, Size: 3, MinSize: 2, PGs: 8,
				ECProfile: "ec21", ECK: 2, ECM: 1, AllowECOverwrites: true,
				Applications: []string{"rbd"}, RBD: true}, 0, 0, 0, 1348847872),
			stats(PoolInfo{Name: "plain", ID: 4, Type: PoolReplicated, Size: 1, MinSize: 1, PGs: 8,
				Applications: []string{}}, 0, 0, 0, 2023271808),
			stats(rbdPool, 22, 16777292, 16777292, 2023271808),
		}},
		{"nomgr", []PoolInfo{rbdPool}},
	}
	for _, tc := range tests {
		t.Run(tc.sample, func(t *testing.T) {
			got, err := parsePools(sample(t, tc.sample+"_osd_dump"), sample(t, tc.sample+"_df"))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParsePoolsEdgeCases(t *testing.T) {
	// An erasure pool whose profile is not in the dump, a pool type Ceph
	// does not have, and several applications.
	dump := []byte(`{"epoch":7,"pools":[
		{"pool":5,"pool_name":"ec","type":3,"size":6,"min_size":5,"pg_num":32,"flags_names":"hashpspool",
		 "erasure_code_profile":"gone","application_metadata":{"rgw":{},"rbd":{},"cephfs":{"data":"fs"}}},
		{"pool":6,"pool_name":"odd","type":2,"size":1,"min_size":1,"pg_num":1,"flags_names":"","application_metadata":{}}],
		"erasure_code_profiles":{}}`)
	got, err := parsePools(dump, []byte(`{"pools":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []PoolInfo{
		{Name: "ec", ID: 5, Type: PoolErasure, Size: 6, MinSize: 5, PGs: 32, ECProfile: "gone",
			Applications: []string{"cephfs", "rbd", "rgw"}, RBD: true},
		{Name: "odd", ID: 6, Type: "type-2", Size: 1, MinSize: 1, PGs: 1, Applications: []string{}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}

	okDump, okDF := sample(t, "ok_osd_dump"), sample(t, "ok_df")
	bad := []struct {
		name     string
		dump, df []byte
	}{
		{"dump not JSON", []byte("pool 1 'rbd'"), okDF},
		{"dump without epoch", []byte(`{"pools":[]}`), okDF},
		{"df not JSON", okDump, []byte("RAW STORAGE")},
		{"df of the wrong shape", okDump, []byte(`[]`)},
		{"stats of the wrong type", okDump, []byte(`{"pools":[{"id":1,"stats":{"stored":"many"}}]}`)},
	}
	for _, tc := range bad {
		if _, err := parsePools(tc.dump, tc.df); !errors.Is(err, ErrBadReply) {
			t.Errorf("%s: err = %v, want ErrBadReply", tc.name, err)
		}
	}
}

// Against the test cluster.

func TestHealth(t *testing.T) {
	c := sharedCluster(t)
	h, err := c.Health()
	if err != nil {
		t.Fatalf("Health: %v", err)
	}
	t.Logf("%+v", h)
	var fsid string
	c.withConn(func(conn *rados.Conn, _ uint64) error {
		fsid, err = conn.GetFSID()
		return err
	})
	if err != nil || h.FSID != fsid {
		t.Errorf("FSID = %q, want %q (%v)", h.FSID, fsid, err)
	}
	switch h.Status {
	case HealthOK, HealthWarn:
	case HealthErr:
		// The test cluster may run without a mgr: the mons warn MGR_DOWN,
		// an error once a mgr that was active went away.
		for _, hc := range h.Checks {
			if hc.Severity == HealthErr && (hc.Name != "MGR_DOWN" || h.MgrAvailable) {
				t.Errorf("health check %+v", hc)
			}
		}
	default:
		t.Errorf("Status = %q", h.Status)
	}
	if h.Status != HealthOK && len(h.Checks) == 0 {
		t.Errorf("%s without checks", h.Status)
	}
	if h.Mons < 1 || len(h.Quorum) < 1 || len(h.Quorum) > h.Mons {
		t.Errorf("Mons = %d, Quorum = %v", h.Mons, h.Quorum)
	}
	if h.OSDs < 1 || h.OSDsUp != h.OSDs || h.OSDsIn != h.OSDs {
		t.Errorf("OSDs %d, up %d, in %d; want all of at least one up and in", h.OSDs, h.OSDsUp, h.OSDsIn)
	}
}

func TestPools(t *testing.T) {
	c := sharedCluster(t)
	pools, err := c.Pools()
	if err != nil {
		t.Fatalf("Pools: %v", err)
	}
	i := slices.IndexFunc(pools, func(p PoolInfo) bool { return p.Name == testPool })
	if i < 0 {
		t.Fatalf("Pools = %+v, no %q", pools, testPool)
	}
	p := pools[i]
	if p.Type != PoolReplicated || p.Size != 1 || !p.RBD || !slices.Contains(p.Applications, "rbd") || p.ID <= 0 {
		t.Errorf("pool %+v, want replicated, size 1, application rbd", p)
	}
	if one, err := c.Pool(testPool); err != nil || !reflect.DeepEqual(one.Applications, p.Applications) || one.ID != p.ID {
		t.Errorf("Pool(%q) = %+v, %v; want %+v", testPool, one, err, p)
	}
	for _, name := range []string{"no-such-pool", ""} {
		if _, err := c.Pool(name); !errors.Is(err, ErrNotFound) {
			t.Errorf("Pool(%q) = %v, want ErrNotFound", name, err)
		}
	}
	if _, err := c.List("no-such-pool"); !errors.Is(err, ErrNotFound) {
		t.Errorf("List of a missing pool = %v, want ErrNotFound", err)
	}

	t.Run("statistics", func(t *testing.T) {
		requireMgr(t, c)
		if !p.StatsKnown || p.MaxAvail <= 0 {
			t.Errorf("pool %+v, want statistics with max_avail > 0", p)
		}
	})
}

// TestPoolStoredGrows writes to an image in a pool of its own and waits
// for the pool's statistics to show the data.
func TestPoolStoredGrows(t *testing.T) {
	c := sharedCluster(t)
	requireMgr(t, c)
	pool := imageName(t)
	err := c.withConn(func(conn *rados.Conn, _ uint64) error {
		return cephError("make pool", pool, conn.MakePool(pool), ctxAdmin)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.withConn(func(conn *rados.Conn, _ uint64) error { return conn.DeletePool(pool) })
	})
	cmd := fmt.Sprintf(`{"prefix":"osd pool application enable","pool":%s,"app":"rbd"}`, jsonString(pool))
	if err := c.monCommand("application enable", cmd, nil); err != nil {
		t.Fatal(err)
	}
	before, err := c.Pool(pool)
	if err != nil {
		t.Fatalf("Pool: %v", err)
	}
	if !before.RBD || before.Type != PoolReplicated {
		t.Errorf("new pool %+v, want replicated with application rbd", before)
	}

	const written = 4 << 20
	name := imageName(t)
	if err := c.Create(pool, name, 16<<20, CreateOptions{}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() { c.Remove(pool, name) })
	img, err := c.Open(pool, name)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	mustWrite(t, img, randomBytes(1, written), 0)
	if err := img.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if names, err := c.List(pool); err != nil || !slices.Equal(names, []string{name}) {
		t.Errorf("List = %v, %v; want [%s]", names, err, name)
	}

	// OSDs report to the mgr and the mgr to the mons every few seconds.
	var after PoolInfo
	eventually(t, 60*time.Second, "the pool's stored bytes to grow", func() bool {
		after, err = c.Pool(pool)
		return err == nil && after.StatsKnown && after.Stored >= before.Stored+written
	})
	if after.Used < written || after.Objects < 1 || after.MaxAvail <= 0 {
		t.Errorf("after writing %d bytes: %+v", written, after)
	}
	t.Logf("before %+v\nafter  %+v", before, after)
}

// requireMgr skips the rest of a test when the cluster has no active mgr:
// pool statistics come from it.
func requireMgr(t *testing.T, c *Cluster) {
	t.Helper()
	h, err := c.Health()
	if err != nil {
		t.Fatalf("Health: %v", err)
	}
	if !h.MgrAvailable {
		t.Skip("pool statistics need an active ceph-mgr (start the micro cluster with CEPH_MGR=1)")
	}
}
