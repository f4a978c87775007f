package cluster

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/rbdgw/rbdgw/gateway/config"
)

const (
	tIQN  = "iqn.2003-01.org.example:t1"
	tIQN2 = "iqn.2003-01.org.example:t2"
	ini1  = "iqn.1991-05.com.microsoft:host1"
	ini2  = "iqn.1993-08.org.debian:01:host2"
)

// applyLocal commits ops to a copy of base the way etcd would: written
// values go through JSON and get the next revision.
func applyLocal(base *Snapshot, ops ...Op) (*Snapshot, error) {
	p, err := buildPlan(base, ops)
	if err != nil {
		return nil, err
	}
	next := base.clone()
	next.Rev = base.Rev + 1
	for _, k := range slices.Sorted(maps.Keys(p.writes)) {
		v, ok := p.draft.valueOf(k)
		if !ok {
			next.deleteKV(k)
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		next.applyKV(k, b, next.Rev)
	}
	for k := range p.sideDeletes {
		next.deleteKV(k)
	}
	return next, nil
}

func mustApply(t *testing.T, base *Snapshot, ops ...Op) *Snapshot {
	t.Helper()
	next, err := applyLocal(base, ops...)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return next
}

// fixture: two gateways serving target t1, disks rbd/a (LUN 0) and rbd/b
// (unmapped), host1 seeing LUN 0, host2 in group g1.
func fixture(t *testing.T) *Snapshot {
	t.Helper()
	return mustApply(t, newSnapshot(),
		PutGateway(Gateway{Name: "gw1", Portals: []string{"10.0.0.1:3260"}}),
		PutGateway(Gateway{Name: "gw2", Portals: []string{"10.0.0.2:3260"}}),
		PutDisk(Disk{Pool: "rbd", Image: "a", Size: 1 << 20}),
		PutDisk(Disk{Pool: "rbd", Image: "b", Size: 1 << 20}),
		PutTarget(Target{IQN: tIQN, Gateways: []string{"gw1", "gw2"}}),
		PutLUN(LUN{Target: tIQN, ID: 0, Disk: "rbd/a"}),
		PutHost(Host{Target: tIQN, Initiator: ini1, LUNs: []uint64{0}}),
		PutHost(Host{Target: tIQN, Initiator: ini2}),
		PutHostGroup(HostGroup{Target: tIQN, Name: "g1", Members: []string{ini2}}),
	)
}

func TestFixtureState(t *testing.T) {
	s := fixture(t)
	if s.SchemaVersion != SchemaVersion {
		t.Errorf("schema %d", s.SchemaVersion)
	}
	if s.Gateways["gw1"].TPGID != 1 || s.Gateways["gw2"].TPGID != 2 {
		t.Errorf("TPG ids not allocated lowest-first: %+v", s.Gateways)
	}
	a := s.Disks["rbd/a"]
	if a.BlockSize != 512 || len(a.Serial) != 32 || len(a.WWN) != 16 || !isHex(a.WWN) {
		t.Errorf("disk identity not generated: %+v", a)
	}
	if a.WWN == s.Disks["rbd/b"].WWN {
		t.Errorf("two disks got the same WWN")
	}
	if len(s.Damaged) != 0 {
		t.Errorf("damaged: %v", s.Damaged)
	}
}

func TestPlanReferences(t *testing.T) {
	chap := config.CHAP{User: "u", Secret: "abcdefghijkl"}
	tests := []struct {
		name string
		ops  []Op
		want error // nil: accepted
	}{
		{"map lun to missing disk", []Op{PutLUN(LUN{Target: tIQN, ID: 1, Disk: "rbd/zz"})}, ErrInvalid},
		{"map lun in missing target", []Op{PutLUN(LUN{Target: tIQN2, ID: 0, Disk: "rbd/b"})}, ErrNotFound},
		{"map a disk twice", []Op{PutLUN(LUN{Target: tIQN, ID: 1, Disk: "rbd/a"})}, ErrInUse},
		{"map a disk in two targets", []Op{
			PutTarget(Target{IQN: tIQN2}),
			PutLUN(LUN{Target: tIQN2, ID: 0, Disk: "rbd/a"}),
		}, ErrInUse},
		{"move a mapping", []Op{DeleteLUN(tIQN, 0), PutLUN(LUN{Target: tIQN, ID: 5, Disk: "rbd/a"})}, ErrInUse}, // host1 lists LUN 0
		{"remap an unlisted disk", []Op{PutLUN(LUN{Target: tIQN, ID: 3, Disk: "rbd/b"})}, nil},
		{"create disk and map it", []Op{
			PutDisk(Disk{Pool: "rbd", Image: "c", Size: 4096}),
			PutLUN(LUN{Target: tIQN, ID: 2, Disk: "rbd/c"}),
		}, nil},
		{"map before create in one change", []Op{
			PutLUN(LUN{Target: tIQN, ID: 2, Disk: "rbd/c"}),
			PutDisk(Disk{Pool: "rbd", Image: "c", Size: 4096}),
		}, nil},
		{"delete mapped disk", []Op{DeleteDisk("rbd/a")}, ErrInUse},
		{"delete unmapped disk", []Op{DeleteDisk("rbd/b")}, nil},
		{"delete missing disk", []Op{DeleteDisk("rbd/zz")}, ErrNotFound},
		{"unmap and delete disk", []Op{
			PutHost(Host{Target: tIQN, Initiator: ini1}),
			DeleteLUN(tIQN, 0),
			DeleteDisk("rbd/a"),
		}, nil},
		{"shrink disk", []Op{PutDisk(Disk{Pool: "rbd", Image: "a", Size: 1 << 19})}, ErrInvalid},
		{"grow disk", []Op{PutDisk(Disk{Pool: "rbd", Image: "a", Size: 1 << 21})}, nil},
		{"change wwn", []Op{PutDisk(Disk{Pool: "rbd", Image: "a", Size: 1 << 20, WWN: "0000000000000001"})}, ErrInvalid},
		{"change block size", []Op{PutDisk(Disk{Pool: "rbd", Image: "a", Size: 1 << 20, BlockSize: 4096})}, ErrInvalid},
		{"change physical block size", []Op{PutDisk(Disk{Pool: "rbd", Image: "a", Size: 1 << 20, PhysicalBlockSize: 512})}, ErrInvalid},
		{"default physical block size named", []Op{PutDisk(Disk{Pool: "rbd", Image: "a", Size: 1 << 20, PhysicalBlockSize: 4096})}, nil},
		{"delete gateway in use", []Op{DeleteGateway("gw1")}, ErrInUse},
		{"delete gateway after target", []Op{DeleteTarget(tIQN), DeleteGateway("gw1")}, nil},
		{"gateway tpg id taken", []Op{PutGateway(Gateway{Name: "gw3", Portals: []string{"10.0.0.3:3260"}, TPGID: 1})}, ErrInvalid},
		{"gateway portal taken", []Op{PutGateway(Gateway{Name: "gw3", Portals: []string{"10.0.0.1:3260"}})}, ErrInvalid},
		{"gateway renumbered", []Op{PutGateway(Gateway{Name: "gw1", Portals: []string{"10.0.0.1:3260"}, TPGID: 9})}, ErrInvalid},
		{"gateway portals changed", []Op{PutGateway(Gateway{Name: "gw1", Portals: []string{"10.0.0.9:3260"}})}, nil},
		{"target with unknown gateway", []Op{PutTarget(Target{IQN: tIQN2, Gateways: []string{"gw9"}})}, ErrInvalid},
		{"host with unknown lun", []Op{PutHost(Host{Target: tIQN, Initiator: ini1, LUNs: []uint64{7}})}, ErrInvalid},
		{"host in missing target", []Op{PutHost(Host{Target: tIQN2, Initiator: ini1})}, ErrNotFound},
		{"grouped host with own luns", []Op{PutHost(Host{Target: tIQN, Initiator: ini2, LUNs: []uint64{0}})}, ErrInvalid},
		{"group with missing member", []Op{PutHostGroup(HostGroup{Target: tIQN, Name: "g2", Members: []string{"eui.02004567a425678d"}})}, ErrInvalid},
		{"group member with own luns", []Op{PutHostGroup(HostGroup{Target: tIQN, Name: "g2", Members: []string{ini1}})}, ErrInvalid},
		{"host in two groups", []Op{PutHostGroup(HostGroup{Target: tIQN, Name: "g2", Members: []string{ini2}})}, ErrInUse},
		{"group with unknown lun", []Op{PutHostGroup(HostGroup{Target: tIQN, Name: "g1", Members: []string{ini2}, LUNs: []uint64{4}})}, ErrInvalid},
		{"unmap lun listed by host", []Op{DeleteLUN(tIQN, 0)}, ErrInUse},
		{"delete grouped host", []Op{DeleteHost(tIQN, ini2)}, ErrInUse},
		{"delete group then host", []Op{DeleteHostGroup(tIQN, "g1"), DeleteHost(tIQN, ini2)}, nil},
		{"delete target with children", []Op{DeleteTarget(tIQN)}, nil},
		{"delete missing target", []Op{DeleteTarget(tIQN2)}, ErrNotFound},
		{"recreate existing target", []Op{PutTarget(Target{IQN: tIQN}).IfAbsent()}, ErrExists},
		{"create target if absent", []Op{PutTarget(Target{IQN: tIQN2}).IfAbsent()}, nil},
		{"stale mod revision", []Op{PutTarget(Target{IQN: tIQN}).IfModRev(999)}, ErrConflict},
		{"mod revision of missing", []Op{PutTarget(Target{IQN: tIQN2}).IfModRev(5)}, ErrNotFound},
		{"bad discovery secret", []Op{PutDiscoveryAuth(config.CHAP{User: "u", Secret: "x"})}, ErrInvalid},
		{"discovery auth", []Op{PutDiscoveryAuth(chap)}, nil},
		{"delete unset discovery auth", []Op{DeleteDiscoveryAuth()}, ErrNotFound},
		{"bad settings", []Op{PutSettings(Settings{Tuning: config.Tuning{MaxConnections: -2}})}, ErrInvalid},
	}
	base := fixture(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := applyLocal(base, tt.ops...)
			if tt.want == nil && err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestPlanCurrentModRevAccepted(t *testing.T) {
	base := fixture(t)
	next := mustApply(t, base, PutTarget(Target{IQN: tIQN, Gateways: []string{"gw1"}}).IfModRev(base.ModRev(TargetKey(tIQN))))
	if got := next.Targets[tIQN].Gateways; !slices.Equal(got, []string{"gw1"}) {
		t.Errorf("gateways %v", got)
	}
}

func TestPlanDeleteTargetCascades(t *testing.T) {
	next := mustApply(t, fixture(t), DeleteTarget(tIQN))
	if len(next.Targets)+len(next.LUNs)+len(next.Hosts)+len(next.HostGroups) != 0 {
		t.Fatalf("children left: %+v %+v %+v", next.LUNs, next.Hosts, next.HostGroups)
	}
	if len(next.Disks) != 2 {
		t.Errorf("disks must survive their target")
	}
}

func TestPlanDiskIdentityKept(t *testing.T) {
	base := fixture(t)
	next := mustApply(t, base, PutDisk(Disk{Pool: "rbd", Image: "a", Size: 1 << 22, ReadOnly: true}))
	old, cur := base.Disks["rbd/a"], next.Disks["rbd/a"]
	if cur.Serial != old.Serial || cur.WWN != old.WWN || cur.BlockSize != old.BlockSize {
		t.Errorf("identity changed: %+v -> %+v", old, cur)
	}
	if cur.Size != 1<<22 || !cur.ReadOnly {
		t.Errorf("update lost: %+v", cur)
	}
	_, err := applyLocal(base, PutDisk(Disk{Pool: "rbd", Image: "c", Size: 512, WWN: old.WWN}))
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("duplicate WWN accepted: %v", err)
	}
}

func TestPlanDeleteDiskDropsOwnerAndReservations(t *testing.T) {
	p, err := buildPlan(fixture(t), []Op{DeleteDisk("rbd/b")})
	if err != nil {
		t.Fatal(err)
	}
	if !p.sideDeletes[OwnerKey("rbd/b")] || !p.sideDeletes[PRKey("rbd/b")] {
		t.Errorf("side deletes %v", p.sideDeletes)
	}
}

// The compares each change depends on are what makes concurrent writers
// safe; check the ones that catch write skew.
func TestPlanRecordsDependencies(t *testing.T) {
	base := fixture(t)
	tests := []struct {
		name   string
		ops    []Op
		reads  []Key
		guards []Key
	}{
		{"map lun", []Op{PutLUN(LUN{Target: tIQN, ID: 3, Disk: "rbd/b"})},
			[]Key{SchemaKey, TargetKey(tIQN), DiskKey("rbd/b")}, []Key{targetsPrefix}},
		{"delete disk", []Op{DeleteDisk("rbd/b")}, []Key{SchemaKey}, []Key{targetsPrefix}},
		// Its client record goes too: it must not have registered or
		// been given a disk meanwhile.
		{"delete gateway", []Op{DeleteTarget(tIQN), DeleteGateway("gw2")}, []Key{SchemaKey, LiveKey("gw2")},
			[]Key{targetsPrefix, targetChildrenPrefix(tIQN), targetHostsPrefix(tIQN), targetGroupsPrefix(tIQN), ownersPrefix}},
		{"new gateway", []Op{PutGateway(Gateway{Name: "gw3", Portals: []string{"10.0.0.3:3260"}})},
			[]Key{SchemaKey}, []Key{gatewaysPrefix}},
		{"target", []Op{PutTarget(Target{IQN: tIQN2, Gateways: []string{"gw1"}})},
			[]Key{SchemaKey, GatewayKey("gw1")}, nil},
		{"group", []Op{PutHostGroup(HostGroup{Target: tIQN, Name: "g1", Members: []string{ini2}, LUNs: []uint64{0}})},
			[]Key{SchemaKey, TargetKey(tIQN), LUNKey(tIQN, 0), HostKey(tIQN, ini2)}, []Key{targetGroupsPrefix(tIQN)}},
		{"host with luns", []Op{PutHost(Host{Target: tIQN, Initiator: ini1, LUNs: []uint64{0}})},
			[]Key{SchemaKey, TargetKey(tIQN), LUNKey(tIQN, 0)}, []Key{targetGroupsPrefix(tIQN)}},
		{"unmap", []Op{PutHost(Host{Target: tIQN, Initiator: ini1}), DeleteLUN(tIQN, 0)},
			[]Key{SchemaKey, TargetKey(tIQN)}, []Key{targetHostsPrefix(tIQN), targetGroupsPrefix(tIQN)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := buildPlan(base, tt.ops)
			if err != nil {
				t.Fatal(err)
			}
			if got := slices.Sorted(maps.Keys(p.reads)); !slices.Equal(got, sortedKeys(tt.reads)) {
				t.Errorf("reads %q, want %q", got, sortedKeys(tt.reads))
			}
			if got := slices.Sorted(maps.Keys(p.guards)); !slices.Equal(got, sortedKeys(tt.guards)) {
				t.Errorf("guards %q, want %q", got, sortedKeys(tt.guards))
			}
		})
	}
}

func sortedKeys(ks []Key) []Key {
	out := slices.Clone(ks)
	slices.Sort(out)
	if out == nil {
		out = []Key{}
	}
	return out
}

func TestPlanTooLarge(t *testing.T) {
	ops := []Op{PutTarget(Target{IQN: tIQN2})}
	for i := range 20 {
		ops = append(ops, PutHost(Host{Target: tIQN2, Initiator: "iqn.2001-04.com.example:h" + string(rune('a'+i))}))
	}
	p, err := buildPlan(fixture(t), ops)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.txn(DefaultPrefix, 10); !errors.Is(err, ErrTooLarge) {
		t.Errorf("txn = %v, want ErrTooLarge", err)
	}
	if _, _, err := p.txn(DefaultPrefix, DefaultMaxTxnOps); err != nil {
		t.Errorf("txn = %v", err)
	}
}

func TestPlanRefusesNewerSchema(t *testing.T) {
	base := newSnapshot()
	base.SchemaVersion = SchemaVersion + 1
	if _, err := buildPlan(base, []Op{PutSettings(Settings{})}); !errors.Is(err, ErrSchema) {
		t.Errorf("got %v, want ErrSchema", err)
	}
}

func TestSnapshotDamagedKey(t *testing.T) {
	s := fixture(t)
	s.applyKV(TargetKey(tIQN2), []byte("{not json"), 99)
	if _, ok := s.Targets[tIQN2]; ok {
		t.Fatal("undecodable target decoded")
	}
	if _, ok := s.Damaged[TargetKey(tIQN2)]; !ok {
		t.Fatal("damage not recorded")
	}
	// Deleting the broken entity repairs the state.
	next := mustApply(t, s, DeleteTarget(tIQN2))
	if len(next.Damaged) != 0 {
		t.Errorf("still damaged: %v", next.Damaged)
	}
}

func TestPlanPhysicalBlockSizeKept(t *testing.T) {
	s := mustApply(t, fixture(t), PutDisk(Disk{Pool: "rbd", Image: "c", Size: 1 << 20, PhysicalBlockSize: 512}))
	s = mustApply(t, s, PutDisk(Disk{Pool: "rbd", Image: "c", Size: 1 << 21}))
	if got := s.Disks["rbd/c"].PhysicalBlockSize; got != 512 {
		t.Errorf("physical block size after a put without one: %d, want 512", got)
	}
	if _, err := applyLocal(s, PutDisk(Disk{Pool: "rbd", Image: "c", Size: 1 << 21, PhysicalBlockSize: 4096})); !errors.Is(err, ErrInvalid) {
		t.Errorf("changing the physical block size: %v, want ErrInvalid", err)
	}
}
