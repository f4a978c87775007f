package iscsi

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/rbdbackend"
)

// TestIOAllocs holds the target to no allocation per command in steady
// state on the 4 KiB READ and WRITE paths: reader, serve loop, SCSI layer
// and responses, for commands run inline (a memory LUN) and for commands
// the serve loop starts and the goroutine delivering the image's
// completions answers (an image that starts requests itself, as an RBD
// image does: scsi.Target.Start, task.Done). BenchmarkIO's allocs/op
// counts the in-process initiator too; this test counts, through the
// memory profile, only the allocations made under the target's
// goroutines.
func TestIOAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops objects at random under the race detector")
	}
	paths := []struct {
		name string
		// inline: commands run inline however loaded the machine is (the
		// goroutine of a command run aside is not what is measured);
		// otherwise never.
		inline bool
		image  func(t *testing.T, e *testEnv) rbdbackend.Image
	}{
		{"inline", true, func(_ *testing.T, e *testEnv) rbdbackend.Image { return e.img }},
		{"started", false, func(t *testing.T, e *testEnv) rbdbackend.Image { return newDeliveringImage(t, e.img) }},
	}
	for _, path := range paths {
		for _, write := range []bool{false, true} {
			name := path.name + "/read"
			if write {
				name = path.name + "/write"
			}
			t.Run(name, func(t *testing.T) {
				e := newEnv(t, withTuning(func(o *Options) {
					o.InlineLatency = -1
					if path.inline {
						o.InlineLatency = time.Minute
					}
				}))
				d := newIODriverOn(t, e, path.image(t, e), 4<<10, write, 16, 64)
				// Warm up: the inline latency average, the pools, the
				// memory image's chunks, the buffers of the connection.
				d.run(2000)
				if started := e.srv.asyncStarts.Load() > 0; started == path.inline {
					t.Fatalf("commands started by the serve loop: %v, want %v", started, !path.inline)
				}
				checkTargetAllocs(t, d, 10000)
			})
		}
	}
}

// checkTargetAllocs runs n commands of d and fails when the target
// allocated per command on the way.
func checkTargetAllocs(t *testing.T, d *ioDriver, n int) {
	t.Helper()
	defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
	runtime.MemProfileRate = 1
	before := targetAllocs()
	d.run(n)
	after := targetAllocs()
	var got int64
	for k, v := range after {
		if v -= before[k]; v > 0 {
			got += v
		}
	}
	// A few allocations may come from pools refilled after a garbage
	// collection; one per command is what is guarded against.
	t.Logf("%d objects allocated by the target in %d commands", got, n)
	if per := float64(got) / float64(n); per > 0.05 {
		t.Errorf("target allocates %.2f objects per command (%d in %d commands):\n%s",
			per, got, n, describeAllocs(before, after))
	}
}

// deliveringImage starts requests itself (rbdbackend.AsyncIO) and one
// goroutine of its own carries them out and delivers their completions in
// batches, as librbd's completion goroutine does (rbd.drainCompletions),
// without allocating per request.
type deliveringImage struct {
	*rbdbackend.MemoryImage
	reqs chan deliveringReq
}

type deliveringReq struct {
	p     []byte
	off   int64
	write bool
	done  rbdbackend.Completer
}

func newDeliveringImage(t *testing.T, img *rbdbackend.MemoryImage) *deliveringImage {
	d := &deliveringImage{MemoryImage: img, reqs: make(chan deliveringReq, 256)}
	deliverInBatches(t, d.reqs, func(r deliveringReq, b *rbdbackend.Batch) {
		var err error
		if r.write {
			_, err = d.WriteAt(r.p, r.off)
		} else {
			_, err = d.ReadAt(r.p, r.off)
		}
		r.done.Complete(err, b)
	})
	return d
}

// deliverInBatches starts a goroutine that delivers what arrives on c
// until the test ends, as librbd's completion goroutine does: everything
// that waits at once in one batch (rbdbackend.Batch), which it then ends.
func deliverInBatches[T any](t *testing.T, c <-chan T, deliver func(T, *rbdbackend.Batch)) {
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		var b rbdbackend.Batch
		for {
			select {
			case r := <-c:
				deliver(r, &b)
			case <-stop:
				return
			}
			for more := true; more; {
				select {
				case r := <-c:
					deliver(r, &b)
				default:
					more = false
				}
			}
			b.End()
		}
	}()
}

func (d *deliveringImage) AsyncFor() rbdbackend.Image { return d }

func (d *deliveringImage) StartReadAt(p []byte, off int64, done rbdbackend.Completer) bool {
	d.reqs <- deliveringReq{p: p, off: off, done: done}
	return true
}

func (d *deliveringImage) StartWriteAt(p []byte, off int64, done rbdbackend.Completer) bool {
	d.reqs <- deliveringReq{p: p, off: off, write: true, done: done}
	return true
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
			strings.Contains(f.Function, "/gateway/internal/iscsi.(*task)."),
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
