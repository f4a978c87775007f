package metrics

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// busyRegistry has a LUN of each kind, a session, errors and events.
func busyRegistry() *Registry {
	r := NewRegistry(Options{Gateway: "gw1", Version: "0.1"})
	r.SetLUN(LUNInfo{Target: "iqn.2024-01.org.example:t1", LUN: 0, Disk: "rbd/vm1", Pool: "rbd", Image: "vm1", Backend: "rbd"})
	r.SetLUN(LUNInfo{Target: "iqn.2024-01.org.example:t1", LUN: 1, Disk: "scratch", Backend: "memory"})
	r.SetALUAState(func(disk string) uint8 {
		if disk == "scratch" {
			return 0x1
		}
		return 0x0
	})
	l := r.LUN("iqn.2024-01.org.example:t1", 0)
	s := r.AddSession(SessionInfo{Target: "iqn.2024-01.org.example:t1", Initiator: "iqn.1994-05.com.redhat:host1",
		ISID: "023d00000001", TSIH: 3, LoginTime: time.Unix(1700000000, 0)})
	for i, o := range []Outcome{
		{Op: OpRead, Latency: 400 * time.Microsecond, Backend: 300 * time.Microsecond, Executed: true, ReadBytes: 4096},
		{Op: OpWrite, Latency: 3 * time.Millisecond, Backend: 2 * time.Millisecond, Executed: true, WrittenBytes: 4096},
		{Op: OpFlush, Latency: time.Millisecond, Backend: time.Millisecond, Executed: true},
		{Op: OpOther, Latency: 30 * time.Microsecond, Executed: true, Status: samCheckCondition, Sense: []byte{0x70, 0, 6}},
		{Op: OpWrite, Latency: 5 * time.Millisecond, Executed: true, Status: samReservationConflict},
	} {
		l.Arrived()
		if i < 4 {
			l.Done(&o)
		}
		s.Done(&o)
	}
	r.OwnerChanged("rbd/vm1")
	r.Takeover("rbd/vm1", "claimed")
	r.Fenced("rbd/vm1", 1, false)
	return r
}

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// sample is one series of a scrape: metric name (with _bucket, _sum or
// _count for histograms) and labels.
type sample struct {
	name   string
	labels string // sorted "k=v,k=v"
}

// parseScrape reads a scrape into its series values.
func parseScrape(t *testing.T, body string) map[sample]float64 {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse scrape: %v", err)
	}
	out := map[sample]float64{}
	key := func(m *dto.Metric, extra ...string) string {
		var kv []string
		for _, l := range m.GetLabel() {
			kv = append(kv, l.GetName()+"="+l.GetValue())
		}
		kv = append(kv, extra...)
		slices.Sort(kv)
		return strings.Join(kv, ",")
	}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			switch {
			case m.GetHistogram() != nil:
				h := m.GetHistogram()
				out[sample{name + "_count", key(m)}] = float64(h.GetSampleCount())
				out[sample{name + "_sum", key(m)}] = h.GetSampleSum()
				for _, b := range h.GetBucket() {
					out[sample{name + "_bucket", key(m, "le="+strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64))}] = float64(b.GetCumulativeCount())
				}
			case m.GetCounter() != nil:
				out[sample{name, key(m)}] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[sample{name, key(m)}] = m.GetGauge().GetValue()
			case m.GetUntyped() != nil:
				out[sample{name, key(m)}] = m.GetUntyped().GetValue()
			}
		}
	}
	return out
}

// labels builds a sorted label key from "k=v" pairs.
func labels(kv ...string) string {
	kv = slices.Clone(kv)
	slices.Sort(kv)
	return strings.Join(kv, ",")
}

