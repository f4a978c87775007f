package config

import (
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	good := []string{
		"iqn.2003-01.org.linux-iscsi.host:sn.1234",
		"iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test",
		"iqn.1991-05.com.microsoft:win-host",
		"iqn.1998-01.com.vmware:esx1-4f3a",
		"iqn.2024-01.io.rbdgw",
		"eui.02004567a425678d",
		"naa.52004567ba64678d",
		"naa.62004567ba64678d0123456789abcdef",
	}
	for _, n := range good {
		if err := ValidateName(n); err != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", n, err)
		}
	}
	bad := []string{
		"", "iqn", "iqn.", "iqn.2003-1.org.x", "iqn.2003-13.org.x", "iqn.20a3-01.org.x",
		"iqn.2003-01.", "iqn.2003-01..x", "iqn.2003-01.org.x:UPPER", "iqn.2003-01.org x",
		"eui.123", "eui.02004567a425678z", "naa.123", "foo.bar", strings.Repeat("a", 300),
	}
	for _, n := range bad {
		if err := ValidateName(n); err == nil {
			t.Errorf("ValidateName(%q) = nil, want error", n)
		}
	}
}

func TestParse(t *testing.T) {
	const base = `
portals: ["127.0.0.1:3260"]
disks:
  - {name: d1, backend: memory, size: 1048576}
targets:
  - iqn: iqn.2024-01.io.rbdgw:t1
    luns: [{id: 0, disk: d1}]
    acls: [{initiator: "iqn.2024-01.io.example:h1", chap: {user: u, secret: "0123456789ab"}}]
`
	cfg, err := Parse([]byte(base), false)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if cfg.Tuning.QueueDepth != DefaultQueueDepth || cfg.Disks[0].BlockSize != 512 || cfg.Targets[0].TPGT != 1 {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
	phys, err := Parse([]byte(strings.Replace(base, "size: 1048576", "size: 1048576, physical_block_size: 16384", 1)), false)
	if err != nil || phys.Disks[0].PhysicalBlockSize != 16384 {
		t.Fatalf("physical_block_size 16384: %v", err)
	}
	bound, err := Parse([]byte(strings.Replace(base, `acls: [{initiator: "iqn.2024-01.io.example:h1",`,
		`acls: [{initiator: "iqn.2024-01.io.example:h1", addresses: ["10.0.0.0/8", "2001:db8::7"],`, 1)), false)
	if err != nil || len(bound.Targets[0].ACLs[0].Addresses) != 2 {
		t.Fatalf("addresses: %v", err)
	}
	tests := []struct {
		name, doc, want string
	}{
		{"unknown field", base + "bogus: 1\n", "bogus"},
		{"unknown disk", strings.Replace(base, "disk: d1}", "disk: d2}", 1), `unknown disk "d2"`},
		{"bad iqn", strings.Replace(base, "iqn.2024-01.io.rbdgw:t1", "iqn.bad", 1), "iqn.bad"},
		{"short secret", strings.Replace(base, `"0123456789ab"`, `"short"`, 1), "12 to 16"},
		{"bad backend", strings.Replace(base, "backend: memory", "backend: tape", 1), "tape"},
		{"bad size", strings.Replace(base, "size: 1048576", "size: 1000", 1), "multiple"},
		{"no portals", strings.Replace(base, `portals: ["127.0.0.1:3260"]`, "portals: []", 1), "portals"},
		{"bad portal", strings.Replace(base, `127.0.0.1:3260`, `127.0.0.1`, 1), "portal"},
		{"lun too big", strings.Replace(base, "id: 0", "id: 20000", 1), "16383"},
		{"physical block below the block", strings.Replace(base, "size: 1048576", "size: 1048576, block_size: 4096, physical_block_size: 512", 1), "physical_block_size"},
		{"physical block not a power of two", strings.Replace(base, "size: 1048576", "size: 1048576, physical_block_size: 6144", 1), "physical_block_size"},
		{"physical block too large", strings.Replace(base, "size: 1048576", "size: 1048576, physical_block_size: 33554432", 1), "physical_block_size"},
		{"bad address", strings.Replace(base, `chap: {user: u`, `addresses: ["10.0.0.0/33"], chap: {user: u`, 1), `acl "iqn.2024-01.io.example:h1": addresses: "10.0.0.0/33" is not an IP address or CIDR`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc), false)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse error = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestParseJSON(t *testing.T) {
	doc := `{"portals":["127.0.0.1:3260"],"disks":[{"name":"d","backend":"memory","size":4096}],
	"targets":[{"iqn":"iqn.2024-01.io.rbdgw:t","luns":[{"id":1,"disk":"d"}],"allow_any_initiator":true}]}`
	cfg, err := Parse([]byte(doc), true)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Targets[0].AllowAnyInitiator || cfg.Targets[0].LUNs[0].ID != 1 {
		t.Fatalf("unexpected %+v", cfg.Targets[0])
	}
	if _, err := Parse([]byte(`{"portals":["127.0.0.1:3260"],"extra":1}`), true); err == nil {
		t.Fatal("unknown JSON field accepted")
	}
}
