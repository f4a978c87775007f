package rbdbackend

// Completer receives the outcome of a request started through AsyncIO:
// nil, or the error ReadAt or WriteAt would have returned. b is the batch
// of completions delivered together that this one belongs to, nil when it
// is delivered alone.
type Completer interface {
	Complete(err error, b *Batch)
}

// Batch is a set of completions one goroutine delivers together. Work a
// completer registers with After runs once all of them were delivered, so
// that, for one, the responses of several commands leave in one socket
// write rather than one each.
type Batch struct {
	after []BatchEnder
}

// BatchEnder is work left for the end of a batch.
type BatchEnder interface {
	EndBatch()
}

// After has e.EndBatch run when the batch ends, once however often e is
// registered; on a nil Batch (a completion delivered alone) it runs now.
func (b *Batch) After(e BatchEnder) {
	if b == nil {
		e.EndBatch()
		return
	}
	for _, x := range b.after {
		if x == e {
			return
		}
	}
	b.after = append(b.after, e)
}

// End runs the registered work in the order it was registered and leaves
// the batch empty for reuse.
func (b *Batch) End() {
	for i, e := range b.after {
		b.after[i] = nil
		e.EndBatch()
	}
	b.after = b.after[:0]
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
