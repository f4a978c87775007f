package iscsi

import (
	"syscall"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
	"github.com/rbdgw/rbdgw/gateway/internal/pdu"
	"github.com/rbdgw/rbdgw/gateway/metrics"
	"github.com/rbdgw/rbdgw/rbdbackend"
)

// withMetrics counts the test target's commands in a registry where LUN
// 0 is mapped, as the reconciler does.
func withMetrics(reg *metrics.Registry) envOption {
	reg.SetLUN(metrics.LUNInfo{Target: testIQN, LUN: 0, Disk: "disk1", Backend: "memory"})
	return func(o *Options, _ *TargetSpec) { o.Metrics = reg }
}

func lun0(t *testing.T, s metrics.Snapshot) metrics.Counters {
	t.Helper()
	for _, l := range s.LUNs {
		if l.Target == testIQN && l.LUN == 0 {
			return l.Counters
		}
	}
	t.Fatalf("no LUN 0 in %+v", s.LUNs)
	return metrics.Counters{}
}

func TestMetricsCountCommands(t *testing.T) {
	reg := metrics.NewRegistry(metrics.Options{Gateway: "gw1"})
	e := newEnv(t, withMetrics(reg))
	in := e.login() // its TEST UNIT READYs meet the POWER ON unit attention

	data := pattern(4096, 1)
	for i := range 3 {
		write10(t, in, uint32(i*8), data)
	}
	e.fault.SetLatency(rbdbackend.OpRead, 3*time.Millisecond)
	for range 2 {
		read10(t, in, 0, 8192)
	}
	e.fault.SetLatency(rbdbackend.OpRead, 0)
	if res, err := in.Do(&iscsitest.Cmd{CDB: []byte{0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0}}); err != nil || res.Status != 0 {
		t.Fatalf("SYNCHRONIZE CACHE: %v %+v", err, res)
	}
	e.fault.Inject(rbdbackend.Fault{Op: rbdbackend.OpRead, Err: rbdbackend.ErrTimeout, Count: 1})
	if res, err := in.Do(&iscsitest.Cmd{CDB: cdbRead10(0, 8), Read: true, EDTL: 4096}); err != nil || res.Status != 2 {
		t.Fatalf("failing READ: %v %+v", err, res)
	}
	// A LUN that is not mapped counts in the gateway's totals only.
	if res, err := in.Do(&iscsitest.Cmd{LUN: 5, CDB: cdbTUR()}); err != nil || res.Status != 2 {
		t.Fatalf("TEST UNIT READY of LUN 5: %v %+v", err, res)
	}

	s := reg.Snapshot()
	c := lun0(t, s)
	turs := c.Other.Commands
	if turs < 2 || c.SenseKeys[6] == 0 {
		t.Errorf("unit attention not counted: %d other commands, %d unit attentions", turs, c.SenseKeys[6])
	}
	if c.Write.Commands != 3 || c.WrittenBytes != 3*4096 {
		t.Errorf("writes: %d commands, %d bytes", c.Write.Commands, c.WrittenBytes)
	}
	if c.Read.Commands != 3 || c.ReadBytes != 2*8192 {
		t.Errorf("reads: %d commands, %d bytes", c.Read.Commands, c.ReadBytes)
	}
	if c.Flush.Commands != 1 {
		t.Errorf("flushes: %d", c.Flush.Commands)
	}
	if c.SenseKeys[2] != 1 { // NOT READY, from ErrTimeout
		t.Errorf("not ready: %d", c.SenseKeys[2])
	}
	if c.InFlight != 0 {
		t.Errorf("%d in flight", c.InFlight)
	}
	// The slow reads show in the latency and in its backend part.
	if p := c.Read.Latency.Quantile(0.5); p < 2500*time.Microsecond {
		t.Errorf("read p50 %v, want at least the backend's 3 ms", p)
	}
	if c.Read.Backend.Count() != 3 || c.Read.Backend.Sum < 6*time.Millisecond || c.Read.Backend.Sum > c.Read.Latency.Sum {
		t.Errorf("read backend %d commands %v, latency %v", c.Read.Backend.Count(), c.Read.Backend.Sum, c.Read.Latency.Sum)
	}
	if s.Totals.Commands() != c.Commands()+1 || s.Totals.SenseKeys[5] != 1 {
		t.Errorf("totals: %d commands (LUN 0: %d), %d illegal requests", s.Totals.Commands(), c.Commands(), s.Totals.SenseKeys[5])
	}

	if len(s.Sessions) != 1 {
		t.Fatalf("%d sessions", len(s.Sessions))
	}
	ss := s.Sessions[0]
	if ss.Target != testIQN || ss.Initiator != testInitiator || ss.ISID == "" || ss.LoginTime.IsZero() {
		t.Errorf("session %+v", ss.SessionInfo)
	}
	if ss.Commands != s.Totals.Commands() || ss.ReadBytes != c.ReadBytes || ss.WrittenBytes != c.WrittenBytes {
		t.Errorf("session counted %d commands, %d/%d bytes; gateway %d commands", ss.Commands, ss.ReadBytes, ss.WrittenBytes, s.Totals.Commands())
	}

	// A session that ends is forgotten; the LUN keeps its counts.
	if _, err := in.Logout(pdu.LogoutCloseSession); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "session end", func() bool { return len(reg.Snapshot().Sessions) == 0 })
	if got := lun0(t, reg.Snapshot()); got.Commands() != c.Commands() {
		t.Errorf("LUN 0 lost counts: %d, had %d", got.Commands(), c.Commands())
	}
}

