package rbdbackend

import (
	"errors"
	"testing"
	"time"
)

func TestFaultImageInjects(t *testing.T) {
	block := randomBytes(1, 4096)
	write := func(f *FaultImage, off int64) error { _, err := f.WriteAt(block, off); return err }
	read := func(f *FaultImage, off int64) error { _, err := f.ReadAt(make([]byte, 4096), off); return err }
	tests := []struct {
		name  string
		fault Fault
		// calls are made in order; want[i] is the error call i must
		// return (nil for success).
		calls []func(*FaultImage) error
		want  []error
		// written says whether block must be at offset 0 afterwards.
		written bool
	}{
		{
			name:  "next two writes",
			fault: Fault{Op: OpWrite, Err: ErrTimeout, Count: 2},
			calls: []func(*FaultImage) error{
				func(f *FaultImage) error { return write(f, 0) },
				func(f *FaultImage) error { return read(f, 0) },
				func(f *FaultImage) error { return write(f, 0) },
				func(f *FaultImage) error { return write(f, 0) },
			},
			want:    []error{ErrTimeout, nil, ErrTimeout, nil},
			written: true,
		},
		{
			name:  "byte range until cleared",
			fault: Fault{Op: OpRead, Err: ErrLockLost, Off: 8192, Length: 4096},
			calls: []func(*FaultImage) error{
				func(f *FaultImage) error { return read(f, 0) },
				func(f *FaultImage) error { return read(f, 4097) },
				func(f *FaultImage) error { return read(f, 12288) },
				func(f *FaultImage) error { return read(f, 8192) },
				func(f *FaultImage) error { return write(f, 8192) },
			},
			want: []error{nil, ErrLockLost, nil, ErrLockLost, nil},
		},
		{
			name:  "after the inner call",
			fault: Fault{Op: OpWrite, Err: ErrTimeout, Count: 1, After: true},
			calls: []func(*FaultImage) error{
				func(f *FaultImage) error { return write(f, 0) },
			},
			want:    []error{ErrTimeout},
			written: true,
		},
		{
			name:  "capabilities",
			fault: Fault{Op: OpCompareAndWrite, Err: ErrReadOnly},
			calls: []func(*FaultImage) error{
				func(f *FaultImage) error { _, err := f.CompareAndWrite(0, block, block); return err },
				func(f *FaultImage) error { return f.Discard(0, 4096) },
				func(f *FaultImage) error { _, err := f.CompareAndWrite(1<<20, block, block); return err },
			},
			want: []error{ErrReadOnly, nil, ErrReadOnly},
		},
		{
			name:  "flush has no range",
			fault: Fault{Op: OpFlush, Err: ErrTimeout, Off: 0, Length: 1 << 20},
			calls: []func(*FaultImage) error{
				func(f *FaultImage) error { return f.Flush() },
			},
			want: []error{nil},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFaultImage(NewMemoryImage(1 << 20))
			defer f.Close()
			f.Inject(tc.fault)
			for i, call := range tc.calls {
				err := call(f)
				if tc.want[i] == nil && err != nil || tc.want[i] != nil && !errors.Is(err, tc.want[i]) {
					t.Fatalf("call %d: err %v, want %v", i, err, tc.want[i])
				}
			}
			got := mustRead(t, f.Inner(), 0, 4096)
			if written := firstDifference(got, block) < 0; written != tc.written {
				t.Fatalf("block written = %v, want %v", written, tc.written)
			}
		})
	}
}

func TestFaultImageClearFaults(t *testing.T) {
	f := NewFaultImage(NewMemoryImage(1 << 20))
	defer f.Close()
	f.Inject(Fault{Op: OpRead, Err: ErrTimeout})
	if _, err := f.ReadAt(make([]byte, 512), 0); !errors.Is(err, ErrTimeout) {
		t.Fatalf("ReadAt: %v, want ErrTimeout", err)
	}
	f.ClearFaults()
	if _, err := f.ReadAt(make([]byte, 512), 0); err != nil {
		t.Fatalf("ReadAt after ClearFaults: %v", err)
	}
}

func TestFaultImageCountsAndDelays(t *testing.T) {
	f := NewFaultImage(NewMemoryImage(1 << 20))
	defer f.Close()
	f.Inject(Fault{Op: OpFlush, Err: ErrTimeout, Count: 1})
	const delay = 20 * time.Millisecond
	f.SetLatency(OpFlush, delay)
	start := time.Now()
	f.Flush()
	f.Flush()
	if took := time.Since(start); took < 2*delay {
		t.Fatalf("two flushes took %v, want at least %v", took, 2*delay)
	}
	f.ReadAt(make([]byte, 512), 0)
	want := map[FaultOp]int64{OpFlush: 2, OpRead: 1, OpWrite: 0}
	for op, n := range want {
		if got := f.Calls(op); got != n {
			t.Errorf("Calls(%v) = %d, want %d", op, got, n)
		}
	}
}

// bareImage hides every optional capability of the image it holds.
type bareImage struct{ Image }

func TestFaultImageWithoutCapabilities(t *testing.T) {
	f := NewFaultImage(bareImage{NewMemoryImage(1 << 20)})
	defer f.Close()
	block := make([]byte, 512)
	calls := map[string]func() error{
		"Flush":           f.Flush,
		"Discard":         func() error { return f.Discard(0, 512) },
		"WriteSame":       func() error { return f.WriteSame(0, 512, block) },
		"CompareAndWrite": func() error { _, err := f.CompareAndWrite(0, block, block); return err },
		"Extent":          func() error { _, _, err := f.Extent(0, 512); return err },
		"Resize":          func() error { return f.Resize(2 << 20) },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: err %v, want ErrUnsupported", name, err)
		}
	}
	mustWrite(t, f, block, 0)
	if max, _, _ := f.AtomicWriteLimits(); max != 0 {
		t.Errorf("atomic writes of %d bytes promised over an image without the capability", max)
	}
	if max, align, gran := NewFaultImage(NewMemoryImage(1 << 20)).AtomicWriteLimits(); max == 0 || align > 1 || gran > 1 {
		t.Errorf("limits over a memory image: %d, %d, %d", max, align, gran)
	}
}

func TestFaultImageInjectRejectsBadFaults(t *testing.T) {
	for _, ft := range []Fault{{Op: OpRead}, {Op: numFaultOps, Err: ErrTimeout}, {Op: -1, Err: ErrTimeout}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Inject(%+v) did not panic", ft)
				}
			}()
			NewFaultImage(NewMemoryImage(512)).Inject(ft)
		}()
	}
}

func TestFaultOpString(t *testing.T) {
	for op := range numFaultOps {
		if s := op.String(); s == "" || s[0] == 'F' {
			t.Errorf("FaultOp %d has no name", int(op))
		}
	}
	if got := FaultOp(99).String(); got != "FaultOp(99)" {
		t.Errorf("String() = %q", got)
	}
}
