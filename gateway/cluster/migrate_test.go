package cluster

import (
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"slices"
	"testing"
)

const (
	ini3 = "iqn.1998-01.com.vmware:esx3"
	ini4 = "eui.02004567a425678d"
)

// schema1Records are the keys a schema 1 cluster holds, as a build of that
// schema wrote them: empty LUN lists (meaning every LUN) are absent.
// Target t1 has LUNs 0 and 3; host1 lists LUN 0; host2 (empty) is in group
// g1 (empty); host3 is empty and in no group; group g2 lists LUN 3 for
// host4. Target t2 has no LUNs and an empty host.
func schema1Records() map[Key]string {
	return map[Key]string{
		SchemaKey:                `{"version":1}`,
		GatewayKey("gw1"):        `{"name":"gw1","portals":["10.0.0.1:3260"],"tpg_id":1}`,
		DiskKey("rbd/a"):         `{"pool":"rbd","image":"a","size":1048576,"block_size":512,"serial":"0123456789abcdef0123456789abcdef","wwn":"0123456789abcdef"}`,
		DiskKey("rbd/b"):         `{"pool":"rbd","image":"b","size":1048576,"block_size":512,"serial":"0123456789abcdef0123456789abcde0","wwn":"0123456789abcde0"}`,
		TargetKey(tIQN):          `{"iqn":"` + tIQN + `","gateways":["gw1"]}`,
		LUNKey(tIQN, 0):          `{"target":"` + tIQN + `","id":0,"disk":"rbd/a"}`,
		LUNKey(tIQN, 3):          `{"target":"` + tIQN + `","id":3,"disk":"rbd/b"}`,
		HostKey(tIQN, ini1):      `{"target":"` + tIQN + `","initiator":"` + ini1 + `","luns":[0]}`,
		HostKey(tIQN, ini2):      `{"target":"` + tIQN + `","initiator":"` + ini2 + `"}`,
		HostKey(tIQN, ini3):      `{"target":"` + tIQN + `","initiator":"` + ini3 + `","chap":{"user":"u3","secret":"host3secret1"}}`,
		HostKey(tIQN, ini4):      `{"target":"` + tIQN + `","initiator":"` + ini4 + `"}`,
		HostGroupKey(tIQN, "g1"): `{"target":"` + tIQN + `","name":"g1","members":["` + ini2 + `"]}`,
		HostGroupKey(tIQN, "g2"): `{"target":"` + tIQN + `","name":"g2","members":["` + ini4 + `"],"luns":[3]}`,
		TargetKey(tIQN2):         `{"iqn":"` + tIQN2 + `","gateways":["gw1"]}`,
		HostKey(tIQN2, ini1):     `{"target":"` + tIQN2 + `","initiator":"` + ini1 + `"}`,
	}
}

func schema1Snapshot(t *testing.T) *Snapshot {
	t.Helper()
	s := newSnapshot()
	rev := int64(1)
	for _, k := range slices.Sorted(maps.Keys(schema1Records())) {
		rev++
		s.applyKV(k, []byte(schema1Records()[k]), rev)
	}
	s.Rev = rev
	if len(s.Damaged) != 0 || s.SchemaVersion != 1 {
		t.Fatalf("schema 1 fixture: version %d, damaged %v", s.SchemaVersion, s.Damaged)
	}
	return s
}

// wantMigrated is what every host and group of schema1Records lists after
// the migration.
var wantMigrated = map[Key][]uint64{
	HostKey(tIQN, ini1):      {0},    // explicit already
	HostKey(tIQN, ini2):      {},     // grouped: takes g1's list
	HostKey(tIQN, ini3):      {0, 3}, // was "all"
	HostKey(tIQN, ini4):      {},     // grouped
	HostGroupKey(tIQN, "g1"): {0, 3}, // was "all"
	HostGroupKey(tIQN, "g2"): {3},
	HostKey(tIQN2, ini1):     {}, // no LUNs: all and none agree
}

func listsOf(s *Snapshot) map[Key][]uint64 {
	out := map[Key][]uint64{}
	for iqn, hosts := range s.Hosts {
		for name, h := range hosts {
			out[HostKey(iqn, name)] = append([]uint64{}, h.LUNs...)
		}
	}
	for iqn, groups := range s.HostGroups {
		for name, g := range groups {
			out[HostGroupKey(iqn, name)] = append([]uint64{}, g.LUNs...)
		}
	}
	return out
}

