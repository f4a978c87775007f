package scsi

import (
	"math"

	"github.com/rbdgw/rbdgw/rbdbackend"
)

// WRITE ATOMIC(16) (SBC-4 5.48): the blocks are written as one, never
// partly, provided the range is within the atomic limits the Block Limits
// page advertises. The guarantee comes from the backend (the AtomicWriter
// of rbdbackend.CapabilitiesOf), so the command exists only on logical
// units whose image makes it.

// atomicLimits are the atomic write limits of a logical unit in logical
// blocks, as the Block Limits page reports them. Zero alignment or
// granularity means no requirement.
type atomicLimits struct {
	maxBlocks   uint32
	alignment   uint32
	granularity uint32
}

// atomicLimitsOf converts the byte limits of an AtomicWriter into logical
// blocks of bs bytes, with at most maxTransfer blocks per command. It
// returns false when no write of whole blocks satisfies them.
func atomicLimitsOf(w rbdbackend.AtomicWriter, bs, maxTransfer uint32) (atomicLimits, bool) {
	maxBytes, alignBytes, granBytes := w.AtomicWriteLimits()
	if maxBytes <= 0 || alignBytes < 0 || granBytes < 0 {
		return atomicLimits{}, false
	}
	align, ok := blocksFor(alignBytes, bs)
	if !ok {
		return atomicLimits{}, false
	}
	gran, ok := blocksFor(granBytes, bs)
	if !ok {
		return atomicLimits{}, false
	}
	n := uint32(min(maxBytes/int64(bs), int64(maxTransfer)))
	if gran > 1 {
		n -= n % gran
	}
	if n == 0 {
		return atomicLimits{}, false
	}
	return atomicLimits{maxBlocks: n, alignment: align, granularity: gran}, true
}

// blocksFor is the smallest number of bs-byte blocks that is a multiple of
// unit bytes (0 when unit imposes nothing on whole blocks); false when it
// does not fit the 32-bit fields of the Block Limits page.
func blocksFor(unit int64, bs uint32) (uint32, bool) {
	if unit <= 1 || int64(bs)%unit == 0 {
		return 0, true
	}
	b := int64(bs)
	blocks := unit / gcd(unit, b) // lcm(unit, bs) / bs
	if blocks > math.MaxUint32 {
		return 0, false
	}
	if blocks == 1 {
		return 0, true
	}
	return uint32(blocks), true
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// cmdWriteAtomic is WRITE ATOMIC(16). The range is checked first (an
// out-of-range command is LBA OUT OF RANGE whatever its alignment), then
// the atomic limits; the data goes to the backend in one write.
func cmdWriteAtomic(t *task) ([]byte, error) {
	r, err := t.mediaRange(false)
	if err != nil {
		return nil, err
	}
	if r.blocks == 0 {
		return nil, nil
	}
	l := t.lu.atomic
	switch {
	case r.blocks > uint64(l.maxBlocks):
		return nil, invalidCDB(r.lenField, -1)
	case l.granularity > 1 && r.blocks%uint64(l.granularity) != 0:
		return nil, invalidCDB(r.lenField, -1)
	case l.alignment > 1 && r.lba%uint64(l.alignment) != 0:
		return nil, invalidCDB(2, -1) // LOGICAL BLOCK ADDRESS
	}
	if err := t.lu.writeProtected(); err != nil {
		return nil, err
	}
	bs := uint64(t.lu.cfg.BlockSize)
	// Writing less than the whole range would not be atomic: a short
	// Data-Out ends the command before anything is written.
	data, err := t.dataOut(r.blocks * bs)
	if err != nil {
		return nil, err
	}
	if err := t.writeAt(data, int64(r.lba*bs)); err != nil {
		return nil, err
	}
	return nil, t.afterWrite(t.fua())
}
