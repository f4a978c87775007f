package e2e

import (
	"strings"
	"testing"
	"time"
)

const addressesConfig = `
portals: ["127.0.0.1:%PORT%"]
disks:
  - {name: d0, backend: memory, size: 16777216}
targets:
  - iqn: iqn.2024-01.io.rbdgw:addresses
    luns: [{id: 0, disk: d0}]
    acls:
      - {initiator: "iqn.2024-01.io.example:host-a", addresses: [HOSTA]}
      - {initiator: "iqn.2024-01.io.example:host-b", addresses: ["127.0.0.0/8", "2001:db8::/32"]}
`

// TestInitiatorAddresses: libiscsi's tools, connecting from 127.0.0.1,
// are refused with a host bound to 127.0.0.2/32 (and discovery does not
// show them the target) and log in with one bound to 127.0.0.0/8; a reload
// that widens the binding lets the first host in.
func TestInitiatorAddresses(t *testing.T) {
	needTools(t, "iscsi-ls", "iscsi-inq")
	const (
		iqn   = "iqn.2024-01.io.rbdgw:addresses"
		hostA = "iqn.2024-01.io.example:host-a"
		hostB = "iqn.2024-01.io.example:host-b"
	)
	g := startGateway(t, strings.Replace(addressesConfig, "HOSTA", `"127.0.0.2/32"`, 1))
	inq := func(initiator string) (string, error) {
		return run(t, 20*time.Second, "iscsi-inq", "-i", initiator, "iscsi://"+g.portal()+"/"+iqn+"/0")
	}
	ls := func(initiator string) string {
		out, _ := run(t, 20*time.Second, "iscsi-ls", "-i", initiator, "iscsi://"+g.portal())
		return out
	}

	out, err := inq(hostA)
	if err == nil || !strings.Contains(out, "Authorization failure(514)") { // 0x0202
		t.Errorf("iscsi-inq as a host bound to 127.0.0.2/32 from 127.0.0.1 got in: %v\n%s", err, out)
	}
	if !g.log.has("source address 127.0.0.1 is not among the initiator's allowed addresses 127.0.0.2") {
		t.Errorf("the gateway does not log why it refused the login:\n%s", g.log)
	}
	if out := ls(hostA); strings.Contains(out, iqn) {
		t.Errorf("discovery shows the target to a host bound elsewhere:\n%s", out)
	}
	if !g.log.has("SendTargets: target not listed") {
		t.Errorf("the gateway does not log why discovery hid the target:\n%s", g.log)
	}
	if out, err := inq(hostB); err != nil || !strings.Contains(out, "DIRECT_ACCESS") {
		t.Errorf("iscsi-inq as a host bound to 127.0.0.0/8: %v\n%s", err, out)
	}
	if out := ls(hostB); !strings.Contains(out, "Target:"+iqn) {
		t.Errorf("discovery hides the target from a host bound to its address:\n%s", out)
	}

	g.reload(strings.Replace(addressesConfig, "HOSTA", `"127.0.0.0/8"`, 1))
	if out, err := inq(hostA); err != nil || !strings.Contains(out, "DIRECT_ACCESS") {
		t.Errorf("iscsi-inq as host-a after the reload to 127.0.0.0/8: %v\n%s", err, out)
	}
}
