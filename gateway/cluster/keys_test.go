package cluster

import "testing"

func TestParseKey(t *testing.T) {
	const iqn = "iqn.2003-01.org.example:t1"
	tests := []struct {
		key  Key
		want keyRef
	}{
		{SchemaKey, keyRef{kind: kindSchema}},
		{SettingsKey, keyRef{kind: kindSettings}},
		{DiscoveryAuthKey, keyRef{kind: kindDiscoveryAuth}},
		{GatewayKey("gw1"), keyRef{kind: kindGateway, name: "gw1"}},
		{LiveKey("gw1"), keyRef{kind: kindLive, name: "gw1"}},
		{DiskKey("rbd/img"), keyRef{kind: kindDisk, name: "rbd/img"}},
		{OwnerKey("rbd/img"), keyRef{kind: kindOwner, name: "rbd/img"}},
		{PRKey("rbd/img"), keyRef{kind: kindPR, name: "rbd/img"}},
		{TargetKey(iqn), keyRef{kind: kindTarget, target: iqn}},
		{LUNKey(iqn, 7), keyRef{kind: kindLUN, target: iqn, lun: 7}},
		{HostKey(iqn, "iqn.1991-05.com.microsoft:h"), keyRef{kind: kindHost, target: iqn, name: "iqn.1991-05.com.microsoft:h"}},
		{HostGroupKey(iqn, "g1"), keyRef{kind: kindHostGroup, target: iqn, name: "g1"}},
		// Unknown or malformed keys are ignored, never misread.
		{"", keyRef{}},
		{"targets/", keyRef{}},
		{"targets/" + iqn + "/luns", keyRef{}},
		{"targets/" + iqn + "/luns/", keyRef{}},
		{"targets/" + iqn + "/luns/07", keyRef{}},
		{"targets/" + iqn + "/luns/x", keyRef{}},
		{"targets/" + iqn + "/other/x", keyRef{}},
		{"targets/" + iqn + "/hosts/a/b", keyRef{}},
		{"disks/rbd", keyRef{}},
		{"disks/rbd/a/b", keyRef{}},
		{"gateways/", keyRef{}},
		{"gateways/a/b", keyRef{}},
		{"epoch", keyRef{}},
	}
	for _, tt := range tests {
		got := parseKey(tt.key)
		if got != tt.want {
			t.Errorf("parseKey(%q) = %+v, want %+v", tt.key, got, tt.want)
		}
		if got.kind != kindUnknown && got.key() != tt.key {
			t.Errorf("parseKey(%q).key() = %q", tt.key, got.key())
		}
	}
}

func FuzzParseKey(f *testing.F) {
	for _, k := range []string{"schema", "targets/iqn.2001-04.com.x:t/luns/3", "disks/p/i", "live/gw", "targets/a/hosts/b"} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, k string) {
		ref := parseKey(Key(k))
		if ref.kind != kindUnknown && ref.key() != Key(k) {
			t.Fatalf("parseKey(%q) = %+v rebuilds as %q", k, ref, ref.key())
		}
	})
}

func TestSplitDiskID(t *testing.T) {
	tests := []struct {
		id          string
		pool, image string
		ok          bool
	}{
		{"rbd/a", "rbd", "a", true},
		{"rbd", "", "", false},
		{"/a", "", "", false},
		{"rbd/", "", "", false},
		{"rbd/a/b", "", "", false},
	}
	for _, tt := range tests {
		pool, image, ok := SplitDiskID(tt.id)
		if pool != tt.pool || image != tt.image || ok != tt.ok {
			t.Errorf("SplitDiskID(%q) = %q, %q, %v", tt.id, pool, image, ok)
		}
	}
}
