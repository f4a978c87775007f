package metrics

import (
	"sync"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		cdb  []byte
		want Op
	}{
		{nil, OpOther},
		{[]byte{0x28}, OpRead},
		{[]byte{0x88}, OpRead},
		{[]byte{0x2a}, OpWrite},
		{[]byte{0x8a}, OpWrite},
		{[]byte{0x93}, OpWrite}, // WRITE SAME (16)
		{[]byte{0x89}, OpWrite}, // COMPARE AND WRITE
		{[]byte{0x35}, OpFlush},
		{[]byte{0x91}, OpFlush},
		{[]byte{0x00}, OpOther}, // TEST UNIT READY
		{[]byte{0x42}, OpOther}, // UNMAP
		{[]byte{0xa0}, OpOther}, // REPORT LUNS
	} {
		if got := Classify(tc.cdb); got != tc.want {
			t.Errorf("Classify(% x) = %v, want %v", tc.cdb, got, tc.want)
		}
	}
	if OpRead.String() != "read" || Op(9).String() != "unknown" {
		t.Error("op names")
	}
}

func TestHistogramBuckets(t *testing.T) {
	var h histogram
	for _, d := range []time.Duration{
		0,                     // bucket 0
		10 * time.Microsecond, // bucket 0 (le is inclusive)
		11 * time.Microsecond, // bucket 1
		time.Millisecond,      // bucket 6
		5 * time.Second,       // last bound
		time.Minute,           // +Inf
		-time.Millisecond,     // clock step: counted as 0
	} {
		h.observe(int64(d))
	}
	got := h.load()
	want := map[int]uint64{0: 3, 1: 1, 6: 1, len(bucketBounds) - 1: 1, len(bucketBounds): 1}
	for i, n := range got.Buckets {
		if n != want[i] {
			t.Errorf("bucket %d (le %v) = %d, want %d", i, BucketBounds()[min(i, len(bucketBounds)-1)], n, want[i])
		}
	}
	if got.Count() != 7 {
		t.Errorf("count %d", got.Count())
	}
	if wantSum := 10*time.Microsecond + 11*time.Microsecond + time.Millisecond + 5*time.Second + time.Minute; got.Sum != wantSum {
		t.Errorf("sum %v, want %v", got.Sum, wantSum)
	}
}

func TestSenseKey(t *testing.T) {
	fixed := make([]byte, 18)
	fixed[0], fixed[2] = 0xf0, 0x05 // VALID bit set
	desc := []byte{0x72, 0x06, 0x29, 0x00, 0, 0, 0, 0}
	for _, tc := range []struct {
		sense []byte
		key   uint8
		ok    bool
	}{
		{fixed, 5, true},
		{desc, 6, true},
		{[]byte{0x73, 0x02, 0x04}, 2, true},
		{nil, 0, false},
		{[]byte{0x70, 0}, 0, false},
		{[]byte{0x7f, 0, 3}, 0, false},
	} {
		k, ok := senseKey(tc.sense)
		if k != tc.key || ok != tc.ok {
			t.Errorf("senseKey(% x) = %d, %v; want %d, %v", tc.sense, k, ok, tc.key, tc.ok)
		}
	}
	if SenseKeyName(5) != "illegal_request" || SenseKeyName(0x0e) != "miscompare" {
		t.Error("sense key names")
	}
}

