package tree

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/api/model"
	"github.com/rbdgw/rbdgw/gwcli/client"
)

const topIQN = "iqn.2024-01.io.rbdgw:t1"

func topRows() []model.LUNStats {
	row := func(target string, lun uint64, disk, gw, alua string, iops, mbps, p50, p99 float64, qd int64) model.LUNStats {
		return model.LUNStats{Target: target, LUN: lun, Disk: disk, Gateway: gw, ALUAState: alua,
			IORates: model.IORates{Window: 6, IOPS: iops, ReadIOPS: iops, ReadMBps: mbps, P50Ms: p50, P99Ms: p99, QueueDepth: qd}}
	}
	return []model.LUNStats{
		row(topIQN, 0, "rbd/vm0", "gw-a", "active_optimized", 120, 0.49, 0.8, 2.5, 1),
		row(topIQN, 0, "rbd/vm0", "gw-b", "active_non_optimized", 0, 0, 0, 0, 0),
		row(topIQN, 1, "rbd/vm1", "gw-b", "active_optimized", 11306.2, 46.31, 0.981, 2.972, 13),
		row(topIQN, 1, "rbd/vm1", "gw-a", "active_non_optimized", 2.5, 0.01, 12.5, 250, 0),
		row(topIQN, 2, "rbd/big", "gw-a", "active_optimized", 800, 3276.8, 5, 40, 32),
	}
}

func order(rows []model.LUNStats) string {
	var s []string
	for _, r := range rows {
		s = append(s, fmt.Sprintf("%d/%s", r.LUN, r.Gateway))
	}
	return strings.Join(s, " ")
}

func TestSortTop(t *testing.T) {
	for _, tc := range []struct {
		key     string
		reverse bool
		want    string
	}{
		{"iops", false, "1/gw-b 2/gw-a 0/gw-a 1/gw-a 0/gw-b"},
		{"iops", true, "0/gw-b 1/gw-a 0/gw-a 2/gw-a 1/gw-b"},
		{"mbps", false, "2/gw-a 1/gw-b 0/gw-a 1/gw-a 0/gw-b"},
		{"p99", false, "1/gw-a 2/gw-a 1/gw-b 0/gw-a 0/gw-b"},
		{"p50", false, "1/gw-a 2/gw-a 1/gw-b 0/gw-a 0/gw-b"},
		{"qd", false, "2/gw-a 1/gw-b 0/gw-a 0/gw-b 1/gw-a"},
		{"lun", false, "0/gw-a 0/gw-b 1/gw-a 1/gw-b 2/gw-a"},
		{"disk", false, "2/gw-a 0/gw-a 0/gw-b 1/gw-a 1/gw-b"},
		{"gateway", false, "0/gw-a 1/gw-a 2/gw-a 0/gw-b 1/gw-b"},
		{"gateway", true, "1/gw-b 0/gw-b 2/gw-a 1/gw-a 0/gw-a"},
	} {
		rows := topRows()
		sortTop(rows, tc.key, tc.reverse)
		if got := order(rows); got != tc.want {
			t.Errorf("sort %s reverse %v: %s, want %s", tc.key, tc.reverse, got, tc.want)
		}
	}
}

