package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/api/model"
)

// sse is a client of GET /api/v1/events, read with net/http.
type sse struct {
	t      *testing.T
	events chan sseEvent
	cancel context.CancelFunc
	done   chan struct{}
}

type sseEvent struct {
	name, id string
	data     model.Event
	raw      string
}

// events opens g's event stream, resuming after lastID when it is set.
func (c *apiCluster) events(g *apiGateway, lastID string) *sse {
	c.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", g.apiURL+"/api/v1/events", nil)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		c.t.Fatalf("GET /events from %s: %d", g.name, resp.StatusCode)
	}
	s := &sse{t: c.t, events: make(chan sseEvent, 4096), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer close(s.events)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var cur sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "" && cur.name != "":
				if err := json.Unmarshal([]byte(cur.raw), &cur.data); err != nil {
					s.t.Errorf("event data %q: %v", cur.raw, err)
				}
				s.events <- cur
				cur = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				cur.name = line[len("event: "):]
			case strings.HasPrefix(line, "id: "):
				cur.id = line[len("id: "):]
			case strings.HasPrefix(line, "data: "):
				cur.raw = line[len("data: "):]
			}
		}
	}()
	c.t.Cleanup(s.close)
	return s
}

func (s *sse) close() { s.cancel(); <-s.done }

// until reads events until one satisfies done (within timeout).
func (s *sse) until(timeout time.Duration, done func(sseEvent) bool) []sseEvent {
	s.t.Helper()
	var out []sseEvent
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				s.t.Fatalf("event stream ended after %v", describeAll(out))
			}
			out = append(out, ev)
			if done(ev) {
				return out
			}
		case <-deadline:
			s.t.Fatalf("not seen in %v; got:\n%s", timeout, describeAll(out))
		}
	}
}

func describe(ev sseEvent) string {
	d := ev.data
	s := fmt.Sprintf("%d %s", d.Revision, ev.name)
	switch ev.name {
	case model.EventConfig:
		s += " " + d.Op + " " + d.Key
	case model.EventOwner:
		s += fmt.Sprintf(" %s %s>%s epoch %d", d.Disk, d.From, d.To, d.Epoch)
	case model.EventFence:
		s += fmt.Sprintf(" %s by %s from %s %v", d.Disk, d.Gateway, d.From, d.Clients)
	case model.EventGateway:
		s += " " + d.Op + " " + d.Gateway
	}
	return s
}

func describeAll(evs []sseEvent) string {
	var b strings.Builder
	for _, ev := range evs {
		b.WriteString(describe(ev) + "\n")
	}
	return b.String()
}

