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

// ReadAtContext reads len(p) bytes of img at off, or returns ctx's error
// once ctx is done. An image that can give up waiting itself
// (ContextReader, for that very image) is asked to; any other is read on a
// goroutine of its own, left to finish into p. Either way p belongs to the
// abandoned read after an early return.
func ReadAtContext(ctx context.Context, img Image, p []byte, off int64) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if cr, ok := img.(ContextReader); ok && cr.ReadsFor() == img {
		n, err := cr.ReadAtContext(ctx, p, off)
		if err != nil && ctx.Err() != nil {
			return n, ctx.Err()
		}
		return n, err
	}
	type read struct {
		n   int
		err error
	}
	done := make(chan read, 1)
	go func() {
		n, err := img.ReadAt(p, off)
		done <- read{n, err}
	}()
	select {
	case r := <-done:
		return r.n, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// ReadsFor returns m (see ContextReader).
func (m *MemoryImage) ReadsFor() Image { return m }

// ReadAtContext is ReadAt: a memory image answers in microseconds and
// never waits for anything that an abort could cut short.
func (m *MemoryImage) ReadAtContext(_ context.Context, p []byte, off int64) (int, error) {
	return m.ReadAt(p, off)
}
