package scsi

import (
	"testing"

	"github.com/rbdgw/rbdgw/rbdbackend"
)

// The physical block size reaches READ CAPACITY(16) and the granularities
// of the Block Limits page, which must agree.
func TestPhysicalBlockSize(t *testing.T) {
	tests := []struct {
		name              string
		blockSize         uint32
		physical          uint32
		wantExp           byte
		wantBlocksPerPhys uint32
	}{
		{"default for 512-byte blocks", 512, 0, 3, 8},
		{"default for 4096-byte blocks", 4096, 0, 0, 1},
		{"default for 8192-byte blocks", 8192, 0, 0, 1},
		{"same as the logical block", 512, 512, 0, 1},
		{"16 KiB", 512, 16384, 5, 32},
		{"largest exponent", 512, 512 << 15, 15, 1 << 15},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			blocks := 1 << 16
			e := newEnvWithImage(t, memImageBlocks(blocks, tc.blockSize), func(c *LUConfig) {
				c.BlockSize, c.PhysicalBlockSize = tc.blockSize, tc.physical
			})
			rc16 := e.good(cdbSA16(byte(saReadCapacity16), 0, 32), nil)
			if rc16[13] != tc.wantExp || rc16[14]&0x3f != 0 || rc16[15] != 0 {
				t.Errorf("READ CAPACITY(16) bytes 13-15: % x, want exponent %d, lowest aligned LBA 0", rc16[13:16], tc.wantExp)
			}
			bl := e.good(cdbInquiry(true, vpdBlockLimits, 255), nil)
			if got := uint32(be16(bl[6:8])); got != tc.wantBlocksPerPhys {
				t.Errorf("OPTIMAL TRANSFER LENGTH GRANULARITY %d, want %d", got, tc.wantBlocksPerPhys)
			}
			if got := be32(bl[28:32]); got != tc.wantBlocksPerPhys || bl[32] != 0x80 || be32(bl[32:36])&0x7fffffff != 0 {
				t.Errorf("OPTIMAL UNMAP GRANULARITY %d (want %d), alignment % x", got, tc.wantBlocksPerPhys, bl[32:36])
			}
			if opt := be32(bl[12:16]); be32(bl[8:12]) >= tc.wantBlocksPerPhys && opt%tc.wantBlocksPerPhys != 0 {
				t.Errorf("OPTIMAL TRANSFER LENGTH %d is not a multiple of the granularity %d", opt, tc.wantBlocksPerPhys)
			}
			if max := be32(bl[20:24]); max < tc.wantBlocksPerPhys {
				t.Errorf("MAXIMUM UNMAP LBA COUNT %d below one physical block", max)
			}
			if e.lu.PhysicalBlockSize() != tc.blockSize*tc.wantBlocksPerPhys {
				t.Errorf("PhysicalBlockSize() %d", e.lu.PhysicalBlockSize())
			}
		})
	}
}

// Configured limits are made consistent with the physical block.
func TestLimitsFollowPhysicalBlock(t *testing.T) {
	l := Limits{OptimalTransferBytes: 10000, MaxUnmapBlocks: 2}.withDefaults(512, 4096)
	if l.OptimalTransferBytes != 8192 || l.MaxUnmapBlocks != 8 {
		t.Errorf("limits %+v", l)
	}
	// An optimal transfer below one physical block becomes one, unless the
	// maximum transfer is smaller still.
	if l := (Limits{OptimalTransferBytes: 1024}).withDefaults(512, 4096); l.OptimalTransferBytes != 4096 {
		t.Errorf("small optimal transfer became %d", l.OptimalTransferBytes)
	}
	if l := (Limits{MaxTransferBytes: 2048}).withDefaults(512, 4096); l.OptimalTransferBytes != 2048 {
		t.Errorf("optimal transfer %d with a 2048-byte maximum", l.OptimalTransferBytes)
	}
}

// Unaligned deallocation still works: the physical block is a hint.
func TestUnalignedUnmapWithPhysicalBlocks(t *testing.T) {
	e := newEnv(t)
	e.good(cdb10(opWrite10, 0, 16), fill(16*testBlockSize, 0xa6))
	ws := cdb10(opWriteSame10, 3, 4)
	ws[1] = 0x08 // UNMAP
	e.good(ws, fill(testBlockSize, 0))
	got := e.good(cdb10(opRead10, 0, 16), nil)
	for i, b := range got {
		zero := i >= 3*testBlockSize && i < 7*testBlockSize
		if zero != (b == 0) {
			t.Fatalf("byte %d is %#x after unmapping blocks 3-6", i, b)
		}
	}
}

func memImageBlocks(blocks int, blockSize uint32) *rbdbackend.MemoryImage {
	return rbdbackend.NewMemoryImage(int64(blocks) * int64(blockSize))
}
