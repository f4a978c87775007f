package rbdbackend

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"
)

const (
	// memChunkShift sets the allocation unit of a MemoryImage (1 MiB):
	// large enough that a sequential write allocates rarely, small enough
	// that a scattered 4 KiB write does not cost much memory.
	memChunkShift = 20
	memChunkSize  = 1 << memChunkShift
	// memLeafShift sets how many chunk pointers one lazily allocated leaf
	// holds (1024, so one leaf maps 1 GiB and a huge empty image costs one
	// pointer per GiB).
	memLeafShift  = 10
	memLeafChunks = 1 << memLeafShift
	memLeafBytes  = memChunkSize * memLeafChunks
)

type memChunk [memChunkSize]byte

// memLeaf maps memLeafChunks consecutive chunks. Entry i is read and
// written only under the stripe lock of its chunk.
type memLeaf [memLeafChunks]*memChunk

// MemoryImage is a sparse in-memory Image. Memory is allocated a chunk at a
// time on first write; unwritten chunks read as zeroes. Each chunk is
// guarded by one of a set of striped locks, so I/O to different chunks
// runs in parallel. Nothing is volatile, so Flush has nothing to do.
type MemoryImage struct {
	size   atomic.Int64
	closed atomic.Bool
	locks  stripedLocks
	// leaves is replaced (Resize, Close) only while every stripe is held,
	// so reading it under any one stripe is safe. A leaf is installed with
	// a compare-and-swap because chunks of one leaf live on all stripes.
	leaves []atomic.Pointer[memLeaf]
}

var (
	_ Image              = (*MemoryImage)(nil)
	_ Flusher            = (*MemoryImage)(nil)
	_ Discarder          = (*MemoryImage)(nil)
	_ WriteSamer         = (*MemoryImage)(nil)
	_ CompareAndWriter   = (*MemoryImage)(nil)
	_ AllocationReporter = (*MemoryImage)(nil)
	_ Resizer            = (*MemoryImage)(nil)
	_ AtomicWriter       = (*MemoryImage)(nil)
)

// NewMemoryImage returns an empty image of size bytes. It panics if size
// is negative, as make does for a negative length.
func NewMemoryImage(size int64) *MemoryImage {
	if size < 0 {
		panic(fmt.Sprintf("rbdbackend: NewMemoryImage with negative size %d", size))
	}
	m := &MemoryImage{leaves: make([]atomic.Pointer[memLeaf], leavesFor(size))}
	m.size.Store(size)
	return m
}

func leavesFor(size int64) int64 { return (size + memLeafBytes - 1) / memLeafBytes }

// Size returns the current size in bytes.
func (m *MemoryImage) Size() int64 { return m.size.Load() }

// ReadAt copies the image's bytes at off into p. It holds the stripes of
// all the chunks it reads at once, so it never sees half of a write.
func (m *MemoryImage) ReadAt(p []byte, off int64) (int, error) {
	if err := m.begin("read", off, int64(len(p))); err != nil || len(p) == 0 {
		return 0, err
	}
	set := chunkStripes(off, int64(len(p)))
	m.locks.rlock(set)
	defer m.locks.runlock(set)
	done := 0
	err := forEachChunk(off, int64(len(p)), func(idx, within, rel, n int64) error {
		slot, err := m.slot(idx, false)
		if err != nil {
			return err
		}
		dst := p[rel : rel+n]
		if slot == nil || *slot == nil {
			clear(dst)
		} else {
			copy(dst, (*slot)[within:])
		}
		done += int(n)
		return nil
	})
	return done, err
}

// WriteAt copies p into the image at off, allocating chunks as needed. It
// holds the stripes of all the chunks it writes at once, so a
// CompareAndWrite or a read never sees half of it.
func (m *MemoryImage) WriteAt(p []byte, off int64) (int, error) {
	if err := m.begin("write", off, int64(len(p))); err != nil || len(p) == 0 {
		return 0, err
	}
	set := chunkStripes(off, int64(len(p)))
	m.locks.lock(set)
	defer m.locks.unlock(set)
	done := 0
	err := forEachChunk(off, int64(len(p)), func(idx, within, rel, n int64) error {
		c, err := m.chunkForWrite(idx)
		if err != nil {
			return err
		}
		copy(c[within:within+n], p[rel:rel+n])
		done += int(n)
		return nil
	})
	return done, err
}

// AtomicWriteLimits reports that every write is atomic, whatever its
// offset and length: WriteAt holds the stripes of all the chunks it writes
// at once, and ReadAt those of all the chunks it reads, so neither sees
// the other half done. Memory has no failure that could tear a write and
// leave the image behind.
func (m *MemoryImage) AtomicWriteLimits() (maxBytes, alignmentBytes, granularityBytes int64) {
	return math.MaxInt64, 0, 0
}

