package e2e

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

const maskingConfig = `
portals: ["127.0.0.1:%PORT%"]
disks:
  - {name: d0, backend: memory, size: 16777216}
  - {name: d1, backend: memory, size: 16777216}
  - {name: d2, backend: memory, size: 16777216}
targets:
  - iqn: iqn.2024-01.io.rbdgw:masking
    luns: [{id: 0, disk: d0}, {id: 1, disk: d1}, {id: 2, disk: d2}]
    allow_any_initiator: true
    acls:
      - {initiator: "iqn.2024-01.io.example:host-a", luns: [0, 2]}
      - {initiator: "iqn.2024-01.io.example:host-b", luns: HOSTB}
      - {initiator: "iqn.2024-01.io.example:legacy"}
`

var lunLine = regexp.MustCompile(`(?m)^Lun:(\d+)\s`)

// lsLUNs lists the LUNs iscsi-ls reports for initiator.
func lsLUNs(t *testing.T, g *gateway, initiator string) ([]string, string) {
	t.Helper()
	out, _ := run(t, 20*time.Second, "iscsi-ls", "-i", initiator, "-s", "iscsi://"+g.portal())
	var luns []string
	for _, m := range lunLine.FindAllStringSubmatch(out, -1) {
		luns = append(luns, m[1])
	}
	return luns, out
}

// TestLUNMasking: each initiator lists only the LUNs of its view; a LUN
// outside the view cannot be reached, like a LUN that does not exist; a
// reload changes a view live.
func TestLUNMasking(t *testing.T) {
	needTools(t, "iscsi-ls", "iscsi-inq")
	cfg := strings.Replace(maskingConfig, "HOSTB", "[]", 1)
	g := startGateway(t, cfg)
	for _, tc := range []struct {
		initiator string
		want      []string
	}{
		{"iqn.2024-01.io.example:host-a", []string{"0", "2"}},
		{"iqn.2024-01.io.example:host-b", nil},                     // an explicit empty view
		{"iqn.2024-01.io.example:legacy", []string{"0", "1", "2"}}, // an ACL without a list
		{"iqn.2024-01.io.example:anyone", []string{"0", "1", "2"}}, // no ACL: allow_any_initiator
	} {
		if got, out := lsLUNs(t, g, tc.initiator); !slices.Equal(got, tc.want) {
			t.Errorf("iscsi-ls -i %s lists LUNs %v, want %v:\n%s", tc.initiator, got, tc.want, out)
		}
	}
	lun := func(n string) string { return "iscsi://" + g.portal() + "/iqn.2024-01.io.rbdgw:masking/" + n }
	inq := func(initiator, n string) (string, error) {
		return run(t, 20*time.Second, "iscsi-inq", "-i", initiator, lun(n))
	}
	if out, err := inq("iqn.2024-01.io.example:host-a", "2"); err != nil || !strings.Contains(out, "DIRECT_ACCESS") {
		t.Errorf("iscsi-inq to a LUN of the view: %v\n%s", err, out)
	}
	masked, merr := inq("iqn.2024-01.io.example:host-a", "1")
	absent, aerr := inq("iqn.2024-01.io.example:host-a", "9")
	if merr == nil || !strings.Contains(masked, "LOGICAL_UNIT_NOT_SUPPORTED") {
		t.Errorf("iscsi-inq to a masked LUN succeeded or failed otherwise: %v\n%s", merr, masked)
	}
	if aerr == nil || masked != absent {
		t.Errorf("a masked LUN answers unlike an absent one:\nmasked: %s\nabsent: %s", masked, absent)
	}
	if out, err := inq("iqn.2024-01.io.example:legacy", "1"); err != nil || !strings.Contains(out, "DIRECT_ACCESS") {
		t.Errorf("iscsi-inq to LUN 1 by an initiator that sees it: %v\n%s", err, out)
	}

	g.reload(strings.Replace(maskingConfig, "HOSTB", "[1]", 1))
	if got, out := lsLUNs(t, g, "iqn.2024-01.io.example:host-b"); !slices.Equal(got, []string{"1"}) {
		t.Errorf("host-b after the reload lists %v, want [1]:\n%s", got, out)
	}
}
