package iscsi

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestIOAllocs holds the target to no allocation per command in steady
// state on the memory LUN's 4 KiB READ and WRITE paths: reader, serve loop,
// SCSI layer and responses. BenchmarkIO's allocs/op counts the in-process
// initiator too; this test counts, through the memory profile, only the
// allocations made under the target's connection goroutines.
func TestIOAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops objects at random under the race detector")
	}
	for _, write := range []bool{false, true} {
		name := "read"
		if write {
			name = "write"
		}
		t.Run(name, func(t *testing.T) {
			// Commands run inline however loaded the machine is: the
			// goroutine of a command run aside is not what is measured.
			e := newEnv(t, withTuning(func(o *Options) { o.InlineLatency = time.Minute }))
			d := newIODriver(t, e, 4<<10, write, 16, 64)
			// Warm up: the inline latency average, the pools, the
			// memory image's chunks, the buffers of the connection.
			d.run(2000)

			defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
			runtime.MemProfileRate = 1
			const n = 10000
			before := targetAllocs()
			d.run(n)
			after := targetAllocs()
			var got int64
			for k, v := range after {
				if v -= before[k]; v > 0 {
					got += v
				}
			}
			// A few allocations may come from pools refilled after a
			// garbage collection; one per command is what is guarded
			// against.
			t.Logf("%d objects allocated by the target in %d commands", got, n)
			if per := float64(got) / n; per > 0.05 {
				t.Errorf("target allocates %.2f objects per command (%d in %d commands):\n%s",
					per, got, n, describeAllocs(before, after))
			}
		})
	}
}

// targetAllocs returns the objects allocated so far under the target's
// connection goroutines, by allocation stack, as the memory profile has
// them (published at a garbage collection, up to two cycles late).
func targetAllocs() map[string]int64 {
	for range 3 {
		runtime.GC()
	}
	var recs []runtime.MemProfileRecord
	n, _ := runtime.MemProfile(nil, true)
	for {
		recs = make([]runtime.MemProfileRecord, n+64)
		var ok bool
		if n, ok = runtime.MemProfile(recs, true); ok {
			recs = recs[:n]
			break
		}
	}
	out := make(map[string]int64)
	for i := range recs {
		if stack, ok := targetStack(recs[i].Stack()); ok {
			out[stack] += recs[i].AllocObjects
		}
	}
	return out
}

// targetStack formats an allocation stack and reports whether it belongs
// to the target: a connection's goroutines or the SCSI layer and image
// below them, not the test's initiator.
func targetStack(stk []uintptr) (string, bool) {
	var b strings.Builder
	target, initiator := false, false
	frames := runtime.CallersFrames(stk)
	for {
		f, more := frames.Next()
		fmt.Fprintf(&b, "\t%s\n", f.Function)
		switch {
		case strings.Contains(f.Function, "/iscsi/iscsitest."), strings.Contains(f.Function, "iscsi.(*ioDriver)"):
			initiator = true
		case strings.Contains(f.Function, "/gateway/internal/iscsi.(*conn)."),
			strings.Contains(f.Function, "/gateway/internal/scsi."),
			strings.Contains(f.Function, "/rbdbackend."):
			target = true
		}
		if !more {
			break
		}
	}
	return b.String(), target && !initiator
}

// describeAllocs lists the stacks that allocated between two profiles.
func describeAllocs(before, after map[string]int64) string {
	var lines []string
	for k, v := range after {
		if v -= before[k]; v > 0 {
			lines = append(lines, fmt.Sprintf("%d objects at\n%s", v, k))
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "")
}
