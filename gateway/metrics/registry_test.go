package metrics

import (
	"testing"
	"time"
)

func TestRegistryLUNs(t *testing.T) {
	r := NewRegistry(Options{Gateway: "gw1"})
	info := LUNInfo{Target: "iqn.t", LUN: 0, Disk: "rbd/img", Pool: "rbd", Image: "img", Backend: "rbd"}
	g0 := r.Generation()
	r.SetLUN(info)
	if r.Generation() == g0 {
		t.Error("SetLUN did not change the generation")
	}
	l := r.LUN("iqn.t", 0)
	if l == nil || l.Info() != info {
		t.Fatalf("LUN = %+v", l)
	}
	// The same mapping again keeps the counters and the generation.
	g1 := r.Generation()
	r.SetLUN(info)
	if r.Generation() != g1 || r.LUN("iqn.t", 0) != l {
		t.Error("setting the same LUN again replaced its counters")
	}
	// A LUN that is not mapped counts in the gateway's totals only.
	unmapped := r.LUN("iqn.t", 7)
	if unmapped == nil || unmapped == l || r.LUN("iqn.other", 0) != unmapped {
		t.Error("unmapped LUNs do not share the gateway's counters")
	}
	o := Outcome{Op: OpRead, Latency: time.Millisecond, Executed: true, ReadBytes: 512}
	l.Arrived()
	l.Done(&o)
	unmapped.Arrived()
	unmapped.Done(&Outcome{Op: OpOther, Status: samCheckCondition, Sense: []byte{0x70, 0, 5}})

	s := r.Snapshot()
	if len(s.LUNs) != 1 || s.LUNs[0].Counters.Read.Commands != 1 || s.LUNs[0].ALUAState != "active_optimized" {
		t.Fatalf("snapshot LUNs %+v", s.LUNs)
	}
	if s.Totals.Commands() != 2 || s.Totals.SenseKeys[5] != 1 || s.Totals.ReadBytes != 512 {
		t.Errorf("totals: %d commands, %d illegal requests, %d bytes", s.Totals.Commands(), s.Totals.SenseKeys[5], s.Totals.ReadBytes)
	}

	// Another disk at the same LUN starts from zero; the totals keep
	// what the old one counted, before and after it is folded in.
	other := info
	other.Disk, other.Image = "rbd/img2", "img2"
	r.SetLUN(other)
	l2 := r.LUN("iqn.t", 0)
	if l2 == l || l2.Info() != other {
		t.Fatal("another disk kept the old counters")
	}
	s = r.Snapshot()
	if s.LUNs[0].Counters.Commands() != 0 || s.Totals.Commands() != 2 {
		t.Errorf("after remapping: LUN %d commands, totals %d", s.LUNs[0].Counters.Commands(), s.Totals.Commands())
	}
	r.mu.Lock()
	for i := range r.retired {
		r.retired[i].at = time.Now().Add(-2 * retireGrace)
	}
	r.mu.Unlock()
	s = r.Snapshot()
	if len(r.retired) != 0 || s.Totals.Commands() != 2 {
		t.Errorf("after folding: %d retired, totals %d", len(r.retired), s.Totals.Commands())
	}

	// A removed LUN still in flight is not folded.
	g2 := r.Generation()
	l2.Arrived()
	r.RemoveLUN("iqn.t", 0)
	if r.Generation() == g2 {
		t.Error("RemoveLUN did not change the generation")
	}
	r.mu.Lock()
	r.retired[0].at = time.Now().Add(-2 * retireGrace)
	r.mu.Unlock()
	s = r.Snapshot()
	if len(s.LUNs) != 0 || len(r.retired) != 1 || s.Totals.InFlight != 1 {
		t.Errorf("removed LUN in flight: %d LUNs, %d retired, %d in flight", len(s.LUNs), len(r.retired), s.Totals.InFlight)
	}
	l2.Done(&o)
	s = r.Snapshot()
	if len(r.retired) != 0 || s.Totals.InFlight != 0 || s.Totals.Commands() != 3 {
		t.Errorf("after its last command: %d retired, %d in flight, %d commands", len(r.retired), s.Totals.InFlight, s.Totals.Commands())
	}
	r.RemoveLUN("iqn.t", 0) // not mapped: nothing happens
}

func TestRegistrySessionsAndEvents(t *testing.T) {
	r := NewRegistry(Options{Gateway: "gw1", Version: "1.0"})
	login := time.Unix(1700000000, 0)
	a := r.AddSession(SessionInfo{Target: "iqn.t", Initiator: "iqn.i", ISID: "023d00000001", TSIH: 1, LoginTime: login})
	b := r.AddSession(SessionInfo{Target: "iqn.t", Initiator: "iqn.h", ISID: "023d00000001", TSIH: 2, LoginTime: login})
	a.Done(&Outcome{ReadBytes: 1})
	s := r.Snapshot()
	if len(s.Sessions) != 2 || s.Sessions[0].Initiator != "iqn.h" || s.Sessions[1].Commands != 1 {
		t.Errorf("sessions %+v", s.Sessions)
	}
	r.RemoveSession(b)
	r.RemoveSession(nil)
	if s = r.Snapshot(); len(s.Sessions) != 1 {
		t.Errorf("%d sessions after removal", len(s.Sessions))
	}

	r.OwnerChanged("d1")
	r.Takeover("d1", "claimed")
	r.Takeover("d1", "claimed")
	r.Takeover("d0", "conflict")
	r.Fenced("d1", 2, false)
	r.Fenced("d1", 0, true)
	r.WriteStalled("d1")
	s = r.Snapshot()
	if len(s.Disks) != 2 || s.Disks[0].Disk != "d0" {
		t.Fatalf("disks %+v", s.Disks)
	}
	d1 := s.Disks[1]
	if d1.OwnerChanges != 1 || d1.Takeovers["claimed"] != 2 || d1.FencedClients != 2 || d1.FenceErrors != 1 || d1.WriteStalls != 1 {
		t.Errorf("d1 events %+v", d1)
	}
	// The snapshot is a copy.
	d1.Takeovers["claimed"] = 99
	if r.Snapshot().Disks[1].Takeovers["claimed"] != 2 {
		t.Error("snapshot shares the takeover map")
	}
}

