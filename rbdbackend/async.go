package rbdbackend

// Completer receives the outcome of a request started through AsyncIO:
// nil, or the error ReadAt or WriteAt would have returned.
type Completer interface {
	Complete(err error)
}

// AsyncIO starts plain reads and writes without waiting for them, so that
// the caller (a connection's serve loop) needs no goroutine per request.
//
// Start reports false, having started nothing and called nothing, when the
// request cannot be started without waiting (a lock held by a slower
// operation, too much already in flight) or would fail at once (closed,
// fenced, out of range): the caller then uses ReadAt or WriteAt, which
// wait or return the error. After true, done.Complete runs exactly once,
// on a goroutine that delivers the completions of many requests: it must
// not block. Until then the image may use p.
//
// Like ContextReader it is not a forwarded capability: a wrapper that
// intercepts ReadAt or WriteAt must not be bypassed by its inner image's
// AsyncIO. Callers type-assert the image they hold and check that AsyncFor
// is that very image.
type AsyncIO interface {
	StartReadAt(p []byte, off int64, done Completer) bool
	StartWriteAt(p []byte, off int64, done Completer) bool
	// AsyncFor returns the image whose ReadAt and WriteAt these stand
	// for: the receiver (see ContextReader.ReadsFor), or nil when a
	// wrapper's inner image cannot start requests.
	AsyncFor() Image
}

// AsyncOf returns img's AsyncIO when img itself implements it, nil
// otherwise.
func AsyncOf(img Image) AsyncIO {
	if a, ok := img.(AsyncIO); ok && a.AsyncFor() == img {
		return a
	}
	return nil
}
