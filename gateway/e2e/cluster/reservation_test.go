package cluster

import (
	"testing"
)

// A reservation made through gw-a is seen and enforced through gw-b at
// once, and it survives a restart of gw-b.
func TestReservationSharedAcrossGateways(t *testing.T) {
	c := newCluster(t, 2)
	a, b := c.gws[0], c.gws[1]
	const (
		hostX = "iqn.2024-01.io.test:host-x"
		hostY = "iqn.2024-01.io.test:host-y"
	)
	pr := func(g *gateway, host string, op ...string) map[string]any {
		t.Helper()
		args := append([]string{"pr", "-target", c.iqn, "-portal", g.portal, "-initiator", host}, op...)
		ev, err := mpio(t, args...)
		if err != nil || len(ev) != 1 {
			t.Fatalf("pr %v through %s: %v %v", op, g.name, ev, err)
		}
		return ev[0]
	}
	expect := func(ev map[string]any, status string) {
		t.Helper()
		if ev["status"] != status {
			t.Fatalf("%s through %s: %v, want %s", ev["op"], ev["portal"], ev["status"], status)
		}
	}
	expect(pr(a, hostX, "register", "0xabc"), "good")
	ev := pr(b, hostY, "read-keys")
	expect(ev, "good")
	if keys, _ := ev["keys"].([]any); len(keys) != 1 || keys[0] != "0xabc" {
		t.Fatalf("keys through gw-b right after registering through gw-a: %v", ev["keys"])
	}
	expect(pr(a, hostX, "reserve", "0xabc", "1"), "good") // WRITE EXCLUSIVE
	expect(pr(b, hostY, "write", "8"), "reservation-conflict")
	expect(pr(b, hostY, "read", "8"), "good")
	expect(pr(a, hostX, "write", "8"), "good")

	// gw-b restarts: the state comes back from etcd.
	b.stop()
	b.start()
	c.waitReady()
	ev = pr(b, hostY, "read-reservation")
	res, _ := ev["reservation"].(map[string]any)
	if res == nil || res["key"] != "0xabc" || res["type"] != float64(1) {
		t.Fatalf("reservation through gw-b after its restart: %v", ev)
	}
	expect(pr(b, hostY, "write", "8"), "reservation-conflict")

	// Released through gw-a: gw-b lets host-y write again.
	expect(pr(a, hostX, "release", "0xabc", "1"), "good")
	expect(pr(b, hostY, "write", "8"), "good")
	expect(pr(a, hostX, "unregister", "0xabc"), "good")
	if keys, _ := pr(b, hostY, "read-keys")["keys"].([]any); len(keys) != 0 {
		t.Fatalf("keys after unregistering: %v", keys)
	}
}
