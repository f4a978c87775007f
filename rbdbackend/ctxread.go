package rbdbackend

import "context"

// ContextReader is ReadAt that stops waiting once ctx is done (it then
// returns ctx's error): an aborted command returns at once instead of
// waiting for its store, without a goroutine per read to wait beside it.
// After such an early return the image may still write into p; p belongs
// to the abandoned read from then on.
//
// It is deliberately not one of the forwarded Capabilities: a wrapper
// that intercepts ReadAt (fault injection, ALUA guard) would be bypassed
// by its inner image's ReadAtContext. Callers type-assert the image they
// hold, check that ReadsFor is that very image, and otherwise fall back
// to ReadAt on a goroutine of their own.
type ContextReader interface {
	ReadAtContext(ctx context.Context, p []byte, off int64) (int, error)
	// ReadsFor returns the image whose ReadAt ReadAtContext stands for:
	// the receiver. A type that embeds an image inherits both methods,
	// and then ReadsFor names the embedded image, not the wrapper: a
	// wrapper's own ReadAt is never bypassed by accident.
	ReadsFor() Image
}

// ReadsFor returns m (see ContextReader).
func (m *MemoryImage) ReadsFor() Image { return m }

// ReadAtContext is ReadAt: a memory image answers in microseconds and
// never waits for anything that an abort could cut short.
func (m *MemoryImage) ReadAtContext(_ context.Context, p []byte, off int64) (int, error) {
	return m.ReadAt(p, off)
}
