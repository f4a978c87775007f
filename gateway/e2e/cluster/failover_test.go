package cluster

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// asyncMPIO is mpio running in the background; its events arrive on a
// channel that is closed when it exits.
type asyncMPIO struct {
	cmd    *exec.Cmd
	events chan map[string]any
	stderr strings.Builder
}

func startMPIO(t *testing.T, args ...string) *asyncMPIO {
	t.Helper()
	m := &asyncMPIO{cmd: exec.Command(filepath.Join(env.bin, "mpio"), args...), events: make(chan map[string]any, 1024)}
	m.cmd.Stderr = &m.stderr
	out, err := m.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(m.events)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				m.events <- ev
			}
		}
	}()
	t.Cleanup(func() { _ = m.cmd.Process.Kill(); _ = m.cmd.Wait() })
	return m
}

// until consumes events until one satisfies ok; it fails the test when
// mpio ends or the timeout passes first.
func (m *asyncMPIO) until(t *testing.T, timeout time.Duration, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, open := <-m.events:
			if !open {
				t.Fatalf("mpio ended early: %s", m.stderr.String())
			}
			if ok(ev) {
				return ev
			}
		case <-deadline:
			t.Fatal("mpio: timed out waiting for an event")
		}
	}
}

// rest collects the remaining events and the exit status.
func (m *asyncMPIO) rest() ([]map[string]any, error) {
	var evs []map[string]any
	for ev := range m.events {
		evs = append(evs, ev)
	}
	return evs, m.cmd.Wait()
}

// A host writes a known pattern through the owner gateway, which is
// killed in the middle; the host fails over to the other gateway, which
// fences the dead one's Ceph client and takes the disk over; every block
// reads back as last written. The killed gateway comes back non-optimized
// with a new client, and an administrator gives the disk back to it.
func TestFailoverKeepsData(t *testing.T) {
	c := newCluster(t, 2)
	// a is the owner (whichever registered first), b the other gateway;
	// their port group ids are 1 for gw-a and 2 for gw-b.
	a, b := c.gws[0], c.gws[1]
	if c.owner() == b.name {
		a, b = b, a
	}
	ga, gb := tpgOf(a), tpgOf(b)
	oldClient := a.cephClient()
	w := startMPIO(t, "write-verify", "-target", c.iqn, "-portal", a.portal, "-portal", b.portal,
		"-chunks", "1500", "-interval", "2ms", "-retry-for", "60s")
	w.until(t, 30*time.Second, func(ev map[string]any) bool {
		return ev["event"] == "progress" && ev["written"].(float64) >= 256
	})
	killed := time.Now()
	a.kill()
	rec := w.until(t, 60*time.Second, func(ev map[string]any) bool { return ev["event"] == "recovered" })
	failover := time.UnixMilli(int64(rec["unix_ms"].(float64))).Sub(killed)
	if rec["portal"] != b.portal {
		t.Fatalf("recovered through %v, want %s", rec["portal"], b.name)
	}
	evs, err := w.rest()
	if err != nil {
		t.Fatalf("write-verify: %v: %s", err, w.stderr.String())
	}
	done := evs[len(evs)-1]
	if done["event"] != "done" || done["mismatches"] != float64(0) {
		t.Fatalf("write-verify ended with %v", done)
	}
	t.Logf("failover: %v from SIGKILL of %s to the first write completed through %s (%v writes, %v retries)",
		failover.Round(time.Millisecond), a.name, b.name, done["writes"], done["retries"])

	out, err := ceph("osd", "blocklist", "ls")
	if err != nil || !strings.Contains(out, oldClient) {
		t.Fatalf("%s's old client %s is not in the OSD blocklist: %v\n%s", a.name, oldClient, err, out)
	}
	if o := c.owner(); o != b.name {
		t.Fatalf("owner after the failover: %q, want %s", o, b.name)
	}

	// The killed gateway returns: non-optimized, with a client that is not
	// fenced, and it still serves writes (the lock moves to it and back).
	a.start()
	c.waitReady()
	if a.cephClient() == oldClient {
		t.Fatalf("%s reuses its fenced client", a.name)
	}
	for _, g := range c.gws {
		if s := groupStates(c.identity(g)); s[ga] != "ANO" || s[gb] != "AO+pref" {
			t.Fatalf("through %s after %s returned: %v, want it ANO and %s AO", g.name, a.name, s, b.name)
		}
	}
	ev, err := mpio(t, "write-verify", "-target", c.iqn, "-portal", a.portal, "-chunks", "64", "-lba", "100000")
	if err != nil || ev[len(ev)-1]["mismatches"] != float64(0) || ev[len(ev)-1]["retries"] != float64(0) {
		t.Fatalf("writes through the returned %s: %v %v", a.name, ev, err)
	}

	// The administrator gives the disk back.
	c.admin("owner", "move", "rbd/"+c.images[0], a.name)
	for _, g := range c.gws {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if s := groupStates(c.identity(g)); s[ga] == "AO+pref" && s[gb] == "ANO" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("through %s after owner move: %v", g.name, groupStates(c.identity(g)))
			}
		}
	}
}
