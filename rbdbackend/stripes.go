package rbdbackend

import (
	"math/bits"
	"sync"
	"unsafe"
)

// regionStripes is the number of locks a striped image spreads its regions
// over. 64 lets a set of stripes be one uint64, which is also the order in
// which they are taken (lowest bit first), so multi-region holders never
// deadlock.
const regionStripes = 64

// paddedRWMutex keeps each stripe on its own cache line so that I/O to
// neighbouring regions from different cores does not bounce one line.
type paddedRWMutex struct {
	sync.RWMutex
	_ [(64 - unsafe.Sizeof(sync.RWMutex{})%64) % 64]byte
}

// stripedLocks guards fixed-size regions of an image: region i is guarded
// by stripe i%regionStripes. Holders of one region never block I/O to a
// region on another stripe.
type stripedLocks struct {
	s [regionStripes]paddedRWMutex
}

// stripeSet returns the stripes guarding regions first..last (inclusive).
func stripeSet(first, last int64) uint64 {
	if last-first >= regionStripes-1 {
		return ^uint64(0)
	}
	var set uint64
	for r := first; r <= last; r++ {
		set |= 1 << uint(r%regionStripes)
	}
	return set
}

func (l *stripedLocks) lock(set uint64) {
	for s := set; s != 0; s &= s - 1 {
		l.s[bits.TrailingZeros64(s)].Lock()
	}
}

func (l *stripedLocks) unlock(set uint64) {
	for s := set; s != 0; s &= s - 1 {
		l.s[bits.TrailingZeros64(s)].Unlock()
	}
}

func (l *stripedLocks) rlock(set uint64) {
	for s := set; s != 0; s &= s - 1 {
		l.s[bits.TrailingZeros64(s)].RLock()
	}
}

func (l *stripedLocks) runlock(set uint64) {
	for s := set; s != 0; s &= s - 1 {
		l.s[bits.TrailingZeros64(s)].RUnlock()
	}
}

func (l *stripedLocks) lockAll()   { l.lock(^uint64(0)) }
func (l *stripedLocks) unlockAll() { l.unlock(^uint64(0)) }
