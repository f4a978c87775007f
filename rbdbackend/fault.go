package rbdbackend

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// FaultOp names an Image operation a FaultImage can fail, slow down or
// count.
type FaultOp int

// The operations of Image and its optional capabilities.
const (
	OpRead FaultOp = iota
	OpWrite
	OpFlush
	OpDiscard
	OpWriteSame
	OpCompareAndWrite
	OpExtent
	OpResize
	numFaultOps
)

var faultOpNames = [numFaultOps]string{
	OpRead:            "read",
	OpWrite:           "write",
	OpFlush:           "flush",
	OpDiscard:         "discard",
	OpWriteSame:       "write same",
	OpCompareAndWrite: "compare and write",
	OpExtent:          "extent",
	OpResize:          "resize",
}

func (o FaultOp) String() string {
	if o < 0 || o >= numFaultOps {
		return fmt.Sprintf("FaultOp(%d)", int(o))
	}
	return faultOpNames[o]
}

// Fault describes an error a FaultImage injects.
type Fault struct {
	// Op is the operation that fails.
	Op FaultOp
	// Err is returned (wrapped) instead of the operation's result,
	// typically one of the package's sentinel errors.
	Err error
	// Count limits the fault to the next Count matching calls; zero means
	// every matching call until ClearFaults.
	Count int
	// Off and Length, when Length > 0, limit the fault to calls whose byte
	// range overlaps [Off, Off+Length). Flush and Resize have no range and
	// never match such a fault.
	Off, Length int64
	// After lets the call reach the inner image first and then replaces
	// its result with Err, like a store that applied a write but whose
	// reply timed out.
	After bool
}

// FaultImage wraps an Image for tests: it injects errors, adds latency and
// counts calls per operation. It has a method for every capability it
// intercepts (a call to one the inner image lacks fails with
// ErrUnsupported), but reports (Capabilities) only those of the inner
// image; the ones it does not intercept reach the inner image directly.
type FaultImage struct {
	inner   Image
	caps    Capabilities // the inner image's
	mu      sync.Mutex
	faults  []*Fault // in injection order; Count counts down
	latency [numFaultOps]atomic.Int64
	calls   [numFaultOps]atomic.Int64
}

var (
	_ Image              = (*FaultImage)(nil)
	_ Flusher            = (*FaultImage)(nil)
	_ Discarder          = (*FaultImage)(nil)
	_ WriteSamer         = (*FaultImage)(nil)
	_ CompareAndWriter   = (*FaultImage)(nil)
	_ AllocationReporter = (*FaultImage)(nil)
	_ Resizer            = (*FaultImage)(nil)
	_ AtomicWriter       = (*FaultImage)(nil)

	_ CapabilityForwarder = (*FaultImage)(nil)
)

// Capabilities are those of the inner image, with the ones the fault
// image intercepts (an Op of their own, or AtomicWriter, which WriteAt
// keeps whole) going through it.
func (f *FaultImage) Capabilities() Capabilities {
	return f.caps.Intercept(Capabilities{
		Flusher:            f,
		Discarder:          f,
		WriteSamer:         f,
		CompareAndWriter:   f,
		AtomicWriter:       f,
		AllocationReporter: f,
		Resizer:            f,
	})
}

// NewFaultImage wraps inner with no faults and no latency.
func NewFaultImage(inner Image) *FaultImage {
	return &FaultImage{inner: inner, caps: CapabilitiesOf(inner)}
}

// Inner returns the wrapped image.
func (f *FaultImage) Inner() Image { return f.inner }

// Inject adds a fault. The first matching fault, in injection order, wins.
// It panics if ft.Err is nil or ft.Op is unknown: both are test bugs.
func (f *FaultImage) Inject(ft Fault) {
	if ft.Err == nil || ft.Op < 0 || ft.Op >= numFaultOps {
		panic(fmt.Sprintf("rbdbackend: invalid fault %+v", ft))
	}
	f.mu.Lock()
	f.faults = append(f.faults, &ft)
	f.mu.Unlock()
}

// ClearFaults removes every fault.
func (f *FaultImage) ClearFaults() {
	f.mu.Lock()
	f.faults = nil
	f.mu.Unlock()
}

// SetLatency delays every later call of op by d before it runs.
func (f *FaultImage) SetLatency(op FaultOp, d time.Duration) {
	f.latency[op].Store(int64(d))
}

// Calls returns how many times op was called, failed calls included.
func (f *FaultImage) Calls(op FaultOp) int64 { return f.calls[op].Load() }

// Size forwards to the inner image.
func (f *FaultImage) Size() int64 { return f.inner.Size() }

// Close forwards to the inner image.
func (f *FaultImage) Close() error { return f.inner.Close() }

// ReadAt forwards to the inner image unless a fault applies.
func (f *FaultImage) ReadAt(p []byte, off int64) (int, error) {
	before, after := f.enter(OpRead, off, int64(len(p)), true)
	if before != nil {
		return 0, before
	}
	n, err := f.inner.ReadAt(p, off)
	if after != nil {
		return 0, after
	}
	return n, err
}