func TestLUNOutcomes(t *testing.T) {
	l := newLUN(LUNInfo{Target: "iqn.t", LUN: 1})
	notReady := []byte{0x70, 0, 0x02, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x04, 0x0a, 0, 0, 0, 0}
	outcomes := []Outcome{
		{Op: OpRead, Latency: 300 * time.Microsecond, Backend: 200 * time.Microsecond, Executed: true, ReadBytes: 4096},
		{Op: OpWrite, Latency: 2 * time.Millisecond, Backend: time.Millisecond, Executed: true, WrittenBytes: 8192},
		{Op: OpFlush, Latency: time.Millisecond, Backend: time.Millisecond, Executed: true},
		{Op: OpOther, Latency: 20 * time.Microsecond, Backend: 5 * time.Microsecond, Executed: true, Status: samCheckCondition, Sense: notReady},
		{Op: OpWrite, Latency: time.Millisecond, Status: samCheckCondition, Sense: []byte{0x70, 0, 0x0b}}, // not executed
		{Op: OpRead, Latency: time.Second, Executed: true, Aborted: true},
		{Op: OpRead, Latency: time.Second, Executed: true, Aborted: true, Responded: true},
		{Op: OpOther, Executed: true, Status: samReservationConflict},
		{Op: OpOther, Executed: true, Status: samConditionMet},
		{Op: OpOther, Executed: true, Status: 0x22},              // COMMAND TERMINATED (obsolete)
		{Op: OpOther, Executed: true, Status: samCheckCondition}, // no sense data
	}
	for range outcomes {
		l.Arrived()
	}
	l.Arrived()
	for i := range outcomes {
		l.Done(&outcomes[i])
	}
	c := l.load()
	if c.InFlight != 1 {
		t.Errorf("in flight %d, want 1", c.InFlight)
	}
	l.Dropped()
	c = l.load()
	check := func(name string, got, want uint64) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
	check("in flight", uint64(c.InFlight), 0)
	check("reads", c.Read.Commands, 3)
	check("writes", c.Write.Commands, 2)
	check("flushes", c.Flush.Commands, 1)
	check("other", c.Other.Commands, 5)
	check("commands", c.Commands(), 11)
	check("write backend observations", c.Write.Backend.Count(), 1) // one was not executed
	check("read bytes", c.ReadBytes, 4096)
	check("written bytes", c.WrittenBytes, 8192)
	check("not ready", c.SenseKeys[2], 1)
	check("aborted command", c.SenseKeys[0x0b], 1)
	check("aborted (no response)", c.Statuses[statusAborted], 2) // one by Dropped
	check("task aborted", c.Statuses[statusTaskAborted], 1)
	check("reservation conflict", c.Statuses[statusReservationConflict], 1)
	check("other status", c.Statuses[statusOther], 2)
	check("errors", c.Errors(), 8)
	if c.Write.Latency.Sum != 3*time.Millisecond {
		t.Errorf("write latency sum %v", c.Write.Latency.Sum)
	}
}

// The I/O path must not allocate: Arrived and Done run for every command.
func TestCountingDoesNotAllocate(t *testing.T) {
	l := newLUN(LUNInfo{})
	s := &Session{}
	o := Outcome{Op: OpRead, Latency: time.Millisecond, Backend: time.Microsecond, Executed: true, ReadBytes: 4096,
		Status: samCheckCondition, Sense: []byte{0x70, 0, 3}}
	if n := testing.AllocsPerRun(1000, func() {
		l.Arrived()
		l.Done(&o)
		s.Done(&o)
	}); n != 0 {
		t.Errorf("%v allocations per command", n)
	}
}

func TestConcurrentCounting(t *testing.T) {
	l := newLUN(LUNInfo{})
	const workers, per = 4, 5000
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := Outcome{Op: OpWrite, Latency: 100 * time.Microsecond, Executed: true, WrittenBytes: 512}
			for range per {
				l.Arrived()
				l.Done(&o)
			}
		}()
	}
	// A reader meanwhile sees consistent histograms (count = buckets).
	for range 100 {
		c := l.load()
		if c.Write.Commands != c.Write.Latency.Count() {
			t.Fatal("commands and histogram count disagree")
		}
	}
	wg.Wait()
	c := l.load()
	if c.Write.Commands != workers*per || c.WrittenBytes != workers*per*512 || c.InFlight != 0 {
		t.Errorf("got %d writes, %d bytes, %d in flight", c.Write.Commands, c.WrittenBytes, c.InFlight)
	}
}

func TestSessionDone(t *testing.T) {
	s := &Session{}
	s.Done(&Outcome{ReadBytes: 10})
	s.Done(&Outcome{WrittenBytes: 20, Status: samBusy})
	s.Done(&Outcome{Aborted: true})
	if s.commands.Load() != 3 || s.errors.Load() != 2 || s.readB.Load() != 10 || s.writtenB.Load() != 20 {
		t.Errorf("session counters %d %d %d %d", s.commands.Load(), s.errors.Load(), s.readB.Load(), s.writtenB.Load())
	}
}

func BenchmarkCountCommand(b *testing.B) {
	l := newLUN(LUNInfo{})
	s := &Session{}
	o := Outcome{Op: OpRead, Latency: 40 * time.Microsecond, Backend: 10 * time.Microsecond, Executed: true, ReadBytes: 4096}
	b.ReportAllocs()
	for b.Loop() {
		l.Arrived()
		l.Done(&o)
		s.Done(&o)
	}
}