func TestFormatRates(t *testing.T) {
	for _, tc := range []struct {
		f    func(float64) string
		in   float64
		want string
	}{
		{formatRate, 0, "0"}, {formatRate, -1, "0"}, {formatRate, 0.04, "0.0"}, {formatRate, 2.46, "2.5"},
		{formatRate, 10, "10"}, {formatRate, 11306.5, "11307"}, {formatRate, 999999.4, "999999"}, {formatRate, 2.5e6, "2.50M"},
		{formatMBps, 0, "0"}, {formatMBps, 0.494, "0.49"}, {formatMBps, 46.31, "46.3"}, {formatMBps, 3276.8, "3277"},
		{formatMs, 0, "-"}, {formatMs, 0.9814, "0.981"}, {formatMs, 2.972, "2.97"}, {formatMs, 12.5, "12.5"}, {formatMs, 250.4, "250"},
	} {
		if got := tc.f(tc.in); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRenderTop(t *testing.T) {
	st := model.Stats{Time: time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC), Window: 5, LUNs: topRows(),
		Gateways: []model.GatewayStats{{Name: "gw-a", State: "up"}, {Name: "gw-b", State: "up"}, {Name: "gw-c", State: "down"}},
		Down:     []string{"gw-c"}}
	sortTop(st.LUNs, "iops", false)
	lines := renderTop(st, topOptions{sort: "iops"}, 0, 0, "")
	out := strings.Join(lines, "\n")
	for _, want := range []string{"window 5s", "sort iops", "gateways up: gw-a, gw-b; gw-c down",
		"LUNs 5: 12229 IOPS, 3324 MB/s, queue depth 46, target " + topIQN} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "keys:") {
		t.Errorf("batch output shows the keys:\n%s", out)
	}
	// Header then rows, numbers right-aligned under their heading.
	var hdr int
	for i, l := range lines {
		if strings.HasPrefix(l, "LUN  DISK") {
			hdr = i
		}
	}
	if hdr == 0 {
		t.Fatalf("no header:\n%s", out)
	}
	table := lines[hdr:]
	want := []string{
		"LUN  DISK     GATEWAY  ALUA   IOPS  READ/s  WRITE/s  MB/s  P50 ms  P99 ms  QD  ERR/s",
		"1    rbd/vm1  gw-b     AO    11306   11306        0  46.3   0.981    2.97  13      0",
		"2    rbd/big  gw-a     AO      800     800        0  3277    5.00    40.0  32      0",
		"0    rbd/vm0  gw-a     AO      120     120        0  0.49   0.800    2.50   1      0",
		"1    rbd/vm1  gw-a     ANO     2.5     2.5        0  0.01    12.5     250   0      0",
		"0    rbd/vm0  gw-b     ANO       0       0        0     0       -       -   0      0",
	}
	if strings.Join(table, "\n") != strings.Join(want, "\n") {
		t.Errorf("table:\n%s\nwant\n%s", strings.Join(table, "\n"), strings.Join(want, "\n"))
	}

	// Several targets: a TARGET column. The live view: the keys, lines
	// cut to the width, rows to the height.
	st.LUNs[0].Target = "iqn.2024-01.io.rbdgw:t2"
	lines = renderTop(st, topOptions{sort: "p99", reverse: true}, 60, 9, "error: cannot reach the API")
	if len(lines) != 9 {
		t.Errorf("%d lines for a height of 9:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	out = strings.Join(lines, "\n")
	for _, want := range []string{"sort p99 (reversed)", "keys: i iops", "error: cannot reach", "TARGET", "(3 more rows)"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	for _, l := range lines {
		if len([]rune(l)) > 60 {
			t.Errorf("line wider than 60: %q", l)
		}
	}
	if out := strings.Join(renderTop(model.Stats{}, topOptions{sort: "iops"}, 0, 0, ""), "\n"); !strings.Contains(out, "no LUNs") {
		t.Errorf("empty:\n%s", out)
	}
}

// statsAPI serves /luns/stats, /targets/{iqn}/stats and
// /gateways/{name}/stats with topRows, and counts the requests.
type statsAPI struct {
	mu   sync.Mutex
	reqs []string
}

func (s *statsAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.reqs = append(s.reqs, r.URL.RequestURI())
	s.mu.Unlock()
	st := model.Stats{Time: time.Now().UTC(), Window: 5, Gateways: []model.GatewayStats{{Name: "gw-a", State: "up"}, {Name: "gw-b", State: "up"}}, Down: []string{}}
	path := strings.TrimPrefix(r.URL.Path, "/api/v1")
	for _, l := range topRows() {
		switch {
		case path == "/luns/stats",
			path == "/targets/"+topIQN+"/stats" && l.Target == topIQN,
			strings.HasPrefix(path, "/gateways/") && path == "/gateways/"+l.Gateway+"/stats":
			st.LUNs = append(st.LUNs, l)
		}
	}
	if st.LUNs == nil && !strings.HasSuffix(path, "/stats") {
		w.WriteHeader(404)
		fmt.Fprint(w, `{"error":{"code":"not_found","message":"no route"}}`)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(st)
}

func (s *statsAPI) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.reqs...)
}

func newTopEnv(t *testing.T, h http.Handler) (*Env, *bytes.Buffer) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := client.New(client.Options{URL: srv.URL, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	return NewEnv(c, &out, &out), &out
}

func TestTopBatch(t *testing.T) {
	api := &statsAPI{}
	e, out := newTopEnv(t, api)
	ctx := context.Background()

	// count snapshots, interval apart.
	start := time.Now()
	if err := e.Line(ctx, "top count=2 interval=200ms sort=p99"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("two snapshots in %v", d)
	}
	if n := strings.Count(out.String(), "gwcli top - "); n != 2 {
		t.Errorf("%d snapshots:\n%s", n, out)
	}
	if reqs := api.requests(); len(reqs) != 2 || reqs[0] != "/api/v1/luns/stats" {
		t.Errorf("requests: %q", reqs)
	}
	first := strings.Split(out.String(), "\n")
	for i, l := range first {
		if strings.HasPrefix(l, "LUN ") {
			if !strings.HasPrefix(first[i+1], "1    rbd/vm1  gw-a") {
				t.Errorf("sorted by p99, first row: %q", first[i+1])
			}
			break
		}
	}

	// -o json: the API's document, rows sorted and filtered.
	out.Reset()
	e.Format = FormatJSON
	if err := e.Line(ctx, "top count=1 gateway=gw-b window=10s"); err != nil {
		t.Fatal(err)
	}
	var st model.Stats
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if order(st.LUNs) != "1/gw-b 0/gw-b" {
		t.Errorf("gateway=gw-b: %s", order(st.LUNs))
	}
	if reqs := api.requests(); reqs[len(reqs)-1] != "/api/v1/gateways/gw-b/stats?window=10s" {
		t.Errorf("request: %q", reqs[len(reqs)-1])
	}

	// At a target: its stats; at a LUN of it: that disk's rows.
	out.Reset()
	if err := e.Line(ctx, "/iscsi-targets/"+topIQN+"/disks/rbd/vm1 top count=1 sort=gateway"); err != nil {
		t.Fatal(err)
	}
	st = model.Stats{}
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if order(st.LUNs) != "1/gw-a 1/gw-b" {
		t.Errorf("at rbd/vm1: %s", order(st.LUNs))
	}
	if reqs := api.requests(); reqs[len(reqs)-1] != "/api/v1/targets/"+topIQN+"/stats" {
		t.Errorf("request: %q", reqs[len(reqs)-1])
	}

	// YAML: one document per snapshot.
	out.Reset()
	e.Format = FormatYAML
	if err := e.Line(ctx, "top count=2 interval=100ms"); err != nil {
		t.Fatal(err)
	}
	if strings.Count(out.String(), "\n---\n") != 1 || strings.Count(out.String(), "window_seconds: 5\n") != 2 {
		t.Errorf("yaml:\n%s", out)
	}

	// Mistakes are usage errors, before any request.
	n := len(api.requests())
	for _, line := range []string{"top sort=size", "top count=0", "top interval=1", "top interval=10ms", "top window=10m", "top frob=1"} {
		err := e.Line(ctx, line)
		if ExitCode(err) != ExitUsage {
			t.Errorf("%s: %v (exit %d)", line, err, ExitCode(err))
		}
	}
	if len(api.requests()) != n {
		t.Errorf("requests sent for bad input: %q", api.requests()[n:])
	}
}

// fakeTerm is a terminal for the live view.
type fakeTerm struct {
	keys     chan []byte
	restored int
}

func (f *fakeTerm) Keys() <-chan []byte { return f.keys }
func (f *fakeTerm) Size() (int, int)    { return 120, 30 }
func (f *fakeTerm) Restore()            { f.restored++ }

// syncBuffer is a bytes.Buffer safe to read while the view writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestTopLive(t *testing.T) {
	api := &statsAPI{}
	e, _ := newTopEnv(t, api)
	var out syncBuffer
	e.Out = &out
	ft := &fakeTerm{keys: make(chan []byte, 4)}
	done := make(chan error, 1)
	go func() {
		done <- e.topLive(context.Background(), ft, topOptions{sort: "iops", interval: 100 * time.Millisecond})
	}()
	waitFor := func(what string, ok func(string) bool) string {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			s := out.String()
			if ok(s) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("never %s:\n%s", what, s)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Frames start at the top left; the latest frame is after the last.
	frame := func(s string) string { return s[max(strings.LastIndex(s, "\x1b[H"), 0):] }
	waitFor("drawn", func(s string) bool { return strings.Contains(frame(s), "rbd/vm1") })
	waitFor("refreshed", func(s string) bool { return len(api.requests()) >= 3 })
	s := frame(out.String())
	if !strings.Contains(s, "keys: i iops") || strings.Index(s, "1    rbd/vm1  gw-b") > strings.Index(s, "2    rbd/big") {
		t.Errorf("first frame, by IOPS:\n%s", s)
	}
	// A key sorts at once; r reverses; an escape sequence is ignored.
	ft.keys <- []byte("\x1b[A")
	ft.keys <- []byte("n")
	waitFor("sorted by disk", func(s string) bool {
		f := frame(s)
		return strings.Contains(f, "sort disk") && strings.Index(f, "2    rbd/big") < strings.Index(f, "0    rbd/vm0")
	})
	ft.keys <- []byte("r")
	waitFor("reversed", func(s string) bool { return strings.Contains(frame(s), "sort disk (reversed)") })
	ft.keys <- []byte("q")
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("q did not leave")
	}
	if ft.restored == 0 {
		t.Error("terminal not restored")
	}
}