func TestCollectorOutput(t *testing.T) {
	got := parseScrape(t, scrape(t, Handler(busyRegistry(), nil)))
	lun0 := []string{"gateway=gw1", "target=iqn.2024-01.org.example:t1", "lun=0", "disk=rbd/vm1", "pool=rbd", "image=vm1"}
	lun1 := []string{"gateway=gw1", "target=iqn.2024-01.org.example:t1", "lun=1", "disk=scratch", "pool=", "image="}
	with := func(base []string, extra ...string) string { return labels(append(slices.Clone(base), extra...)...) }
	sess := []string{"gateway=gw1", "target=iqn.2024-01.org.example:t1", "initiator=iqn.1994-05.com.redhat:host1", "isid=023d00000001"}
	for _, tc := range []struct {
		name   string
		labels string
		want   float64
	}{
		{"rbdgw_gateway_info", labels("gateway=gw1", "version=0.1"), 1},
		{"rbdgw_gateway_commands_total", labels("gateway=gw1", "op=read"), 1},
		{"rbdgw_gateway_commands_total", labels("gateway=gw1", "op=write"), 1},
		{"rbdgw_gateway_commands_in_flight", labels("gateway=gw1"), 1},
		{"rbdgw_gateway_read_bytes_total", labels("gateway=gw1"), 4096},
		{"rbdgw_gateway_sessions", labels("gateway=gw1", "target=iqn.2024-01.org.example:t1"), 1},
		{"rbdgw_gateway_command_duration_seconds_count", labels("gateway=gw1", "op=flush"), 1},
		{"rbdgw_lun_info", with(lun0, "backend=rbd"), 1},
		{"rbdgw_lun_info", with(lun1, "backend=memory"), 1},
		{"rbdgw_lun_commands_total", with(lun0, "op=write"), 1},
		{"rbdgw_lun_commands_total", with(lun0, "op=other"), 1},
		{"rbdgw_lun_commands_total", with(lun1, "op=read"), 0},
		{"rbdgw_lun_read_bytes_total", with(lun0), 4096},
		{"rbdgw_lun_written_bytes_total", with(lun0), 4096},
		{"rbdgw_lun_commands_in_flight", with(lun0), 1},
		{"rbdgw_lun_errors_total", with(lun0, "status=check_condition", "sense_key=unit_attention"), 1},
		{"rbdgw_lun_command_duration_seconds_bucket", with(lun0, "op=read", "le=0.00025"), 0},
		{"rbdgw_lun_command_duration_seconds_bucket", with(lun0, "op=read", "le=0.0005"), 1},
		{"rbdgw_lun_command_duration_seconds_bucket", with(lun0, "op=read", "le=+Inf"), 1},
		{"rbdgw_lun_command_duration_seconds_count", with(lun0, "op=write"), 1},
		{"rbdgw_lun_command_duration_seconds_sum", with(lun0, "op=write"), 0.003},
		{"rbdgw_lun_backend_duration_seconds_sum", with(lun0, "op=write"), 0.002},
		{"rbdgw_lun_backend_duration_seconds_count", with(lun0, "op=other"), 1},
		{"rbdgw_lun_alua_state", with(lun0, "state=active_optimized"), 1},
		{"rbdgw_lun_alua_state", with(lun0, "state=active_non_optimized"), 0},
		{"rbdgw_lun_alua_state", with(lun0, "state=transitioning"), 0},
		{"rbdgw_lun_alua_state", with(lun1, "state=active_optimized"), 0},
		{"rbdgw_lun_alua_state", with(lun1, "state=active_non_optimized"), 1},
		{"rbdgw_alua_owner_changes_total", labels("gateway=gw1", "disk=rbd/vm1"), 1},
		{"rbdgw_alua_takeovers_total", labels("gateway=gw1", "disk=rbd/vm1", "result=claimed"), 1},
		{"rbdgw_alua_fenced_clients_total", labels("gateway=gw1", "disk=rbd/vm1"), 1},
		{"rbdgw_alua_fence_errors_total", labels("gateway=gw1", "disk=rbd/vm1"), 0},
		{"rbdgw_session_commands_total", labels(sess...), 5},
		{"rbdgw_session_errors_total", labels(sess...), 2},
		{"rbdgw_session_read_bytes_total", labels(sess...), 4096},
		{"rbdgw_session_written_bytes_total", labels(sess...), 4096},
		{"rbdgw_session_login_time_seconds", labels(sess...), 1.7e9},
	} {
		v, ok := got[sample{tc.name, tc.labels}]
		switch {
		case !ok:
			t.Errorf("scrape lacks %s{%s}", tc.name, tc.labels)
		case v != tc.want:
			t.Errorf("%s{%s} = %v, want %v", tc.name, tc.labels, v, tc.want)
		}
	}
	names := map[string]bool{}
	for s := range got {
		names[s.name] = true
	}
	for _, n := range []string{"go_goroutines", "process_start_time_seconds", "rbdgw_gateway_start_time_seconds"} {
		if !names[n] {
			t.Errorf("scrape lacks %s", n)
		}
	}
	// Error kinds that never happened are not reported.
	if _, ok := got[sample{"rbdgw_lun_errors_total", with(lun0, "status=check_condition", "sense_key=medium_error")}]; ok {
		t.Error("zero error series reported")
	}
}

// The collector's descriptions match what it collects, and the metrics
// follow Prometheus's naming rules (promlint).
func TestCollectorLint(t *testing.T) {
	c := NewCollector(busyRegistry())
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("pedantic gather: %v", err)
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// promtool (Debian's prometheus package) accepts a scrape.
func TestScrapePassesPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (apt-get install prometheus)")
	}
	body := scrape(t, Handler(busyRegistry(), nil))
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out.String())
	}
}

// Two sessions with the same labels (a reinstatement in progress) are
// reported as one, or the scrape would fail.
func TestCollectorMergesSessions(t *testing.T) {
	r := NewRegistry(Options{Gateway: "gw1"})
	info := SessionInfo{Target: "t", Initiator: "i", ISID: "1", LoginTime: time.Unix(100, 0)}
	r.AddSession(info).Done(&Outcome{})
	info.TSIH, info.LoginTime = 2, time.Unix(200, 0)
	r.AddSession(info).Done(&Outcome{})
	got := parseScrape(t, scrape(t, Handler(r, nil)))
	sess := labels("gateway=gw1", "initiator=i", "isid=1", "target=t")
	if v := got[sample{"rbdgw_session_commands_total", sess}]; v != 2 {
		t.Errorf("merged session commands %v, want 2", v)
	}
	if v := got[sample{"rbdgw_session_login_time_seconds", sess}]; v != 200 {
		t.Errorf("merged session login time %v, want the newer", v)
	}
	if v := got[sample{"rbdgw_gateway_sessions", labels("gateway=gw1", "target=t")}]; v != 2 {
		t.Errorf("sessions %v, want 2", v)
	}
}

func TestHandlerContentType(t *testing.T) {
	srv := httptest.NewServer(Handler(NewRegistry(Options{Gateway: "g"}), nil))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("content type %q", ct)
	}
}