// Flush succeeds at once: memory holds no volatile cache.
func (m *MemoryImage) Flush() error {
	if m.closed.Load() {
		return fmt.Errorf("rbdbackend: flush: %w", ErrClosed)
	}
	return nil
}

// Discard frees the chunks [off, off+length) covers entirely and zeroes the
// rest of the range.
func (m *MemoryImage) Discard(off, length int64) error {
	if err := m.begin("discard", off, length); err != nil {
		return err
	}
	return forEachChunk(off, length, func(idx, within, _, n int64) error {
		l := m.stripe(idx)
		l.Lock()
		defer l.Unlock()
		slot, err := m.slot(idx, false)
		if err != nil || slot == nil || *slot == nil {
			return err
		}
		// The size is stable while a stripe is held; a chunk reaching past
		// the end may be freed when the range runs to the end.
		chunkStart := idx << memChunkShift
		if within == 0 && (n == memChunkSize || chunkStart+n >= m.size.Load()) {
			*slot = nil
			return nil
		}
		clear((*slot)[within : within+n])
		return nil
	})
}

// WriteSame writes pattern repeatedly over [off, off+length); length must be
// a multiple of len(pattern).
func (m *MemoryImage) WriteSame(off, length int64, pattern []byte) error {
	if err := m.begin("write same", off, length); err != nil || length == 0 {
		return err
	}
	if err := checkPattern(length, pattern); err != nil {
		return err
	}
	plen := int64(len(pattern))
	return forEachChunk(off, length, func(idx, within, rel, n int64) error {
		l := m.stripe(idx)
		l.Lock()
		defer l.Unlock()
		c, err := m.chunkForWrite(idx)
		if err != nil {
			return err
		}
		fillPattern(c[within:within+n], pattern, int(rel%plen))
		return nil
	})
}

// CompareAndWrite writes data at off only if the bytes there equal cmp. It
// holds the locks of every chunk in the range throughout, so no write or
// other CompareAndWrite to the range can interleave.
func (m *MemoryImage) CompareAndWrite(off int64, cmp, data []byte) (int64, error) {
	if err := checkCompareLengths(cmp, data); err != nil {
		return 0, err
	}
	n := int64(len(cmp))
	if err := m.begin("compare and write", off, n); err != nil || n == 0 {
		return 0, err
	}
	set := chunkStripes(off, n)
	m.locks.lock(set)
	defer m.locks.unlock(set)

	mismatch := int64(-1)
	err := forEachChunk(off, n, func(idx, within, rel, n int64) error {
		slot, err := m.slot(idx, false)
		if err != nil {
			return err
		}
		want := cmp[rel : rel+n]
		var d int
		if slot == nil || *slot == nil {
			d = firstNonZero(want)
		} else {
			d = firstDifference(want, (*slot)[within:within+n])
		}
		if d >= 0 {
			mismatch = rel + int64(d)
			return errStopChunks
		}
		return nil
	})
	switch {
	case mismatch >= 0:
		return mismatch, fmt.Errorf("%w at byte %d of %d", ErrMiscompare, mismatch, n)
	case err != nil:
		return 0, err
	}
	err = forEachChunk(off, n, func(idx, within, rel, n int64) error {
		c, err := m.chunkForWrite(idx)
		if err != nil {
			return err
		}
		copy(c[within:within+n], data[rel:rel+n])
		return nil
	})
	return 0, err
}

// Extent reports whether the chunk holding off has been written since it
// was last freed, and how far the same state continues.
func (m *MemoryImage) Extent(off, maxLength int64) (bool, int64, error) {
	if m.closed.Load() {
		return false, 0, fmt.Errorf("rbdbackend: extent: %w", ErrClosed)
	}
	size := m.size.Load()
	if maxLength < 0 || off < 0 || off > size {
		return false, 0, fmt.Errorf("rbdbackend: extent at %d on a %d-byte image: %w", off, size, ErrOutOfRange)
	}
	limit := min(maxLength, size-off)
	if limit == 0 {
		return false, 0, nil
	}
	first, err := m.chunkAllocated(off >> memChunkShift)
	if err != nil {
		return false, 0, err
	}
	pos := off
	for pos < off+limit {
		idx := pos >> memChunkShift
		if m.leafAbsent(idx) && !first {
			// A whole missing leaf is unallocated: skip it in one step.
			pos = (idx>>memLeafShift + 1) * memLeafBytes
			continue
		}
		got, err := m.chunkAllocated(idx)
		if err != nil {
			return false, 0, err
		}
		if got != first {
			break
		}
		pos = (idx + 1) << memChunkShift
	}
	return first, min(pos-off, limit), nil
}

