package scsi

import (
	"bytes"
	"testing"

	"github.com/rbdgw/rbdgw/rbdbackend"
)

func cdbWriteAtomic16(lba uint64, blocks uint16) []byte {
	c := make([]byte, 16)
	c[0] = opWriteAtomic16
	put64(c[2:10], lba)
	put16(c[12:14], blocks)
	return c
}

// atomicImage is a memory image with chosen atomic write limits.
type atomicImage struct {
	*rbdbackend.MemoryImage
	maxBytes, align, gran int64
}

func (a atomicImage) AtomicWriteLimits() (int64, int64, int64) { return a.maxBytes, a.align, a.gran }

func TestAtomicLimitsOf(t *testing.T) {
	tests := []struct {
		name                  string
		maxBytes, align, gran int64
		bs, maxTransfer       uint32
		want                  atomicLimits
		ok                    bool
	}{
		{"memory: no constraint", 1 << 62, 0, 0, 512, 16384, atomicLimits{16384, 0, 0}, true},
		{"byte units below the block", 1 << 20, 512, 1, 4096, 1 << 20, atomicLimits{256, 0, 0}, true},
		{"RBD object", 4 << 20, 4 << 20, 0, 512, 16384, atomicLimits{8192, 8192, 0}, true},
		{"RBD object beyond the maximum transfer", 4 << 20, 4 << 20, 0, 512, 4096, atomicLimits{4096, 8192, 0}, true},
		{"granularity rounds the maximum down", 10 * 4096, 0, 8192, 4096, 1024, atomicLimits{10, 0, 2}, true},
		{"alignment not a power of two", 1 << 20, 6144, 0, 4096, 1024, atomicLimits{256, 3, 0}, true},
		{"no whole block", 256, 0, 0, 512, 16384, atomicLimits{}, false},
		{"no promise", 0, 0, 0, 512, 16384, atomicLimits{}, false},
		{"granularity above the maximum", 8192, 0, 16384, 512, 16384, atomicLimits{}, false},
		{"negative alignment", 8192, -1, 0, 512, 16384, atomicLimits{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := atomicImage{nil, tc.maxBytes, tc.align, tc.gran}
			got, ok := atomicLimitsOf(img, tc.bs, tc.maxTransfer)
			if ok != tc.ok || got != tc.want {
				t.Errorf("got %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestWriteAtomic(t *testing.T) {
	e := newEnv(t)
	data := fill(4*testBlockSize, 0x5a)
	e.good(cdbWriteAtomic16(8, 4), data)
	if got := e.good(cdb10(opRead10, 8, 4), nil); !bytes.Equal(got, data) {
		t.Error("written data not read back")
	}
	e.good(cdbWriteAtomic16(0, 0), nil) // zero blocks: nothing to do
	fua := cdbWriteAtomic16(0, 1)
	fua[1] = 0x18 // DPO, FUA
	e.good(fua, fill(testBlockSize, 1))

	e.expectSense(cdbWriteAtomic16(testBlocks-1, 2), fill(2*testBlockSize, 0), senseIllegalRequest, ascLBAOutOfRange)
	e.expectSense(cdbWriteAtomic16(testBlocks+1, 0), nil, senseIllegalRequest, ascLBAOutOfRange)
	e.expectSense(cdbWriteAtomic16(1<<63, 1), fill(testBlockSize, 0), senseIllegalRequest, ascLBAOutOfRange)
	wrprotect := cdbWriteAtomic16(0, 1)
	wrprotect[1] = 0x20
	r := e.expectSense(wrprotect, fill(testBlockSize, 0), senseIllegalRequest, ascInvalidFieldInCDB)
	if p := parseSense(t, r.Sense); p.field != 1 || p.bit != 7 {
		t.Errorf("WRPROTECT field pointer %+v", p)
	}
	// Less Data-Out than the range: nothing is written.
	e.expectSense(cdbWriteAtomic16(100, 2), fill(testBlockSize, 7), senseIllegalRequest, ascInvalidFieldInIU)
	if got := e.good(cdb10(opRead10, 100, 1), nil); got[0] != 0 {
		t.Error("a short atomic write changed the medium")
	}
}

func TestWriteAtomicLimits(t *testing.T) {
	img := atomicImage{rbdbackend.NewMemoryImage(testBlocks * testBlockSize), 64 * testBlockSize, 16 * testBlockSize, 2 * testBlockSize}
	e := newEnvWithImage(t, img)
	bl := e.good(cdbInquiry(true, vpdBlockLimits, 255), nil)
	if be32(bl[44:48]) != 64 || be32(bl[48:52]) != 16 || be32(bl[52:56]) != 2 || !bytes.Equal(bl[56:64], make([]byte, 8)) {
		t.Errorf("atomic fields of the Block Limits page % x", bl[44:64])
	}
	e.good(cdbWriteAtomic16(16, 64), fill(64*testBlockSize, 1))
	tests := []struct {
		name   string
		lba    uint64
		blocks uint16
		field  int
	}{
		{"too long", 0, 66, 12},
		{"not a multiple of the granularity", 16, 3, 12},
		{"misaligned", 8, 2, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.expectSense(cdbWriteAtomic16(tc.lba, tc.blocks), fill(int(tc.blocks)*testBlockSize, 2),
				senseIllegalRequest, ascInvalidFieldInCDB)
			if p := parseSense(t, r.Sense); p.field != tc.field || !p.inCDB {
				t.Errorf("field pointer %+v, want byte %d", p, tc.field)
			}
		})
	}
	// Without the capability the atomic fields are zero.
	plain := newEnvWithImage(t, plainImage{memImage(testBlocks)})
	if bl := plain.good(cdbInquiry(true, vpdBlockLimits, 255), nil); !bytes.Equal(bl[44:64], make([]byte, 20)) {
		t.Errorf("atomic fields without the capability % x", bl[44:64])
	}
}

func TestWriteAtomicReadOnly(t *testing.T) {
	e := newEnv(t, func(c *LUConfig) { c.ReadOnly = true })
	e.expectSense(cdbWriteAtomic16(0, 1), fill(testBlockSize, 0), senseDataProtect, ascWriteProtected)
}

func TestWriteAtomicDataOutLength(t *testing.T) {
	if n, ok := dataOutLength(cdbWriteAtomic16(0, 3), 512); !ok || n != 3*512 {
		t.Errorf("Data-Out length %d, %v", n, ok)
	}
}
