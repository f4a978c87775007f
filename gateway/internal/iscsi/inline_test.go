package iscsi

import (
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
	"github.com/rbdgw/rbdgw/gateway/internal/pdu"
	"github.com/rbdgw/rbdgw/rbdbackend"
)

func TestLUNLatencyPolicy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		samples []time.Duration
		fast    bool
	}{
		{"no samples", nil, false},
		{"too few samples", repeat(5*time.Microsecond, inlineWarmup-1), false},
		{"fast", repeat(5*time.Microsecond, inlineWarmup), true},
		{"slow", repeat(500*time.Microsecond, 40), false},
		{"one outlier turns it slow", append(repeat(5*time.Microsecond, 40), 10*time.Millisecond), false},
		{"fast again after the outlier", append(append(repeat(5*time.Microsecond, 40), 10*time.Millisecond),
			repeat(5*time.Microsecond, 40)...), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l lunLatency
			for _, d := range tc.samples {
				l.add(d)
			}
			if l.fast(50*time.Microsecond) != tc.fast {
				t.Fatalf("fast %v (avg %v over %d samples), want %v", !tc.fast, l.avg, l.samples, tc.fast)
			}
		})
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func TestInlineOpcodes(t *testing.T) {
	for op, want := range map[byte]bool{
		0x28: true, 0x2a: true, 0x88: true, 0x8a: true, 0x08: true, 0x0a: true, 0xa8: true, 0xaa: true,
		0x00: false, 0x12: false, 0x35: false, 0x41: false, 0x42: false, 0x83: false, 0x89: false, 0x93: false,
	} {
		if inlineOpcode(op) != want {
			t.Errorf("opcode %#02x: inline %v, want %v", op, !want, want)
		}
	}
}

func TestTaskQueue(t *testing.T) {
	var q taskQueue
	if q.pop() != nil {
		t.Fatal("empty queue returned a task")
	}
	a, b, c := &task{itt: 1}, &task{itt: 2}, &task{itt: 3}
	q.push(a)
	q.push(b)
	if q.pop() != a {
		t.Fatal("not FIFO")
	}
	q.push(c)
	if q.pop() != b || q.pop() != c || q.pop() != nil {
		t.Fatal("not FIFO")
	}
	q.push(a)
	if q.pop() != a || len(q.items) != 0 {
		t.Fatal("backing array not reused")
	}
}

// TestInlineCommandStallIsTakenOver runs fast writes until they execute on
// the serve loop, then makes the LU slow: the stalled inline write must not
// keep the connection from answering pings and task management.
func TestInlineCommandStallIsTakenOver(t *testing.T) {
	// The race detector slows the SCSI layer down: allow for it.
	e := newEnv(t, withTuning(func(o *Options) { o.InlineLatency = 10 * time.Millisecond }))
	in := e.login()
	for i := range 4 * inlineWarmup {
		write10(t, in, uint32(i*8), pattern(4096, byte(i)))
	}
	if e.srv.inlineRuns.Load() == 0 {
		t.Fatal("no command ran inline on a fast LU")
	}
	before := e.srv.loopTakeovers.Load()
	e.fault.SetLatency(rbdbackend.OpWrite, 400*time.Millisecond)
	defer e.fault.SetLatency(rbdbackend.OpWrite, 0)
	w := &iscsitest.Cmd{CDB: cdbWrite10(0, 8), EDTL: 4096, Data: pattern(4096, 1)}
	if err := in.Submit(w); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // the write is in the backend
	start := time.Now()
	if _, err := in.Ping(nil); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Fatalf("ping answered after %v behind a stalled command", d)
	}
	if e.srv.loopTakeovers.Load() == before {
		t.Fatal("the stalled inline command was not taken over")
	}
	code, err := in.TaskMgmt(pdu.TMFAbortTask, 0, w.ITT, w.CmdSN)
	if err != nil {
		t.Fatal(err)
	}
	if code != pdu.TMFRespComplete && !(code == pdu.TMFRespNoTask && w.Done()) {
		t.Fatalf("ABORT TASK response %d (write done %v)", code, w.Done())
	}
	e.fault.SetLatency(rbdbackend.OpWrite, 0)
	stillServes(t, in)
	// The LU is fast again: commands go back to the serve loop.
	runs := e.srv.inlineRuns.Load()
	for i := range 4 * inlineWarmup {
		write10(t, in, uint32(i*8), pattern(4096, byte(i)))
	}
	if e.srv.inlineRuns.Load() == runs {
		t.Fatal("commands no longer run inline once the LU is fast again")
	}
}