// Commands in flight are counted, and commands a dropped connection
// abandons leave the count.
func TestMetricsInFlight(t *testing.T) {
	reg := metrics.NewRegistry(metrics.Options{Gateway: "gw1"})
	e := newEnv(t, withMetrics(reg))
	in := e.login()
	e.fault.SetLatency(rbdbackend.OpWrite, 300*time.Millisecond)
	const n = 4
	for i := range n {
		c := &iscsitest.Cmd{CDB: cdbWrite10(uint32(i*8), 8), EDTL: 4096, Data: pattern(4096, byte(i))}
		if err := in.Submit(c); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "commands in flight", func() bool { return lun0(t, reg.Snapshot()).InFlight == n })
	in.Close()
	waitFor(t, "abandoned commands", func() bool { return lun0(t, reg.Snapshot()).InFlight == 0 })
	waitFor(t, "session end", func() bool { return len(reg.Snapshot().Sessions) == 0 })
}

// A LUN mapped again (another disk) gets new counters, which connections
// already logged in find.
func TestMetricsLUNRemapped(t *testing.T) {
	reg := metrics.NewRegistry(metrics.Options{Gateway: "gw1"})
	e := newEnv(t, withMetrics(reg))
	in := e.login()
	read10(t, in, 0, 4096)
	old := lun0(t, reg.Snapshot()).Read.Commands
	reg.SetLUN(metrics.LUNInfo{Target: testIQN, LUN: 0, Disk: "disk2", Backend: "memory"})
	read10(t, in, 0, 4096)
	s := reg.Snapshot()
	if c := lun0(t, s); c.Read.Commands != 1 || s.LUNs[0].Disk != "disk2" {
		t.Errorf("after remapping: %d reads on %s", c.Read.Commands, s.LUNs[0].Disk)
	}
	if s.Totals.Read.Commands != old+1 {
		t.Errorf("gateway reads %d, want %d", s.Totals.Read.Commands, old+1)
	}
}

// BenchmarkIOMetrics compares the command path with metrics off and on,
// side by side: go test -bench IOMetrics -benchmem -count 5. Besides the
// wall time per command it reports the process's CPU time per command
// (cpu-ns/op, initiator and target together), which other load on the
// machine disturbs less.
func BenchmarkIOMetrics(b *testing.B) {
	for _, bc := range []struct {
		name  string
		write bool
	}{{"read-4KiB-QD16", false}, {"write-4KiB-QD16", true}} {
		b.Run(bc.name+"/metrics=off", func(b *testing.B) {
			withCPUTime(b, func() { benchIO(b, 4<<10, bc.write, 16) })
		})
		b.Run(bc.name+"/metrics=on", func(b *testing.B) {
			withCPUTime(b, func() {
				benchIO(b, 4<<10, bc.write, 16, withMetrics(metrics.NewRegistry(metrics.Options{Gateway: "bench"})))
			})
		})
	}
}

// withCPUTime runs f and reports the CPU time the process used per
// iteration.
func withCPUTime(b *testing.B, f func()) {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	f()
	b.ReportMetric(float64(cpu()-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkCommandCounting is what counting adds to each command on the
// serve loop: the LUN lookup in the connection's cache, two clock reads
// and the atomics of the LUN and the session.
func BenchmarkCommandCounting(b *testing.B) {
	reg := metrics.NewRegistry(metrics.Options{Gateway: "bench"})
	reg.SetLUN(metrics.LUNInfo{Target: testIQN, LUN: 0, Disk: "disk1"})
	ss := &session{srv: &Server{metrics: reg}, key: sessionKey{target: testIQN}, initiator: testInitiator}
	ss.startStats()
	c := &conn{srv: ss.srv, sess: ss}
	t := &task{read: true, edtl: 4096}
	t.cmd.CDB = cdbRead10(0, 8)
	m := completion{task: t, took: 10 * time.Microsecond}
	m.res.Data = make([]byte, 4096)
	b.ReportAllocs()
	for b.Loop() {
		c.countArrival(t)
		c.countCompletion(t, &m)
	}
}