// The views a schema 1 cluster meant are the views it has once migrated,
// and a reader of the new build sees them before the migration too.
func TestViewsAcrossMigration(t *testing.T) {
	old := schema1Snapshot(t)
	migrated := mustApply(t, old) // a commit without ops migrates
	tests := []struct {
		iqn, initiator string
		want           []uint64
	}{
		{tIQN, ini1, []uint64{0}},
		{tIQN, ini2, []uint64{0, 3}}, // g1, empty under schema 1: all
		{tIQN, ini3, []uint64{0, 3}},
		{tIQN, ini4, []uint64{3}},
		{tIQN, "iqn.2001-04.com.example:unlisted", []uint64{0, 3}},
		{tIQN2, ini1, nil},
	}
	ids := func(ls []LUN) []uint64 {
		var out []uint64
		for _, l := range ls {
			out = append(out, l.ID)
		}
		return out
	}
	for _, tt := range tests {
		for name, s := range map[string]*Snapshot{"schema 1": old, "migrated": migrated} {
			if got := ids(s.VisibleLUNs(tt.iqn, tt.initiator)); !slices.Equal(got, tt.want) {
				t.Errorf("%s: VisibleLUNs(%s, %s) = %v, want %v", name, tt.iqn, tt.initiator, got, tt.want)
			}
		}
	}
	// Both render the same views, and the rendered configurations are valid.
	for _, s := range []*Snapshot{old, migrated} {
		cfg, err := Render(s, "gw1")
		if err != nil {
			t.Fatal(err)
		}
		cfg.ApplyDefaults()
		if err := cfg.Validate(); err != nil {
			t.Errorf("schema %d: rendered configuration invalid: %v", s.SchemaVersion, err)
		}
		got := map[string][]uint64{}
		for _, a := range cfg.Targets[0].ACLs {
			v, all := a.View()
			if all {
				t.Errorf("schema %d: host %s rendered without an explicit view", s.SchemaVersion, a.InitiatorIQN)
			}
			got[a.InitiatorIQN] = v
		}
		want := map[string][]uint64{ini1: {0}, ini2: {0, 3}, ini3: {0, 3}, ini4: {3}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("schema %d: rendered views %v, want %v", s.SchemaVersion, got, want)
		}
	}
}

