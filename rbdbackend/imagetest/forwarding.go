package imagetest

import (
	"reflect"
	"testing"

	"github.com/rbdgw/rbdgw/rbdbackend"
)

// Wrapper wraps inner the way an image wrapper under test does (the ALUA
// guard, the fault-injecting image).
type Wrapper func(t *testing.T, inner rbdbackend.Image) rbdbackend.Image

// CheckForwarding checks, for every field of rbdbackend.Capabilities, that
// wrap forwards capabilities and claims no other: around an image with
// every capability the wrapper has every one, around an image with none
// it has none.
func CheckForwarding(t *testing.T, wrap Wrapper) {
	t.Helper()
	full := NewFullImage(Size)
	if missing := capabilityFields(rbdbackend.CapabilitiesOf(full), false); len(missing) > 0 {
		t.Fatalf("imagetest.FullImage lacks %v: give it the new capabilities", missing)
	}
	t.Run("every capability", func(t *testing.T) {
		w := wrap(t, full)
		if missing := capabilityFields(rbdbackend.CapabilitiesOf(w), false); len(missing) > 0 {
			t.Errorf("%T around an image with every capability lacks %v", w, missing)
		}
	})
	t.Run("no capability", func(t *testing.T) {
		w := wrap(t, PlainImage{rbdbackend.NewMemoryImage(Size)})
		if claimed := capabilityFields(rbdbackend.CapabilitiesOf(w), true); len(claimed) > 0 {
			t.Errorf("%T around a plain image claims %v", w, claimed)
		}
	})
}

// capabilityFields names the fields of c that are set (present true) or
// nil (present false).
func capabilityFields(c rbdbackend.Capabilities, present bool) []string {
	var out []string
	v := reflect.ValueOf(c)
	for i := range v.NumField() {
		if !v.Field(i).IsNil() == present {
			out = append(out, v.Type().Field(i).Name)
		}
	}
	return out
}

// PlainImage hides every optional capability of the image it holds.
type PlainImage struct{ rbdbackend.Image }

// FullImage is a memory image with every optional capability: those of
// rbdbackend.MemoryImage, plus inert ones for those it lacks.
type FullImage struct {
	*rbdbackend.MemoryImage
}

// NewFullImage returns a FullImage of size bytes.
func NewFullImage(size int64) *FullImage {
	return &FullImage{rbdbackend.NewMemoryImage(size)}
}

// OnResize never calls fn: nothing else resizes a memory image.
func (*FullImage) OnResize(fn func(size int64)) {}

// DiscardZeroes keeps the Discarder promise.
func (*FullImage) DiscardZeroes() bool { return true }

// Prefetch has no cache to fill.
func (*FullImage) Prefetch(off, length int64) error { return nil }
