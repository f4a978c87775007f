package cluster

import (
	"strings"
	"testing"
	"time"
)

// etcdOutage is how long etcd is stopped: longer than the lease TTL (5 s
// here), so every gateway loses its registration and has to come back.
const etcdOutage = 30 * time.Second

// I/O continues while etcd is down, and the gateways re-register and
// follow configuration changes again once it is back. This test takes
// about 45 s; -short skips it. It stops the etcd server the other tests
// share, so it must not run in parallel with them (tests here are
// sequential).
func TestEtcdOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the etcd outage test lasts about 45 s")
	}
	c := newCluster(t, 2)
	a, b := c.gws[0], c.gws[1]
	owner := c.owner()
	w := startMPIO(t, "write-verify", "-target", c.iqn, "-portal", a.portal,
		"-chunks", "256", "-duration", (etcdOutage + 15*time.Second).String(), "-interval", "2ms")
	w.until(t, 30*time.Second, func(ev map[string]any) bool { return ev["event"] == "progress" })

	env.etcd.Stop()
	down := time.Now()
	progress := 0
	for time.Since(down) < etcdOutage {
		select {
		case ev, ok := <-w.events:
			if !ok {
				t.Fatalf("writes stopped while etcd was down: %s", w.stderr.String())
			}
			if ev["event"] == "progress" {
				progress++
			}
		case <-time.After(time.Second):
		}
	}
	if err := env.etcd.Start(); err != nil {
		t.Fatalf("restart etcd: %v", err)
	}
	if progress == 0 {
		t.Fatal("no write completed while etcd was down")
	}
	back := time.Now()
	for _, g := range []*gateway{a, b} {
		for !strings.Contains(g.logTail(400), "registered again") {
			if time.Since(back) > time.Minute {
				t.Fatalf("%s did not register again:\n%s", g.name, g.logTail(30))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	c.waitReady()
	t.Logf("both gateways registered again %v after etcd came back", time.Since(back).Round(100*time.Millisecond))
	evs, err := w.rest()
	if err != nil {
		t.Fatalf("write-verify: %v: %s", err, w.stderr.String())
	}
	done := evs[len(evs)-1]
	if done["retries"] != float64(0) || done["failovers"] != float64(0) || done["mismatches"] != float64(0) {
		t.Fatalf("I/O was disturbed by the etcd outage: %v", done)
	}
	t.Logf("%d progress reports (64 writes each) while etcd was down; %v writes in all", progress, done["writes"])

	if o := c.owner(); o != owner {
		t.Fatalf("the outage moved the disk from %s to %s", owner, o)
	}
	// The gateways follow changes again.
	disk := c.addDisk("64M")
	c.admin("lun", "put", c.iqn, "1", disk)
	for _, g := range []*gateway{a, b} {
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			out, err := iscsiLs(g.portal, "iqn.2024-01.io.test:after-outage", "", "")
			if err == nil && strings.Contains(out, "Lun:1") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s does not show the disk added after the outage: %v\n%s", g.name, err, out)
			}
		}
	}
}