// WriteAt forwards to the inner image unless a fault applies.
func (f *FaultImage) WriteAt(p []byte, off int64) (int, error) {
	before, after := f.enter(OpWrite, off, int64(len(p)), true)
	if before != nil {
		return 0, before
	}
	n, err := f.inner.WriteAt(p, off)
	if after != nil {
		return 0, after
	}
	return n, err
}

// Flush forwards to the inner image unless a fault applies.
func (f *FaultImage) Flush() error {
	before, after := f.enter(OpFlush, 0, 0, false)
	if before != nil {
		return before
	}
	inner := f.caps.Flusher
	if inner == nil {
		return unsupported(OpFlush)
	}
	return pick(after, inner.Flush())
}

// Discard forwards to the inner image unless a fault applies.
func (f *FaultImage) Discard(off, length int64) error {
	before, after := f.enter(OpDiscard, off, length, true)
	if before != nil {
		return before
	}
	inner := f.caps.Discarder
	if inner == nil {
		return unsupported(OpDiscard)
	}
	return pick(after, inner.Discard(off, length))
}

// WriteSame forwards to the inner image unless a fault applies.
func (f *FaultImage) WriteSame(off, length int64, pattern []byte) error {
	before, after := f.enter(OpWriteSame, off, length, true)
	if before != nil {
		return before
	}
	inner := f.caps.WriteSamer
	if inner == nil {
		return unsupported(OpWriteSame)
	}
	return pick(after, inner.WriteSame(off, length, pattern))
}

// CompareAndWrite forwards to the inner image unless a fault applies.
func (f *FaultImage) CompareAndWrite(off int64, cmp, data []byte) (int64, error) {
	before, after := f.enter(OpCompareAndWrite, off, int64(len(cmp)), true)
	if before != nil {
		return 0, before
	}
	inner := f.caps.CompareAndWriter
	if inner == nil {
		return 0, unsupported(OpCompareAndWrite)
	}
	mismatch, err := inner.CompareAndWrite(off, cmp, data)
	if after != nil {
		return 0, after
	}
	return mismatch, err
}

// Extent forwards to the inner image unless a fault applies.
func (f *FaultImage) Extent(off, maxLength int64) (bool, int64, error) {
	before, after := f.enter(OpExtent, off, maxLength, true)
	if before != nil {
		return false, 0, before
	}
	inner := f.caps.AllocationReporter
	if inner == nil {
		return false, 0, unsupported(OpExtent)
	}
	allocated, n, err := inner.Extent(off, maxLength)
	if after != nil {
		return false, 0, after
	}
	return allocated, n, err
}

// Resize forwards to the inner image unless a fault applies.
func (f *FaultImage) Resize(size int64) error {
	before, after := f.enter(OpResize, 0, 0, false)
	if before != nil {
		return before
	}
	inner := f.caps.Resizer
	if inner == nil {
		return unsupported(OpResize)
	}
	return pick(after, inner.Resize(size))
}

// AtomicWriteLimits are those of the inner image: WriteAt forwards to it
// whole, and an injected fault either stops a write before it reaches the
// inner image or reports an error after all of it was applied. An inner
// image without the capability gives zero limits: no write is atomic.
func (f *FaultImage) AtomicWriteLimits() (maxBytes, alignmentBytes, granularityBytes int64) {
	if inner := f.caps.AtomicWriter; inner != nil {
		return inner.AtomicWriteLimits()
	}
	return 0, 0, 0
}

// enter counts the call, sleeps the configured latency and consumes the
// first matching fault, returning it as the error to give before or after
// forwarding.
func (f *FaultImage) enter(op FaultOp, off, n int64, ranged bool) (before, after error) {
	f.calls[op].Add(1)
	if d := time.Duration(f.latency[op].Load()); d > 0 {
		time.Sleep(d)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, ft := range f.faults {
		if ft.Op != op || !ft.covers(off, n, ranged) {
			continue
		}
		if ft.Count > 0 {
			ft.Count--
			if ft.Count == 0 {
				f.faults = append(f.faults[:i], f.faults[i+1:]...)
			}
		}
		err := fmt.Errorf("rbdbackend: injected %s fault: %w", op, ft.Err)
		if ft.After {
			return nil, err
		}
		return err, nil
	}
	return nil, nil
}

func (ft *Fault) covers(off, n int64, ranged bool) bool {
	if ft.Length <= 0 {
		return true
	}
	// An empty call still matches when it sits inside the fault's range.
	return ranged && off < ft.Off+ft.Length && off+max(n, 1) > ft.Off
}

func unsupported(op FaultOp) error {
	return fmt.Errorf("rbdbackend: %s: %w", op, ErrUnsupported)
}

func pick(injected, result error) error {
	if injected != nil {
		return injected
	}
	return result
}
