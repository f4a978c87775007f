// Package rbdbackend is the storage interface the SCSI device server depends
// on, and its implementations: librbd images, memory images and file images.
//
// An Image is ReadAt/WriteAt-shaped. Everything beyond plain reads and writes
// is an optional capability that an implementation advertises by satisfying
// one of the small interfaces below. Callers ask CapabilitiesOf which ones
// an image has, never a type assertion, so that an image wrapping another
// (ALUA guard, fault injection) forwards exactly the capabilities of the
// image inside it; a caller falls back (or reports the command as
// unsupported) when a capability is missing.
package rbdbackend

import (
	"errors"
	"reflect"
)

// Image is a fixed-size, byte-addressed block store. Offsets and lengths
// passed by the SCSI layer are always multiples of the LUN's block size and
// lie within Size(); implementations still check and return ErrOutOfRange.
// All methods must be safe for concurrent use.
type Image interface {
	// ReadAt fills p from off. A short read is an error.
	ReadAt(p []byte, off int64) (int, error)
	// WriteAt writes p at off. A short write is an error.
	WriteAt(p []byte, off int64) (int, error)
	// Size is the current size in bytes; it may grow (see Resizer).
	Size() int64
	// Close releases the image. No call may follow.
	Close() error
}

// Flusher makes completed writes durable (SYNCHRONIZE CACHE, FUA).
type Flusher interface {
	Flush() error
}

// Discarder deallocates a byte range (UNMAP, WRITE SAME with UNMAP). After
// Discard, reads of the range return zeroes.
type Discarder interface {
	Discard(off, length int64) error
}

// WriteSamer writes pattern (one block) repeatedly over [off, off+length).
type WriteSamer interface {
	WriteSame(off, length int64, pattern []byte) error
}

// CompareAndWriter atomically compares cmp with the bytes at off and, only if
// they are equal, writes data (len(data) == len(cmp)) there. When they differ
// it returns the offset of the first differing byte relative to off and
// ErrMiscompare; nothing is written.
type CompareAndWriter interface {
	CompareAndWrite(off int64, cmp, data []byte) (mismatch int64, err error)
}

// AtomicWriter promises that WriteAt is atomic for every range within its
// limits: a concurrent read returns either none or all of the new data, an
// overlapping concurrent write is ordered entirely before or after it, and
// a write interrupted by a failure (of the gateway, the connection or the
// store) leaves either all of the old or all of the new data, never a mix.
// A range is within the limits when its length is at most maxBytes and a
// multiple of granularityBytes, and its offset a multiple of
// alignmentBytes; a granularity or alignment of 0 or 1 imposes nothing.
// maxBytes 0 means that no write is atomic (a wrapper whose inner image
// makes no promise).
type AtomicWriter interface {
	AtomicWriteLimits() (maxBytes, alignmentBytes, granularityBytes int64)
}

// AllocationReporter tells which parts of the image hold data
// (GET LBA STATUS). Extent returns whether the byte at off is allocated and
// the length of the run of the same state starting at off (at most
// maxLength, at least 1 byte unless off is at the end).
type AllocationReporter interface {
	Extent(off, maxLength int64) (allocated bool, length int64, err error)
}

// Resizer grows an image (shrink is refused).
type Resizer interface {
	Resize(size int64) error
}

// SizeWatcher reports size changes made outside this process (another
// client resized the image). The callback runs on the watcher's own
// goroutine, after Size already returns the new value; it must not block.
type SizeWatcher interface {
	OnResize(fn func(size int64))
}

// Prefetcher loads a range into a cache close to the gateway
// (PRE-FETCH). It is a hint: success promises nothing about later reads.
type Prefetcher interface {
	Prefetch(off, length int64) error
}

// DiscardZeroer overrides the Discarder promise that discarded ranges read
// back as zeroes, for images that cannot keep it (DiscardZeroes false);
// without it a Discarder's discarded ranges read as zeroes.
type DiscardZeroer interface {
	DiscardZeroes() bool
}

// Capabilities are the optional capabilities of an image, one field per
// capability interface; a nil field means the image lacks the capability.
// A field set to an intercepting implementation (a wrapper's) runs it; a
// field a wrapper leaves alone calls the inner image directly.
type Capabilities struct {
	Flusher            Flusher
	Discarder          Discarder
	DiscardZeroer      DiscardZeroer
	WriteSamer         WriteSamer
	CompareAndWriter   CompareAndWriter
	AtomicWriter       AtomicWriter
	AllocationReporter AllocationReporter
	Resizer            Resizer
	SizeWatcher        SizeWatcher
	Prefetcher         Prefetcher
}

// CapabilityForwarder is implemented by an image that wraps another: it
// reports its capabilities itself, as those of the inner image with its
// own intercepting implementations substituted (Intercept), so that it
// never claims a capability the inner image lacks and forwards one it
// does not know untouched. CapabilitiesOf does not probe its methods.
type CapabilityForwarder interface {
	Capabilities() Capabilities
}

// CapabilitiesOf returns the optional capabilities of img: what its
// Capabilities method reports when it is a CapabilityForwarder, else the
// capability interfaces it satisfies.
func CapabilitiesOf(img Image) Capabilities {
	if f, ok := img.(CapabilityForwarder); ok {
		return f.Capabilities()
	}
	var c Capabilities
	c.Flusher, _ = img.(Flusher)
	c.Discarder, _ = img.(Discarder)
	c.DiscardZeroer, _ = img.(DiscardZeroer)
	c.WriteSamer, _ = img.(WriteSamer)
	c.CompareAndWriter, _ = img.(CompareAndWriter)
	c.AtomicWriter, _ = img.(AtomicWriter)
	c.AllocationReporter, _ = img.(AllocationReporter)
	c.Resizer, _ = img.(Resizer)
	c.SizeWatcher, _ = img.(SizeWatcher)
	c.Prefetcher, _ = img.(Prefetcher)
	return c
}

// Intercept returns c (an inner image's capabilities) with every
// capability that c has and own sets replaced by own's implementation.
// A capability c lacks stays absent whatever own says; one own leaves nil
// stays the inner image's.
func (c Capabilities) Intercept(own Capabilities) Capabilities {
	cv, ov := reflect.ValueOf(&c).Elem(), reflect.ValueOf(own)
	for i := range cv.NumField() {
		if !cv.Field(i).IsNil() && !ov.Field(i).IsNil() {
			cv.Field(i).Set(ov.Field(i))
		}
	}
	return c
}

// Errors an Image returns; the SCSI layer maps each to sense data in one
// place (see gateway/internal/scsi/errors.go). Implementations wrap them
// with %w to add detail.
var (
	// ErrOutOfRange: the range lies (partly) beyond the end of the image.
	ErrOutOfRange = errors.New("rbdbackend: range beyond end of image")
	// ErrMiscompare: CompareAndWrite found different data.
	ErrMiscompare = errors.New("rbdbackend: compare miscompare")
	// ErrTimeout: the store did not answer in time; the initiator should retry.
	ErrTimeout = errors.New("rbdbackend: operation timed out")
	// ErrLockLost: this gateway no longer holds the image's exclusive lock
	// (or its client was fenced); the path is in transition.
	ErrLockLost = errors.New("rbdbackend: exclusive lock lost")
	// ErrReadOnly: the image refuses writes.
	ErrReadOnly = errors.New("rbdbackend: image is read-only")
	// ErrClosed: the image was closed.
	ErrClosed = errors.New("rbdbackend: image closed")
	// ErrUnsupported: the operation is not available on this image.
	ErrUnsupported = errors.New("rbdbackend: operation not supported")
)
