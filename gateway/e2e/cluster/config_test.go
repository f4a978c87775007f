package cluster

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// iscsiLs lists the LUNs of the targets behind portal as initiator, with
// CHAP credentials when user is set.
func iscsiLs(portal, initiator, user, secret string) (string, error) {
	url := "iscsi://" + portal
	if user != "" {
		url = fmt.Sprintf("iscsi://%s%%%s@%s", user, secret, portal)
	}
	out, err := exec.Command("timeout", "20", "iscsi-ls", "-i", initiator, "-s", url).CombinedOutput()
	return string(out), err
}

// A host with CHAP and a new disk are added while gw-b is stopped: the
// change succeeds, gw-a applies it live without disturbing a session that
// is writing, and gw-b applies it when it starts.
func TestConfigChangeWhileGatewayDown(t *testing.T) {
	c := newCluster(t, 2)
	a, b := c.gws[0], c.gws[1]
	const host, user, secret = "iqn.2024-01.io.test:chap-host", "chapuser", "s3cret-pass12"
	b.stop()

	w := startMPIO(t, "write-verify", "-target", c.iqn, "-portal", a.portal, "-chunks", "256", "-duration", "8s", "-interval", "2ms")
	w.until(t, 30*time.Second, func(ev map[string]any) bool { return ev["event"] == "progress" })
	disk := c.addDisk("256M")
	c.admin("lun", "put", c.iqn, "1", disk)
	c.admin("host", "put", c.iqn, host, "-chap", user+":"+secret, "-lun", "0", "-lun", "1")

	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out, err := iscsiLs(a.portal, host, user, secret)
		if err == nil && strings.Contains(out, "Lun:1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gw-a did not apply the change: %v\n%s", err, out)
		}
	}
	evs, err := w.rest()
	if err != nil {
		t.Fatalf("writes during the change: %v: %s", err, w.stderr.String())
	}
	// The new LUN is announced with a unit attention (REPORTED LUNS DATA
	// HAS CHANGED); nothing failed.
	if done := evs[len(evs)-1]; done["retries"] != float64(0) || done["failovers"] != float64(0) || done["mismatches"] != float64(0) {
		t.Fatalf("the writing session was disturbed by the change: %v", done)
	}

	b.start()
	c.waitReady()
	out, err := iscsiLs(b.portal, host, user, secret)
	if err != nil || !strings.Contains(out, "Lun:0") || !strings.Contains(out, "Lun:1") {
		t.Fatalf("gw-b after its start, with CHAP: %v\n%s", err, out)
	}
	if out, err := iscsiLs(b.portal, host, "", ""); err == nil && strings.Contains(out, "Lun:") {
		t.Fatalf("gw-b admitted the host without its CHAP secret:\n%s", out)
	}
	if out, err := iscsiLs(b.portal, host, user, "wrong-secret12"); err == nil && strings.Contains(out, "Lun:") {
		t.Fatalf("gw-b admitted the host with a wrong secret:\n%s", out)
	}
}
