package iscsi

import (
	"sync"
	"sync/atomic"
	"time"
)

// Inline execution. Handing a command to its own goroutine and its
// completion back to the serve loop costs two goroutine wake-ups, which on
// a logical unit that answers in microseconds (a memory image, a page-cache
// hit) cost more than the command itself. A plain READ or WRITE of at most
// inlineMaxBytes therefore runs on the serve loop itself (on the goroutine
// holding it: the serve goroutine or the reader) when its logical
// unit has recently answered fast (Options.InlineLatency); every other
// command, and every command of a slow logical unit (RBD), runs on its own
// goroutine.
//
// A command run inline that turns out slow must not stall the connection:
// once it has run for reliefAfter, the next event for the loop (or a
// watchdog timer) passes the loop on (resumeLoop), and the stalled
// goroutine ends as if it had been a task goroutine, reporting its completion on the
// channel. Only one goroutine runs the loop at any time.
const (
	inlineMaxBytes = 128 << 10
	inlineWarmup   = 16 // samples before the average is trusted
	// reliefAfter is well above an operating system time slice, so a
	// thread merely preempted does not cause a takeover.
	reliefAfter = 10 * time.Millisecond
)

// lunLatency is the running average of a logical unit's Execute times.
type lunLatency struct {
	avg     time.Duration
	samples int
}

// add folds one sample in (exponential average, weight 1/8).
func (l *lunLatency) add(d time.Duration) {
	if l.samples == 0 {
		l.avg = d
	} else {
		l.avg += (d - l.avg) / 8
	}
	if l.samples < inlineWarmup {
		l.samples++
	}
}

// fast reports whether the average is trusted and below limit.
func (l *lunLatency) fast(limit time.Duration) bool {
	return l.samples >= inlineWarmup && l.avg < limit
}

// inlineOpcode reports the commands whose cost is bounded by their data
// length: plain reads and writes. WRITE SAME, UNMAP, COMPARE AND WRITE,
// EXTENDED COPY or SYNCHRONIZE CACHE may take far longer than their EDTL
// suggests.
func inlineOpcode(op byte) bool {
	switch op {
	case 0x08, 0x28, 0xa8, 0x88, // READ (6), (10), (12), (16)
		0x0a, 0x2a, 0xaa, 0x8a: // WRITE (6), (10), (12), (16)
		return true
	}
	return false
}

// monoEpoch anchors monotonic timestamps stored in atomics.
var monoEpoch = time.Now()

func monoNow() int64 { return int64(time.Since(monoEpoch)) }

// loopBaton records whether the serve loop is running a command inline
// and lets another goroutine take the loop over when that command stalls.
// Its word holds a sequence number (upper bits), advanced by every inline
// command and every takeover, and the inline flag (low bit): a stalled
// goroutine that comes back can tell that the loop moved on without it.
type loopBaton struct {
	word  atomic.Uint64
	since atomic.Int64 // monoNow() when the inline command started

	// resume runs on a new goroutine after a takeover (resumeLoop).
	resume    func()
	takeovers *atomic.Int64

	timerMu sync.Mutex
	timer   *time.Timer
	armed   atomic.Bool
	stopped bool
}

const batonInline = 1

// begin marks an inline command starting and returns the token end needs.
func (b *loopBaton) begin() uint64 {
	b.since.Store(monoNow())
	token := (b.word.Load() | batonInline) + 2
	b.word.Store(token)
	if !b.armed.Load() {
		b.arm()
	}
	return token
}

// end marks the inline command finished. False means another goroutine
// took the loop over meanwhile: the caller no longer owns any loop state.
func (b *loopBaton) end(token uint64) bool {
	return b.word.CompareAndSwap(token, token&^batonInline)
}

// relieve takes the loop over when an inline command has run for longer
// than reliefAfter. Goroutines that feed the loop call it before they
// queue an event, so the event is not held up behind the stalled command.
func (b *loopBaton) relieve() {
	// since is stored before the word: read after it, it belongs to this
	// inline command or a later one, never to an earlier one.
	w := b.word.Load()
	if w&batonInline == 0 || time.Duration(monoNow()-b.since.Load()) < reliefAfter {
		return
	}
	if b.word.CompareAndSwap(w, (w&^batonInline)+2) {
		b.takeovers.Add(1)
		go b.resume()
	}
}

// arm starts the watchdog that relieves a stalled loop no event would
// reach. It re-arms itself while inline commands keep running and goes
// idle otherwise, so an idle connection costs no timer wake-ups.
func (b *loopBaton) arm() {
	b.timerMu.Lock()
	defer b.timerMu.Unlock()
	if b.stopped || b.armed.Swap(true) {
		return
	}
	if b.timer == nil {
		b.timer = time.AfterFunc(reliefAfter, b.watch)
	} else {
		b.timer.Reset(reliefAfter)
	}
}

func (b *loopBaton) watch() {
	b.relieve()
	b.armed.Store(false)
	if b.word.Load()&batonInline != 0 {
		b.arm()
	}
}

// stop ends the watchdog for good (the connection is gone).
func (b *loopBaton) stop() {
	b.timerMu.Lock()
	defer b.timerMu.Unlock()
	b.stopped = true
	if b.timer != nil {
		b.timer.Stop()
	}
}

// noteLatency records how long a command of the inline shape took.
func (c *conn) noteLatency(lun uint64, d time.Duration) {
	l := c.ffp.latency[lun]
	if l == nil {
		l = &lunLatency{}
		c.ffp.latency[lun] = l
	}
	l.add(d)
}

// taskQueue is a FIFO of tasks that reuses its backing array.
type taskQueue struct {
	items []*task
	head  int
}

func (q *taskQueue) push(t *task) { q.items = append(q.items, t) }

func (q *taskQueue) len() int { return len(q.items) - q.head }

// pop returns the oldest task, nil when empty.
func (q *taskQueue) pop() *task {
	if q.head == len(q.items) {
		return nil
	}
	t := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
	return t
}