func TestSlowOrDisabledInlineStaysOnGoroutines(t *testing.T) {
	for _, tc := range []struct {
		name    string
		limit   time.Duration
		latency time.Duration
	}{
		{"slow LU", 0, 2 * time.Millisecond},
		{"inline off", -1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, withTuning(func(o *Options) { o.InlineLatency = tc.limit }))
			in := e.login()
			e.fault.SetLatency(rbdbackend.OpWrite, tc.latency)
			for i := range 2 * inlineWarmup {
				write10(t, in, uint32(i*8), pattern(4096, byte(i)))
			}
			if n := e.srv.inlineRuns.Load(); n != 0 {
				t.Fatalf("%d commands ran inline", n)
			}
		})
	}
}

func TestLoopBaton(t *testing.T) {
	resumed := make(chan struct{}, 4)
	var takeovers atomic.Int64
	b := &loopBaton{resume: func() { resumed <- struct{}{} }, takeovers: &takeovers}
	defer b.stop()

	// A quick inline command keeps the loop.
	tok := b.begin()
	b.relieve()
	if !b.end(tok) {
		t.Fatal("quick inline command lost the loop")
	}
	b.relieve() // nothing inline: no effect
	if takeovers.Load() != 0 {
		t.Fatal("takeover without a stalled command")
	}

	// A stalled one is taken over once; coming back it learns so.
	tok = b.begin()
	b.since.Store(monoNow() - int64(2*reliefAfter))
	b.relieve()
	b.relieve()
	<-resumed
	if takeovers.Load() != 1 {
		t.Fatalf("%d takeovers, want 1", takeovers.Load())
	}
	if b.end(tok) {
		t.Fatal("stalled command kept a loop that was taken over")
	}

	// The new owner's inline commands have their own tokens.
	tok2 := b.begin()
	if tok2 == tok || !b.end(tok2) {
		t.Fatal("new owner's inline command")
	}

	// The watchdog relieves a stall that no event would reach.
	tok = b.begin()
	b.since.Store(monoNow() - int64(2*reliefAfter))
	select {
	case <-resumed:
	case <-time.After(10 * reliefAfter):
		t.Fatal("watchdog did not take the stalled loop over")
	}
	if b.end(tok) {
		t.Fatal("stalled command kept the loop")
	}
}

// A burst of slow commands runs on as many task goroutines at once; once
// it is over, at most maxIdleWorkers of them stay for the next commands.
func TestIdleTaskWorkersBounded(t *testing.T) {
	const burst = 3 * maxIdleWorkers
	e := newEnv(t, withTuning(func(o *Options) {
		o.InlineLatency = -1
		o.Tuning.QueueDepth = 2 * burst
	}))
	in := e.login()
	e.fault.SetLatency(rbdbackend.OpWrite, 500*time.Millisecond)
	defer e.fault.SetLatency(rbdbackend.OpWrite, 0)
	var cmds []*iscsitest.Cmd
	for i := range burst {
		c := &iscsitest.Cmd{CDB: cdbWrite10(uint32(i), 1), EDTL: 512, Data: pattern(512, byte(i))}
		if err := in.Submit(c); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	// The commands reach the gateway and start while their writes wait.
	peak := 0
	for start := time.Now(); peak <= maxIdleWorkers && time.Since(start) < 400*time.Millisecond; {
		peak = max(peak, taskWorkers())
		time.Sleep(5 * time.Millisecond)
	}
	for _, c := range cmds {
		for !c.Done() {
			if _, err := in.Poll(); err != nil {
				t.Fatal(err)
			}
		}
		if c.Result.Status != 0 {
			t.Fatalf("write status %#x", c.Result.Status)
		}
	}
	if peak <= maxIdleWorkers {
		t.Fatalf("%d task goroutines during a burst of %d slow commands", peak, burst)
	}
	deadline := time.Now().Add(5 * time.Second)
	for taskWorkers() > maxIdleWorkers && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := taskWorkers(); n > maxIdleWorkers {
		t.Fatalf("%d task goroutines left after the burst, want at most %d", n, maxIdleWorkers)
	}
	stillServes(t, in)
}

// taskWorkers counts the goroutines in taskWorker.
func taskWorkers() int {
	buf := make([]byte, 1<<22)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), "iscsi.(*conn).taskWorker(")
}
