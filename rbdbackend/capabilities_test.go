package rbdbackend_test

import (
	"errors"
	"testing"

	"github.com/rbdgw/rbdgw/rbdbackend"
	"github.com/rbdgw/rbdgw/rbdbackend/imagetest"
)

func TestCapabilitiesOfProbesAPlainImplementation(t *testing.T) {
	c := rbdbackend.CapabilitiesOf(rbdbackend.NewMemoryImage(1 << 20))
	if c.Flusher == nil || c.Discarder == nil || c.WriteSamer == nil || c.CompareAndWriter == nil ||
		c.AtomicWriter == nil || c.AllocationReporter == nil || c.Resizer == nil {
		t.Errorf("memory image capabilities %+v: missing one it implements", c)
	}
	if c.SizeWatcher != nil || c.Prefetcher != nil || c.DiscardZeroer != nil {
		t.Errorf("memory image capabilities %+v: one it does not implement", c)
	}
	if c := rbdbackend.CapabilitiesOf(imagetest.PlainImage{Image: rbdbackend.NewMemoryImage(512)}); c != (rbdbackend.Capabilities{}) {
		t.Errorf("plain image capabilities %+v", c)
	}
}

// flushCounter is a Flusher that counts its calls.
type flushCounter struct{ n int }

func (f *flushCounter) Flush() error { f.n++; return nil }

func TestInterceptNeverAddsACapability(t *testing.T) {
	inner := rbdbackend.CapabilitiesOf(rbdbackend.NewMemoryImage(1 << 20))
	inner.Resizer = nil
	own := &flushCounter{}
	got := inner.Intercept(rbdbackend.Capabilities{Flusher: own, Resizer: rbdbackend.NewMemoryImage(512)})
	if got.Flusher != own {
		t.Errorf("Flusher not intercepted")
	}
	if got.Resizer != nil {
		t.Errorf("Resizer claimed though the inner image lacks it")
	}
	if got.Discarder != inner.Discarder {
		t.Errorf("Discarder not forwarded untouched")
	}
}

func TestFaultImageForwardsCapabilities(t *testing.T) {
	imagetest.CheckForwarding(t, func(t *testing.T, inner rbdbackend.Image) rbdbackend.Image {
		return rbdbackend.NewFaultImage(inner)
	})
}

func TestFaultImageInterceptsThroughCapabilities(t *testing.T) {
	full := imagetest.NewFullImage(1 << 20)
	f := rbdbackend.NewFaultImage(full)
	c := rbdbackend.CapabilitiesOf(f)
	f.Inject(rbdbackend.Fault{Op: rbdbackend.OpDiscard, Err: rbdbackend.ErrTimeout})
	if err := c.Discarder.Discard(0, 512); !errors.Is(err, rbdbackend.ErrTimeout) {
		t.Errorf("Discard through the capabilities: %v, want the injected fault", err)
	}
	if f.Calls(rbdbackend.OpDiscard) != 1 {
		t.Errorf("Discard not counted")
	}
	// Capabilities the fault image does not intercept are the inner's.
	if c.SizeWatcher != rbdbackend.SizeWatcher(full) || c.Prefetcher != rbdbackend.Prefetcher(full) {
		t.Errorf("pass-through capabilities are not the inner image's")
	}
}
