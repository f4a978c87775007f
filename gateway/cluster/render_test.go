package cluster

import (
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/rbdgw/rbdgw/gateway/config"
)

func TestRender(t *testing.T) {
	hostCHAP := config.CHAP{User: "host1", Secret: "host1secret12", MutualUser: "t1", MutualSecret: "targetsecret"}
	discovery := config.CHAP{User: "disc", Secret: "discsecret12"}
	tuning := config.Tuning{QueueDepth: 64, MaxBurstLength: 1 << 20}
	s := mustApply(t, fixture(t),
		PutHost(Host{Target: tIQN, Initiator: ini1, CHAP: &hostCHAP, LUNs: []uint64{0},
			Addresses: []string{"192.0.2.0/24", "10.0.0.7/32"}}),
		PutDiscoveryAuth(discovery),
		PutSettings(Settings{Tuning: tuning}),
		PutDisk(Disk{Pool: "rbd", Image: "c", Size: 4096, BlockSize: 4096, PhysicalBlockSize: 16384, ReadOnly: true}),
		PutTarget(Target{IQN: tIQN2, Gateways: []string{"gw2"}, AllowAnyInitiator: true}),
		PutLUN(LUN{Target: tIQN2, ID: 4, Disk: "rbd/c"}),
		PutLUN(LUN{Target: tIQN, ID: 1, Disk: "rbd/b"}),
	)
	a, b := s.Disks["rbd/a"], s.Disks["rbd/b"]
	want := &config.Config{
		Portals:       []string{"10.0.0.1:3260"},
		DiscoveryAuth: &discovery,
		Disks: []config.Disk{
			{Name: "rbd/a", Backend: "rbd", Size: 1 << 20, Pool: "rbd", Image: "a", BlockSize: 512, Serial: a.Serial, WWN: a.WWN},
			{Name: "rbd/b", Backend: "rbd", Size: 1 << 20, Pool: "rbd", Image: "b", BlockSize: 512, Serial: b.Serial, WWN: b.WWN},
		},
		Targets: []config.Target{{
			IQN:  tIQN,
			LUNs: []config.LUN{{ID: 0, Disk: "rbd/a"}, {ID: 1, Disk: "rbd/b"}},
			// host1 lists LUN 0 and two source addresses (canonical);
			// host2 takes group g1's empty list, from any address.
			ACLs: []config.ACL{{InitiatorIQN: ini1, CHAP: &hostCHAP, LUNs: &[]uint64{0}, Addresses: []string{"10.0.0.7", "192.0.2.0/24"}},
				{InitiatorIQN: ini2, LUNs: &[]uint64{}}},
			TPGT: 1,
		}},
		Tuning: tuning,
	}
	got, err := Render(s, "gw1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Render(gw1) =\n%+v\nwant\n%+v", got, want)
	}

	got2, err := Render(s, "gw2")
	if err != nil {
		t.Fatal(err)
	}
	if len(got2.Targets) != 2 || got2.Targets[0].TPGT != 2 || !got2.Targets[1].AllowAnyInitiator || len(got2.Disks) != 3 {
		t.Errorf("Render(gw2) = %+v", got2)
	}
	if c := got2.Disks[2]; c.BlockSize != 4096 || c.PhysicalBlockSize != 16384 || !c.ReadOnly {
		t.Errorf("disk c rendered as %+v", c)
	}
	// Both gateways present the same identity for a shared disk.
	if got2.Disks[0].WWN != got.Disks[0].WWN || got2.Disks[0].Serial != got.Disks[0].Serial {
		t.Error("gateways disagree on a disk's identity")
	}
	// The rendered config must not alias the snapshot.
	got.Targets[0].ACLs[0].CHAP.Secret = "changed"
	if s.Hosts[tIQN][ini1].CHAP.Secret != hostCHAP.Secret {
		t.Error("Render shares CHAP with the snapshot")
	}
	got.Targets[0].ACLs[0].Addresses[0] = "changed"
	if s.Hosts[tIQN][ini1].Addresses[0] != "10.0.0.7" {
		t.Error("Render shares addresses with the snapshot")
	}

	if _, err := Render(s, "gw9"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown gateway: %v", err)
	}
}

func TestVisibleLUNs(t *testing.T) {
	s := mustApply(t, fixture(t),
		PutLUN(LUN{Target: tIQN, ID: 1, Disk: "rbd/b"}),
		PutHostGroup(HostGroup{Target: tIQN, Name: "g1", Members: []string{ini2}, LUNs: []uint64{1}}),
	)
	ids := func(ls []LUN) []uint64 {
		var out []uint64
		for _, l := range ls {
			out = append(out, l.ID)
		}
		return out
	}
	tests := []struct {
		initiator string
		want      []uint64
	}{
		{ini1, []uint64{0}},                      // own subset
		{ini2, []uint64{1}},                      // its group's set
		{"eui.02004567a425678d", []uint64{0, 1}}, // no host entry: all
	}
	for _, tt := range tests {
		if got := ids(s.VisibleLUNs(tIQN, tt.initiator)); !slices.Equal(got, tt.want) {
			t.Errorf("VisibleLUNs(%s) = %v, want %v", tt.initiator, got, tt.want)
		}
	}
}

func TestPortGroups(t *testing.T) {
	s := mustApply(t, fixture(t), PutGateway(Gateway{Name: "gw0", Portals: []string{"10.0.0.9:3260"}, TPGID: 7}),
		PutTarget(Target{IQN: tIQN, Gateways: []string{"gw0", "gw2", "gw1"}}))
	got := s.PortGroups(tIQN)
	want := []PortGroup{
		{Gateway: "gw1", TPGID: 1, Portals: []string{"10.0.0.1:3260"}},
		{Gateway: "gw2", TPGID: 2, Portals: []string{"10.0.0.2:3260"}},
		{Gateway: "gw0", TPGID: 7, Portals: []string{"10.0.0.9:3260"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("PortGroups = %+v", got)
	}
	if s.PortGroups(tIQN2) != nil {
		t.Error("port groups of a missing target")
	}
}
