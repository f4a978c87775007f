package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/api/model"
)

// gwcli runs bin/gwcli against g's API.
func (c *apiCluster) gwcli(ctx context.Context, g *apiGateway, args ...string) *exec.Cmd {
	full := append([]string{"--url", g.apiURL, "--token", c.token}, args...)
	return exec.CommandContext(ctx, filepath.Join(env.bin, "gwcli"), full...)
}

// gwcliTop runs "gwcli top -n 1 -o json window=8s" through g and returns
// the row of LUN lun of target iqn through gateway gw.
func (c *apiCluster) gwcliTop(g *apiGateway, iqn string, lun uint64, gw string) (model.LUNStats, bool) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := c.gwcli(ctx, g, "top", "-n", "1", "-o", "json", "window=8s")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		c.t.Fatalf("gwcli top -n 1 -o json: %v\n%s", err, stderr.String())
	}
	var st model.Stats
	if err := json.Unmarshal(out, &st); err != nil {
		c.t.Fatalf("gwcli top -n 1 -o json printed %v:\n%s", err, out)
	}
	for _, l := range st.LUNs {
		if l.Target == iqn && l.LUN == lun && l.Gateway == gw {
			return l, true
		}
	}
	c.t.Logf("gwcli top: no row of LUN %d through %s:\n%s", lun, gw, out)
	return model.LUNStats{}, false
}

// checkTop: gwcli top, run through the reader while qemu-img read LUN 1
// through its owner, reported that LUN on that gateway at the read IOPS the
// API reported just before each run of it (within 10%), Active/Optimized.
func (c *apiCluster) checkTop(rows, api []model.LUNStats, reader, owner string) {
	c.t.Helper()
	if len(rows) != len(api) {
		c.t.Fatalf("gwcli top through %s showed LUN 1 on %s in %d of %d runs", reader, owner, len(rows), len(api))
	}
	for i, r := range rows {
		want := api[i].ReadIOPS
		c.t.Logf("gwcli top -n 1 -o json through %s, LUN 1 on %s: %.0f read IOPS (%+.1f%% of the API's %.0f), %s",
			reader, owner, r.ReadIOPS, 100*(r.ReadIOPS-want)/want, want, r.ALUAState)
		if r.ReadIOPS < 0.9*want || r.ReadIOPS > 1.1*want {
			c.t.Fatalf("gwcli top shows %.0f read IOPS, the API %.0f", r.ReadIOPS, want)
		}
		if r.ALUAState != "active_optimized" {
			c.t.Fatalf("gwcli top: LUN 1 on its owner %s is %s", owner, r.ALUAState)
		}
	}
}

// TestGwcliEventsAndTop: gwcli events following gw-b sees a disk created
// through gw-a's API, once; gwcli top's table form lists each LUN through
// each gateway, the owner's row Active/Optimized.
func TestGwcliEventsAndTop(t *testing.T) {
	c := newAPICluster(t)
	a, b := c.gws[0], c.gws[1]
	iqn, disks := c.setupTarget(1, "64M")
	owners := c.owners(a, disks...)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := c.gwcli(ctx, b, "events", "count=2", "timeout=60s")
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Connected: the change comes after the revision it follows from.
	sc := bufio.NewScanner(stderr)
	var hello string
	for sc.Scan() {
		if hello = sc.Text(); strings.Contains(hello, "after revision") {
			break
		}
	}
	if !strings.Contains(hello, "(gateway gw-b)") {
		t.Fatalf("gwcli events said %q", hello)
	}
	go func() {
		for sc.Scan() {
			t.Logf("gwcli events: %s", sc.Text())
		}
	}()
	disk := "rbd/" + c.newImageName()
	c.must(201, a, "PUT", "/disks/"+disk, `{"size": "32M"}`)
	c.must(201, a, "POST", "/targets/"+iqn+"/luns", `{"disk": "`+disk+`"}`)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("gwcli events count=2: %v\n%s", err, stdout.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	t.Logf("gwcli events through %s after changes through %s's API:\n%s", b.name, a.name, stdout.String())
	if len(lines) != 2 || !strings.Contains(lines[0], "  disk  ") || !strings.Contains(lines[0], disk+" written (size 32M)") ||
		!strings.Contains(lines[1], "  lun  ") || !strings.Contains(lines[1], "LUN 1 of "+iqn+" written (disk "+disk+")") {
		t.Fatalf("gwcli events printed:\n%s", stdout.String())
	}

	// The table: a row per LUN and gateway, once both published counters
	// (every 2 s).
	var out []byte
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(time.Second) {
		out, err = c.gwcli(ctx, a, "top", "-n", "1", "sort=lun").CombinedOutput()
		if err != nil {
			t.Fatalf("gwcli top -n 1: %v\n%s", err, out)
		}
		if strings.Count(string(out), "0    "+disks[0]) == 2 || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("gwcli top -n 1 through %s:\n%s", a.name, out)
	owner := owners[disks[0]].Owner
	if !strings.Contains(string(out), "gateways up: gw-a, gw-b") || !strings.Contains(string(out), "0    "+disks[0]) {
		t.Fatalf("gwcli top -n 1:\n%s", out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && f[0] == "0" && f[1] == disks[0] {
			if want := map[bool]string{true: "AO", false: "ANO"}[f[2] == owner]; f[3] != want {
				t.Fatalf("LUN 0 through %s is %s, want %s (owner %s):\n%s", f[2], f[3], want, owner, out)
			}
		}
	}
}