// admin runs rbdgw-admin against the cluster's prefix.
func (c *apiCluster) admin(args ...string) string {
	c.t.Helper()
	full := append(append(etcdArgs(), "-etcd-prefix", c.prefix), args...)
	out, err := exec.Command(filepath.Join(env.bin, "rbdgw-admin"), full...).CombinedOutput()
	if err != nil {
		c.t.Fatalf("rbdgw-admin %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// owners waits until every disk has an owner and returns them.
func (c *apiCluster) owners(g *apiGateway, disks ...string) map[string]model.Disk {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out := map[string]model.Disk{}
		for _, d := range disks {
			var disk model.Disk
			json.Unmarshal(c.must(200, g, "GET", "/disks/"+d, ""), &disk)
			if disk.Owner != "" {
				out[d] = disk
			}
		}
		if len(out) == len(disks) {
			return out
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("disks without an owner: %v", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// setupTarget defines the gateways, n disks of size mapped as LUNs 0..n-1
// of a target any initiator may use, and returns the target and disks.
func (c *apiCluster) setupTarget(n int, size string) (string, []string) {
	c.t.Helper()
	a := c.gws[0]
	var gws []string
	for _, g := range c.gws {
		c.must(200, a, "PUT", "/gateways/"+g.name, `{"portals": ["`+g.portal+`"]}`)
		gws = append(gws, `"`+g.name+`"`)
	}
	iqn := "iqn.2024-01.io.rbdgw:" + strings.Trim(c.prefix, "/")
	c.must(200, a, "PUT", "/targets/"+iqn, `{"gateways": [`+strings.Join(gws, ", ")+`], "allow_any_initiator": true}`)
	var disks []string
	for range n {
		d := "rbd/" + c.newImageName()
		c.must(201, a, "PUT", "/disks/"+d, `{"size": "`+size+`"}`)
		c.must(201, a, "POST", "/targets/"+iqn+"/luns", `{"disk": "`+d+`"}`)
		disks = append(disks, d)
	}
	for _, g := range c.gws {
		g.waitPortal()
	}
	return iqn, disks
}

func other(c *apiCluster, name string) *apiGateway {
	for _, g := range c.gws {
		if g.name != name {
			return g
		}
	}
	return nil
}

func byName(c *apiCluster, name string) *apiGateway {
	for _, g := range c.gws {
		if g.name == name {
			return g
		}
	}
	return nil
}

// TestEventStream: a CHAP secret changes, an owner moves and a gateway is
// killed (its disk taken over and its Ceph client fenced); each appears
// once on the event stream of the other gateway's API, in revision order,
// and a client that reconnects with its last event id misses nothing.
func TestEventStream(t *testing.T) {
	c := newAPICluster(t)
	a, b := c.gws[0], c.gws[1]
	full := c.events(b, "")
	hello := full.until(10*time.Second, func(sseEvent) bool { return true })[0]
	if hello.name != model.EventConnected || hello.data.Server != "gw-b" {
		t.Fatalf("first event: %+v", hello)
	}
	resumer := c.events(b, "")
	resumer.until(10*time.Second, func(sseEvent) bool { return true })

	iqn, disks := c.setupTarget(2, "256M")
	d1, d2 := disks[0], disks[1]
	host := "/targets/" + iqn + "/hosts/iqn.1994-05.com.redhat:evhost"
	const secret1, secret2 = "evsecret00001", "evsecret00002"
	c.must(200, a, "PUT", host, `{"chap": {"user": "evhost", "secret": "`+secret1+`"}, "luns": [0, 1]}`)
	owners := c.owners(a, d1, d2)

	// An owner moves: d1 to the gateway that does not own it.
	from1 := owners[d1].Owner
	to1 := other(c, from1).name
	c.admin("owner", "move", d1, to1)
	moveEpoch := owners[d1].OwnerEpoch + 1
	// d2 goes to gw-a, which will write to it and be killed.
	if owners[d2].Owner != a.name {
		c.admin("owner", "move", d2, a.name)
	}

	// A CHAP secret changes.
	var res model.WriteResult
	json.Unmarshal(c.must(200, a, "PUT", host, `{"chap": {"user": "evhost", "secret": "`+secret2+`"}, "luns": [0, 1]}`), &res)
	chapRev := res.Revision

	// The resuming client drops here.
	early := resumer.until(30*time.Second, func(ev sseEvent) bool { return ev.data.Revision >= chapRev })
	resumer.close()
	lastID := ""
	for _, ev := range early {
		if ev.id != "" {
			lastID = ev.id
		}
	}

	// gw-a writes to d2 (so its client holds the lock), then dies.
	client := a.cephClient()
	if out, err := exec.Command("timeout", "60", "qemu-img", "bench", "-w", "-c", "200", "-s", "4096", "-d", "4",
		"--image-opts", "driver=iscsi,transport=tcp,portal="+a.portal+",target="+iqn+",lun=1,initiator-name=iqn.1994-05.com.redhat:evwriter").CombinedOutput(); err != nil {
		t.Fatalf("write through %s: %v\n%s", a.name, err, out)
	}
	killed := time.Now()
	a.kill()
	fenceSeen := func(ev sseEvent) bool { return ev.name == model.EventFence && ev.data.Disk == d2 }
	evs := append([]sseEvent{hello}, full.until(90*time.Second, fenceSeen)...)
	t.Logf("fencing of %s on %s's stream %v after the SIGKILL of %s", d2, b.name, time.Since(killed).Round(time.Millisecond), a.name)
	t.Logf("events on %s's stream:\n%s", b.name, describeAll(evs))

	count := map[string]int{}
	for i, ev := range evs {
		if i > 0 && ev.data.Revision < evs[i-1].data.Revision {
			t.Fatalf("out of revision order at %d:\n%s", i, describeAll(evs))
		}
		if strings.Contains(ev.raw, secret1) || strings.Contains(ev.raw, secret2) {
			t.Fatalf("a CHAP secret on the stream: %s", ev.raw)
		}
		switch {
		case ev.name == model.EventConfig && ev.data.Revision == chapRev:
			count["chap"]++
			if ev.data.Kind != "host" || !strings.Contains(string(ev.data.Value), `"secret":"***"`) {
				t.Fatalf("CHAP change: %+v %s", ev.data, ev.data.Value)
			}
		case ev.name == model.EventOwner && ev.data.Disk == d1 && ev.data.Epoch == moveEpoch:
			count["move"]++
			if ev.data.From != from1 || ev.data.To != to1 {
				t.Fatalf("owner move: %s", describe(ev))
			}
		case ev.name == model.EventGateway && ev.data.Op == "leave":
			count["leave "+ev.data.Gateway]++
		case ev.name == model.EventOwner && ev.data.Disk == d2 && ev.data.From == a.name:
			count["takeover"]++
			if ev.data.To != b.name {
				t.Fatalf("takeover: %s", describe(ev))
			}
		case fenceSeen(ev):
			count["fence"]++
			if ev.data.Gateway != b.name || ev.data.From != a.name || !slices.Contains(ev.data.Clients, client) {
				t.Fatalf("fence: %s, want %s's client %s fenced by %s", describe(ev), a.name, client, b.name)
			}
		}
	}
	for _, k := range []string{"chap", "move", "leave gw-a", "takeover", "fence"} {
		if count[k] != 1 {
			t.Fatalf("%s seen %d times:\n%s", k, count[k], describeAll(evs))
		}
	}

	// The client that dropped reconnects with its last id: together, its
	// two connections saw exactly what the first client saw.
	if lastID == "" {
		t.Fatal("the resuming client held no event id")
	}
	again := c.events(b, lastID)
	rest := again.until(30*time.Second, fenceSeen)
	if rest[0].name != model.EventConnected || rest[0].id != lastID {
		t.Fatalf("resumed stream starts with %+v", rest[0])
	}
	last, _ := strconv.ParseInt(lastID, 10, 64)
	var joined []string
	for _, ev := range early {
		if ev.data.Revision <= last {
			joined = append(joined, describe(ev))
		}
	}
	for _, ev := range rest[1:] {
		joined = append(joined, describe(ev))
	}
	var want []string
	for _, ev := range evs[1:] { // without the first stream's connected event
		want = append(want, describe(ev))
	}
	if strings.Join(joined, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the reconnecting client saw:\n%s\nthe other:\n%s", strings.Join(joined, "\n"), strings.Join(want, "\n"))
	}
}

// TestStatsUnderQemuBench: qemu-img bench reads a LUN through its owner;
// GET /api/v1/luns/stats of the other gateway, over a window spanning
// nearly the whole run, reports that gateway and LUN at the IOPS qemu-img
// reports (within 10%), and the LUN idle through the other gateway. The
// run's rate is an average over the run and the machine's load moves it
// while the run goes on, so it is compared with a window of about the same
// span; gwcli top, asked during the run, is compared with the API's rates
// of the same moment.
func TestStatsUnderQemuBench(t *testing.T) {
	need(t)
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not installed")
	}
	c := newAPICluster(t)
	iqn, disks := c.setupTarget(2, "1G")
	owners := c.owners(c.gws[0], disks...)
	// LUN 1 through its owner; the other gateway's API answers.
	owner := byName(c, owners[disks[1]].Owner)
	reader := other(c, owner.name)
	bench := func(count int, seconds float64) (float64, *exec.Cmd, *strings.Builder) {
		args := []string{"bench", "-c", strconv.Itoa(count), "-d", "16", "-s", "4096", "-S", "0",
			"--image-opts", "driver=iscsi,transport=tcp,portal=" + owner.portal + ",target=" + iqn + ",lun=1,initiator-name=iqn.1994-05.com.redhat:bench"}
		cmd := exec.Command("qemu-img", args...)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if seconds > 0 {
			return 0, cmd, &out // running in the background
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("qemu-img bench: %v\n%s", err, out.String())
		}
		return float64(count) / completed(t, out.String()), nil, &out
	}
	// Calibrate: how many reads make a run of about 20 s here.
	iops, _, _ := bench(3000, 0)
	count := int(iops * 20)
	t.Logf("calibration: %.0f IOPS; the measured run reads %d blocks", iops, count)
	_, cmd, out := bench(count, 20)
	started := time.Now()
	lun1 := func(window string) (model.LUNStats, []model.LUNStats) {
		var st model.Stats
		json.Unmarshal(c.must(200, reader, "GET", "/luns/stats?window="+window, ""), &st)
		var mine model.LUNStats
		var others []model.LUNStats
		found := false
		for _, l := range st.LUNs {
			switch {
			case l.Target == iqn && l.LUN == 1 && l.Gateway == owner.name:
				mine, found = l, true
			case l.Target == iqn:
				others = append(others, l)
			}
		}
		if !found {
			t.Fatalf("no row of LUN 1 through %s in /luns/stats of %s", owner.name, reader.name)
		}
		return mine, others
	}
	var samples []model.LUNStats // the API's rates beside each gwcli top
	var others []model.LUNStats
	var topRows []model.LUNStats // gwcli top -n 1 -o json through the reader
	for _, at := range []time.Duration{10 * time.Second, 13 * time.Second, 16 * time.Second} {
		time.Sleep(time.Until(started.Add(at)))
		mine, rest := lun1("8s")
		samples, others = append(samples, mine), append(others, rest...)
		if row, ok := c.gwcliTop(reader, iqn, 1, owner.name); ok {
			topRows = append(topRows, row)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("qemu-img bench: %v\n%s", err, out.String())
	}
	// Counters are published every 2 s: a window 3 s shorter than the run,
	// ending with the newest record, lies within the run.
	span := time.Since(started).Truncate(time.Second) - 3*time.Second
	whole, rest := lun1(span.String())
	others = append(others, rest...)
	secs := completed(t, out.String())
	qemu := float64(count) / secs
	t.Logf("qemu-img bench: %d reads in %.2f s = %.0f IOPS; /luns/stats from %s for LUN 1 on %s over the last %s: %.0f read IOPS (%+.1f%%), p50 %.3f ms, p99 %.3f ms; 8 s windows during the run: %.0f %.0f %.0f, queue depth %d, %s",
		count, secs, qemu, reader.name, owner.name, span, whole.ReadIOPS, 100*(whole.ReadIOPS-qemu)/qemu, whole.P50Ms, whole.P99Ms,
		samples[0].ReadIOPS, samples[1].ReadIOPS, samples[2].ReadIOPS, samples[1].QueueDepth, samples[1].ALUAState)
	if whole.ReadIOPS < 0.9*qemu || whole.ReadIOPS > 1.1*qemu {
		t.Fatalf("stats report %.0f read IOPS, qemu-img %.0f", whole.ReadIOPS, qemu)
	}
	c.checkTop(topRows, samples, reader.name, owner.name)
	if samples[1].ALUAState != "active_optimized" || samples[1].Disk != disks[1] || samples[1].ReadMBps <= 0 {
		t.Fatalf("LUN 1 on its owner: %+v", samples[1])
	}
	for _, l := range others {
		if l.ReadIOPS > 0.01*qemu {
			t.Fatalf("reads reported where qemu-img did not read: %+v", l)
		}
	}
	// The other gateway's own row for LUN 1 is non-optimized.
	var st model.Stats
	json.Unmarshal(c.must(200, owner, "GET", "/gateways/"+reader.name+"/stats", ""), &st)
	for _, l := range st.LUNs {
		if l.LUN == 1 && l.ALUAState != "active_non_optimized" {
			t.Fatalf("LUN 1 through %s: %+v", reader.name, l)
		}
	}
}

var completedRe = regexp.MustCompile(`Run completed in ([0-9.]+) seconds`)

func completed(t *testing.T, out string) float64 {
	t.Helper()
	m := completedRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("qemu-img bench printed no time:\n%s", out)
	}
	s, err := strconv.ParseFloat(m[1], 64)
	if err != nil || s <= 0 {
		t.Fatalf("qemu-img bench time %q", m[1])
	}
	return s
}