// Resize grows the image to size bytes; the new bytes read as zeroes.
func (m *MemoryImage) Resize(size int64) error {
	m.locks.lockAll()
	defer m.locks.unlockAll()
	if m.leaves == nil {
		return fmt.Errorf("rbdbackend: resize: %w", ErrClosed)
	}
	cur := m.size.Load()
	if size < cur {
		return fmt.Errorf("rbdbackend: resize from %d to %d bytes: shrinking: %w", cur, size, ErrUnsupported)
	}
	if need := leavesFor(size); need > int64(len(m.leaves)) {
		grown := make([]atomic.Pointer[memLeaf], need)
		for i := range m.leaves {
			grown[i].Store(m.leaves[i].Load())
		}
		m.leaves = grown
	}
	m.size.Store(size)
	return nil
}

// Close frees the image's memory. Later calls return ErrClosed.
func (m *MemoryImage) Close() error {
	if m.closed.Swap(true) {
		return fmt.Errorf("rbdbackend: close: %w", ErrClosed)
	}
	m.locks.lockAll()
	m.leaves = nil
	m.locks.unlockAll()
	return nil
}

// begin checks that the image is open and the range lies within it.
func (m *MemoryImage) begin(op string, off, n int64) error {
	if m.closed.Load() {
		return fmt.Errorf("rbdbackend: %s: %w", op, ErrClosed)
	}
	return checkIORange(op, off, n, m.size.Load())
}

// chunkStripes returns the stripes guarding the chunks [off, off+n)
// overlaps (n > 0).
func chunkStripes(off, n int64) uint64 {
	return stripeSet(off>>memChunkShift, (off+n-1)>>memChunkShift)
}

func (m *MemoryImage) stripe(idx int64) *paddedRWMutex {
	return &m.locks.s[idx%regionStripes]
}

// slot returns where chunk idx's pointer lives, or nil when its leaf does
// not exist and create is false. The caller holds the chunk's stripe.
func (m *MemoryImage) slot(idx int64, create bool) (**memChunk, error) {
	if m.leaves == nil {
		return nil, fmt.Errorf("rbdbackend: %w", ErrClosed)
	}
	lp := &m.leaves[idx>>memLeafShift]
	leaf := lp.Load()
	if leaf == nil {
		if !create {
			return nil, nil
		}
		// Losing the race is fine: the winner's leaf is just as empty.
		lp.CompareAndSwap(nil, new(memLeaf))
		leaf = lp.Load()
	}
	return &leaf[idx&(memLeafChunks-1)], nil
}

// chunkForWrite returns chunk idx, allocating it (and its leaf) if needed.
// The caller holds the chunk's stripe exclusively.
func (m *MemoryImage) chunkForWrite(idx int64) (*memChunk, error) {
	slot, err := m.slot(idx, true)
	if err != nil {
		return nil, err
	}
	if *slot == nil {
		*slot = new(memChunk)
	}
	return *slot, nil
}

func (m *MemoryImage) chunkAllocated(idx int64) (bool, error) {
	l := m.stripe(idx)
	l.RLock()
	defer l.RUnlock()
	slot, err := m.slot(idx, false)
	if err != nil {
		return false, err
	}
	return slot != nil && *slot != nil, nil
}

// leafAbsent reports whether chunk idx's leaf was never allocated. It takes
// no lock for the chunk, only a stripe for the leaves slice.
func (m *MemoryImage) leafAbsent(idx int64) bool {
	l := m.stripe(idx)
	l.RLock()
	defer l.RUnlock()
	li := idx >> memLeafShift
	return m.leaves != nil && li < int64(len(m.leaves)) && m.leaves[li].Load() == nil
}

// errStopChunks ends a forEachChunk walk early without being an error.
var errStopChunks = errors.New("rbdbackend: stop walking chunks")

// forEachChunk calls fn for each chunk that [off, off+n) overlaps, with the
// chunk index, the offset inside the chunk, the offset relative to off, and
// the length of the overlap.
func forEachChunk(off, n int64, fn func(idx, within, rel, length int64) error) error {
	for rel := int64(0); rel < n; {
		pos := off + rel
		within := pos & (memChunkSize - 1)
		length := min(n-rel, memChunkSize-within)
		if err := fn(pos>>memChunkShift, within, rel, length); err != nil {
			if err == errStopChunks {
				return nil
			}
			return err
		}
		rel += length
	}
	return nil
}

func firstNonZero(b []byte) int {
	for i, c := range b {
		if c != 0 {
			return i
		}
	}
	return -1
}
