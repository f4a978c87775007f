package scsi

import "math/bits"

// READ CAPACITY(10/16), GET LBA STATUS, SYNCHRONIZE CACHE and PRE-FETCH.

// cmdReadCapacity10 is READ CAPACITY(10) (SBC-3 5.15).
func cmdReadCapacity10(t *task) ([]byte, error) {
	if t.cdb[8]&0x01 == 0 && be32(t.cdb[2:6]) != 0 {
		return nil, invalidCDB(2, -1) // LOGICAL BLOCK ADDRESS without PMI
	}
	data := make([]byte, 8)
	put32(data[0:4], clampU32(t.lu.lastLBA()))
	put32(data[4:8], t.lu.cfg.BlockSize)
	return data, nil
}

// cmdReadCapacity16 is READ CAPACITY(16) (SBC-3 5.16).
func cmdReadCapacity16(t *task) ([]byte, error) {
	if t.cdb[14]&0x01 == 0 && be64(t.cdb[2:10]) != 0 {
		return nil, invalidCDB(2, -1)
	}
	data := make([]byte, 32)
	put64(data[0:8], t.lu.lastLBA())
	put32(data[8:12], t.lu.cfg.BlockSize)
	// LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT; the LOWEST ALIGNED LOGICAL
	// BLOCK ADDRESS stays zero: LBA 0 starts a physical block.
	data[13] = byte(bits.TrailingZeros32(t.lu.blocksPerPhysical()))
	if t.lu.discarder != nil {
		data[14] |= 0x80 // LBPME: thin provisioned
		if t.lu.lbprz {
			data[14] |= 0x40 // LBPRZ
		}
	}
	return cut(data, be32(t.cdb[10:14])), nil
}

// lastLBA is the address of the last logical block (0 for an empty image,
// which has none; READ CAPACITY cannot say so).
func (lu *LU) lastLBA() uint64 {
	if n := lu.Blocks(); n > 0 {
		return n - 1
	}
	return 0
}

// Provisioning status of an LBA status descriptor (SBC-3 table 40).
const (
	lbaMapped      = 0x0
	lbaDeallocated = 0x1
)

// cmdGetLBAStatus is GET LBA STATUS (SBC-3 5.6): runs of mapped and
// deallocated blocks from the starting LBA, as many as fit the allocation
// length. Images that cannot tell report everything mapped ("mapped or
// unknown").
func cmdGetLBAStatus(t *task) ([]byte, error) {
	lba := be64(t.cdb[2:10])
	alloc := be32(t.cdb[10:14])
	capacity := t.lu.Blocks()
	if lba >= capacity {
		return nil, errLBAOutOfRange()
	}
	maxDescs := 1
	if alloc > 24 {
		maxDescs = int(min((alloc-8)/16, 1024))
	}
	data := make([]byte, 8, 8+16*maxDescs)
	for len(data) < 8+16*maxDescs && lba < capacity {
		mapped, n, err := t.lu.blockStatus(lba, capacity-lba)
		if err != nil {
			return nil, err
		}
		// Coalesce with the previous descriptor when the state matches.
		if len(data) > 8 {
			prev := data[len(data)-16:]
			prevLBA, prevN := be64(prev[0:8]), uint64(be32(prev[8:12]))
			if (prev[12] == lbaMapped) == mapped && prevLBA+prevN == lba && prevN+n <= 0xffffffff {
				put32(prev[8:12], uint32(prevN+n))
				lba += n
				continue
			}
		}
		d := make([]byte, 16)
		put64(d[0:8], lba)
		n = min(n, 0xffffffff)
		put32(d[8:12], uint32(n))
		if !mapped {
			d[12] = lbaDeallocated
		}
		data = append(data, d...)
		lba += n
	}
	put32(data[0:4], uint32(len(data)-4))
	return cut(data, alloc), nil
}

// blockStatus reports whether the blocks from lba are mapped and how many
// consecutive blocks (at most maxBlocks, at least 1) share that state. A
// block is mapped when any byte of it is allocated.
func (lu *LU) blockStatus(lba, maxBlocks uint64) (bool, uint64, error) {
	if lu.alloc == nil {
		return true, maxBlocks, nil
	}
	bs := uint64(lu.cfg.BlockSize)
	allocated, length, err := lu.alloc.Extent(int64(lba*bs), int64(maxBlocks*bs))
	if err != nil {
		return false, 0, senseFromBackend(err, ioRead)
	}
	if length <= 0 {
		return true, 1, nil
	}
	if allocated {
		return true, min(max((uint64(length)+bs-1)/bs, 1), maxBlocks), nil
	}
	if n := uint64(length) / bs; n > 0 {
		return false, min(n, maxBlocks), nil
	}
	// The hole ends inside this block: part of it holds data.
	return true, 1, nil
}

// cmdSyncCache is SYNCHRONIZE CACHE(10/16) (SBC-3 5.22): the range is
// checked, then the whole image is flushed (a backend flush is not
// per-range). IMMED is honoured by completing the flush before returning,
// which the standard allows.
func cmdSyncCache(t *task) ([]byte, error) {
	if err := rangeOf(t.cdb).check(t.lu.Blocks()); err != nil {
		return nil, err
	}
	return nil, t.lu.flush()
}

// cmdPrefetch is PRE-FETCH(10/16) (SBC-3 5.12). When the image has a cache
// it can load (Prefetch) the range is loaded and the command ends with
// CONDITION MET; otherwise there is no cache to load and the answer is GOOD,
// as SBC-3 specifies for a range that does not fit.
func cmdPrefetch(t *task) ([]byte, error) {
	r := rangeOf(t.cdb)
	capacity := t.lu.Blocks()
	if err := r.check(capacity); err != nil {
		return nil, err
	}
	if r.blocks == 0 {
		r.blocks = capacity - r.lba
	}
	bs := uint64(t.lu.cfg.BlockSize)
	if t.lu.prefetcher == nil || r.blocks == 0 || r.blocks > uint64(t.lu.cfg.Limits.MaxTransferBytes)/bs {
		return nil, nil
	}
	if err := t.lu.prefetcher.Prefetch(int64(r.lba*bs), int64(r.blocks*bs)); err != nil {
		return nil, senseFromBackend(err, ioRead)
	}
	t.status = StatusConditionMet
	return nil, nil
}