func TestRegistryALUAState(t *testing.T) {
	r := NewRegistry(Options{Gateway: "gw1"})
	r.SetLUN(LUNInfo{Target: "iqn.t", LUN: 0, Disk: "a"})
	r.SetLUN(LUNInfo{Target: "iqn.t", LUN: 1, Disk: "b"})
	r.SetLUN(LUNInfo{Target: "iqn.t", LUN: 2, Disk: "c"})
	r.SetALUAState(func(disk string) uint8 {
		return map[string]uint8{"a": 0, "b": 1, "c": 0xf}[disk]
	})
	s := r.Snapshot()
	want := []string{"active_optimized", "active_non_optimized", "transitioning"}
	for i, l := range s.LUNs {
		if l.ALUAState != want[i] {
			t.Errorf("LUN %d: %s, want %s", l.LUN, l.ALUAState, want[i])
		}
	}
	if ALUAStateName(0x9) != "unknown" {
		t.Error("unknown state name")
	}
}

// A nil registry counts nothing and never fails: metrics are off.
func TestNilRegistry(t *testing.T) {
	var r *Registry
	r.SetLUN(LUNInfo{Target: "t"})
	r.RemoveLUN("t", 0)
	r.SetALUAState(nil)
	r.OwnerChanged("d")
	r.Takeover("d", "claimed")
	r.Fenced("d", 1, false)
	r.WriteStalled("d")
	r.RemoveSession(r.AddSession(SessionInfo{}))
	if r.LUN("t", 0) != nil || r.AddSession(SessionInfo{}) != nil {
		t.Error("nil registry handed out counters")
	}
	if s := r.Snapshot(); len(s.LUNs) != 0 {
		t.Error("nil registry has LUNs")
	}
}

func TestQuantileAndRates(t *testing.T) {
	var h histogram
	// 90 fast reads at 80 µs (bucket 50–100 µs), 10 slow at 20 ms
	// (bucket 10–25 ms).
	for range 90 {
		h.observe(int64(80 * time.Microsecond))
	}
	for range 10 {
		h.observe(int64(20 * time.Millisecond))
	}
	hist := h.load()
	if q := hist.Quantile(0.5); q <= 50*time.Microsecond || q > 100*time.Microsecond {
		t.Errorf("p50 %v", q)
	}
	if q := hist.Quantile(0.99); q <= 10*time.Millisecond || q > 25*time.Millisecond {
		t.Errorf("p99 %v", q)
	}
	if q := (Histogram{}).Quantile(0.5); q != 0 {
		t.Errorf("empty p50 %v", q)
	}
	var inf Histogram
	inf.Buckets[NumBuckets-1] = 3
	if q := inf.Quantile(0.5); q != 5*time.Second {
		t.Errorf("p50 in +Inf bucket %v", q)
	}
	if m := hist.Mean(); m != (90*80*time.Microsecond+10*20*time.Millisecond)/100 {
		t.Errorf("mean %v", m)
	}

	prev := Counters{ReadBytes: 1000}
	prev.Read.Commands = 10
	cur := Counters{ReadBytes: 1000 + 100*4096, InFlight: 4}
	cur.Read.Commands = 110
	cur.Read.Latency = hist
	cur.Read.Backend = hist
	cur.SenseKeys[3] = 5
	r := RatesBetween(prev, cur, 2*time.Second)
	if r.ReadIOPS != 50 || r.IOPS != 50 || r.ReadBytesPerSec != 100*4096/2 || r.ErrorsPerSec != 2.5 || r.InFlight != 4 {
		t.Errorf("rates %+v", r)
	}
	if r.P99 < 10*time.Millisecond || r.BackendMean != hist.Mean() {
		t.Errorf("rates latency %+v", r)
	}
	// A reset (LUN mapped again, gateway restarted) restarts the window.
	if r := RatesBetween(cur, prev, time.Second); r.ReadIOPS != 10 {
		t.Errorf("after a reset: %v IOPS, want 10", r.ReadIOPS)
	}
	if r := RatesBetween(prev, cur, 0); r.IOPS != 0 || r.InFlight != 4 {
		t.Errorf("empty window %+v", r)
	}
	sum := cur.Add(cur).Sub(cur)
	if sum.Read.Commands != cur.Read.Commands || sum.Read.Latency != cur.Read.Latency || sum.SenseKeys != cur.SenseKeys {
		t.Error("Add and Sub do not cancel")
	}
}
