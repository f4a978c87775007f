package cluster

import "testing"

func TestDescribeKey(t *testing.T) {
	const iqn = "iqn.2003-01.org.example:t1"
	tests := []struct {
		key  Key
		want KeyInfo
		ok   bool
	}{
		{SchemaKey, KeyInfo{Kind: KindSchema, Config: true}, true},
		{DiscoveryAuthKey, KeyInfo{Kind: KindDiscoveryAuth, Config: true}, true},
		{GatewayKey("gw1"), KeyInfo{Kind: KindGateway, Name: "gw1", Config: true}, true},
		{HostKey(iqn, "iqn.1991-05.com.microsoft:h"), KeyInfo{Kind: KindHost, Target: iqn, Name: "iqn.1991-05.com.microsoft:h", Config: true}, true},
		{LUNKey(iqn, 3), KeyInfo{Kind: KindLUN, Target: iqn, LUN: 3, Config: true}, true},
		{OwnerKey("rbd/a"), KeyInfo{Kind: KindOwner, Name: "rbd/a"}, true},
		{PRKey("rbd/a"), KeyInfo{Kind: KindPR, Name: "rbd/a"}, true},
		{LiveKey("gw1"), KeyInfo{Kind: KindLive, Name: "gw1"}, true},
		{"tokens/abc", KeyInfo{}, false},
		{"peers/gw1", KeyInfo{}, false},
		{"stats/gw1", KeyInfo{}, false},
	}
	for _, tt := range tests {
		got, ok := DescribeKey(tt.key)
		if got != tt.want || ok != tt.ok {
			t.Errorf("DescribeKey(%q) = %+v, %v; want %+v, %v", tt.key, got, ok, tt.want, tt.ok)
		}
	}
}