func TestMigratePlan(t *testing.T) {
	old := schema1Snapshot(t)
	p, err := buildPlan(old, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The schema and every record whose meaning changes, nothing else.
	wantWrites := []Key{SchemaKey, HostKey(tIQN, ini3), HostGroupKey(tIQN, "g1")}
	if got := slices.Sorted(maps.Keys(p.writes)); !slices.Equal(got, sortedKeys(wantWrites)) {
		t.Errorf("writes %q, want %q", got, sortedKeys(wantWrites))
	}
	// A LUN mapped meanwhile would be missing from the lists: the targets
	// range is guarded, the schema key compared.
	if !p.guards[targetsPrefix] || !p.reads[SchemaKey] {
		t.Errorf("guards %v reads %v", p.guards, p.reads)
	}
	migrated := mustApply(t, old)
	if migrated.SchemaVersion != SchemaVersion {
		t.Errorf("schema %d after migration", migrated.SchemaVersion)
	}
	if got := listsOf(migrated); !reflect.DeepEqual(got, wantMigrated) {
		t.Errorf("lists after migration:\n%v\nwant\n%v", got, wantMigrated)
	}
	if migrated.Hosts[tIQN][ini3].CHAP.Secret != "host3secret1" {
		t.Error("the migration lost a host's CHAP")
	}
	// Once migrated, a commit without ops writes nothing.
	if p, err := buildPlan(migrated, nil); err != nil || len(p.writes) != 0 {
		t.Errorf("second migration: %v, writes %v", err, p.writes)
	}
}

func TestMigrateWithOps(t *testing.T) {
	old := schema1Snapshot(t)
	next := mustApply(t, old, PutHost(Host{Target: tIQN, Initiator: ini3})) // now: no LUN
	if next.SchemaVersion != SchemaVersion || len(next.Hosts[tIQN][ini3].LUNs) != 0 {
		t.Errorf("schema %d, host3 %v", next.SchemaVersion, next.Hosts[tIQN][ini3].LUNs)
	}
	if got := next.HostGroups[tIQN]["g1"].LUNs; !slices.Equal(got, []uint64{0, 3}) {
		t.Errorf("g1 not migrated with the op: %v", got)
	}
	// A LUN a migrated list names cannot be deleted.
	if _, err := applyLocal(next, DeleteLUN(tIQN, 3)); !errors.Is(err, ErrInUse) {
		t.Errorf("delete a listed LUN: %v, want ErrInUse", err)
	}
}

func TestMigrateRefusesUnreadableHosts(t *testing.T) {
	old := schema1Snapshot(t)
	old.applyKV(HostKey(tIQN, "iqn.2001-04.com.example:broken"), []byte("{not json"), old.Rev+1)
	if _, err := buildPlan(old, nil); !errors.Is(err, ErrSchema) {
		t.Errorf("migration over an undecodable host: %v, want ErrSchema", err)
	}
	// Deleting the broken record repairs the cluster and migrates it.
	next := mustApply(t, old, DeleteHost(tIQN, "iqn.2001-04.com.example:broken"))
	if next.SchemaVersion != SchemaVersion {
		t.Errorf("schema %d", next.SchemaVersion)
	}
}

// The migration against a real etcd: records written by a schema 1
// writer, migrated by the first store that opens the cluster to write, in
// one transaction.
func TestMigrateEtcd(t *testing.T) {
	e, s := startStore(t)
	ctx := testContext(t)
	cli := newClient(t, e.endpoint())
	for k, v := range schema1Records() {
		if _, err := cli.Put(ctx, s.prefix+string(k), v); err != nil {
			t.Fatal(err)
		}
	}
	before, rev0, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	from, err := s.Migrate(ctx)
	if err != nil || from != 1 {
		t.Fatalf("Migrate = %d, %v", from, err)
	}
	after, rev1, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.SchemaVersion != SchemaVersion {
		t.Errorf("schema %d after Migrate", after.SchemaVersion)
	}
	if rev1 != rev0+1 {
		t.Errorf("revision %d -> %d: the migration took more than one transaction", rev0, rev1)
	}
	if got := listsOf(after); !reflect.DeepEqual(got, wantMigrated) {
		t.Errorf("lists after migration:\n%v\nwant\n%v", got, wantMigrated)
	}
	// The stored records say what they mean, to etcdctl too.
	resp, err := cli.Get(ctx, s.prefix+string(HostKey(tIQN, ini3)))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(resp.Kvs[0].Value, &raw); err != nil || !reflect.DeepEqual(raw["luns"], []any{0.0, 3.0}) {
		t.Errorf("stored host3: %s", resp.Kvs[0].Value)
	}
	// Untouched records keep their revision.
	if after.ModRev(HostKey(tIQN, ini1)) != before.ModRev(HostKey(tIQN, ini1)) {
		t.Error("an explicit list was rewritten")
	}
	// Migrating again does nothing.
	if from, err := s.Migrate(ctx); err != nil || from != SchemaVersion {
		t.Errorf("second Migrate = %d, %v", from, err)
	}
	if _, rev2, _ := s.Load(ctx); rev2 != rev1 {
		t.Errorf("second Migrate wrote (revision %d -> %d)", rev1, rev2)
	}
	// An empty cluster has nothing to migrate, and gets no schema key
	// until its first write.
	empty := newStore(t, cli, Options{Prefix: "/empty/"})
	if from, err := empty.Migrate(ctx); err != nil || from != 0 {
		t.Errorf("Migrate of an empty cluster = %d, %v", from, err)
	}
	if r, _ := cli.Get(ctx, "/empty/schema"); len(r.Kvs) != 0 {
		t.Error("Migrate of an empty cluster wrote the schema key")
	}
}

// A LUN mapped by a schema 1 writer between the migrating writer's read
// and its commit fails the commit; the retry lists it.
func TestMigrateEtcdConcurrentLUN(t *testing.T) {
	e, s := startStore(t)
	ctx := testContext(t)
	cli := newClient(t, e.endpoint())
	for k, v := range schema1Records() {
		if _, err := cli.Put(ctx, s.prefix+string(k), v); err != nil {
			t.Fatal(err)
		}
	}
	base, _, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, s.prefix+string(DiskKey("rbd/c")),
		`{"pool":"rbd","image":"c","size":1048576,"block_size":512,"serial":"0123456789abcdef0123456789abcde1","wwn":"0123456789abcde1"}`); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, s.prefix+string(LUNKey(tIQN, 7)), `{"target":"`+tIQN+`","id":7,"disk":"rbd/c"}`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, base); !errors.Is(err, ErrConflict) {
		t.Fatalf("migration over a stale read: %v, want a conflict", err)
	}
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	after, _, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := after.Hosts[tIQN][ini3].LUNs; !slices.Equal(got, []uint64{0, 3, 7}) {
		t.Errorf("host3 after the retried migration: %v", got)
	}
}

// A build of this schema refuses a cluster of a newer one, for reading
// and for migrating.
func TestMigrateRefusesNewerSchema(t *testing.T) {
	e, s := startStore(t)
	ctx := testContext(t)
	cli := newClient(t, e.endpoint())
	if _, err := cli.Put(ctx, s.prefix+string(SchemaKey), `{"version":99}`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Migrate(ctx); !errors.Is(err, ErrSchema) {
		t.Errorf("Migrate of schema 99: %v, want ErrSchema", err)
	}
}
