package scsi

import (
	"bytes"
	"testing"

	"github.com/rbdgw/rbdgw/rbdbackend"
)

func ws10(flags byte, lba uint32, n uint16) []byte {
	c := cdb10(opWriteSame10, lba, n)
	c[1] = flags
	return c
}

func ws16(flags byte, lba uint64, n uint32) []byte {
	c := cdb16(opWriteSame16, lba, n)
	c[1] = flags
	return c
}

func TestWriteSame(t *testing.T) {
	for _, img := range []rbdbackend.Image{memImage(testBlocks), plainImage{memImage(testBlocks)}} {
		e := newEnvWithImage(t, img)
		pat := fill(testBlockSize, 0x77)
		e.good(ws10(0, 10, 5), pat)
		if got := e.good(cdb10(opRead10, 9, 7), nil); !bytes.Equal(got[testBlockSize:6*testBlockSize], fill(5*testBlockSize, 0x77)) ||
			!bytes.Equal(got[:testBlockSize], make([]byte, testBlockSize)) || !bytes.Equal(got[6*testBlockSize:], make([]byte, testBlockSize)) {
			t.Errorf("%T: WRITE SAME(10) wrote the wrong blocks", img)
		}
		e.good(ws16(0, testBlocks-3, 3), pat)
		// Zero blocks: up to the last LBA.
		e.good(ws16(0, testBlocks-4, 0), fill(testBlockSize, 0x42))
		if got := e.good(cdb16(opRead16, testBlocks-4, 4), nil); !bytes.Equal(got, fill(4*testBlockSize, 0x42)) {
			t.Errorf("%T: zero-block WRITE SAME did not reach the last LBA", img)
		}
	}

	e := newEnv(t, func(c *LUConfig) { c.Limits.MaxWriteSameBlocks = 100 })
	zero := make([]byte, testBlockSize)
	runMediaCases(t, e, []mediaCase{
		{"beyond end", ws10(0, testBlocks-1, 2), zero, senseIllegalRequest, ascLBAOutOfRange, -1},
		{"LBA -1", ws10(0, 0xffffffff, 1), zero, senseIllegalRequest, ascLBAOutOfRange, -1},
		{"zero blocks beyond end", ws16(0, testBlocks+1, 0), zero, senseIllegalRequest, ascLBAOutOfRange, -1},
		{"zero blocks over the limit", ws16(0, 0, 0), zero, senseIllegalRequest, ascInvalidFieldInCDB, 10},
		{"zero blocks at the limit", ws16(0, testBlocks-100, 0), zero, 0, 0, -1},
		{"over the limit", ws10(0, 0, 101), zero, senseIllegalRequest, ascInvalidFieldInCDB, 7},
		{"ANCHOR without UNMAP", ws10(0x10, 0, 1), zero, senseIllegalRequest, ascInvalidFieldInCDB, 1},
		{"ANCHOR with UNMAP", ws10(0x18, 0, 1), zero, senseIllegalRequest, ascInvalidFieldInCDB, 1},
		{"WRPROTECT", ws16(0x20, 0, 1), zero, senseIllegalRequest, ascInvalidFieldInCDB, 1},
		{"half a block of data", ws10(0x08, 0, 1), zero[:testBlockSize/2], senseIllegalRequest, ascInvalidFieldInIU, -1},
		{"two blocks of data", ws10(0x08, 0, 1), fill(2*testBlockSize, 0), senseIllegalRequest, ascInvalidFieldInIU, -1},
		{"NDOB without data", ws16(0x09, 0, 4), nil, 0, 0, -1},
	})

	// UNMAP with a zero pattern deallocates and reads back as zeroes;
	// a non-zero pattern is written even with UNMAP set.
	e.good(cdb10(opWrite10, 0, 8), fill(8*testBlockSize, 0xff))
	e.good(ws10(0x08, 0, 8), zero)
	if got := e.good(cdb10(opRead10, 0, 8), nil); !bytes.Equal(got, make([]byte, 8*testBlockSize)) {
		t.Error("WRITE SAME UNMAP did not zero the blocks")
	}
	e.good(cdb10(opWrite10, 0, 2), fill(2*testBlockSize, 0xff))
	e.good(ws16(0x08, 0, 2), fill(testBlockSize, 0xff))
	if got := e.good(cdb10(opRead10, 0, 2), nil); !bytes.Equal(got, make([]byte, 2*testBlockSize)) {
		t.Error("WRITE SAME UNMAP with a non-zero pattern did not deallocate")
	}

	// Without a Discarder the UNMAP bit is refused.
	p := newEnvWithImage(t, plainImage{memImage(testBlocks)})
	p.expectSense(ws10(0x08, 0, 1), zero, senseIllegalRequest, ascInvalidFieldInCDB)
}

func TestUnmap(t *testing.T) {
	e := newEnv(t, func(c *LUConfig) {
		c.Limits.MaxUnmapDescriptors = 4
		c.Limits.MaxUnmapBlocks = 64
	})
	e.good(cdb10(opWrite10, 0, 16), fill(16*testBlockSize, 0xee))
	e.good(cdbUnmap(40), unmapList([2]uint64{2, 3}, [2]uint64{10, 1}))
	got := e.good(cdb10(opRead10, 0, 16), nil)
	for b := 0; b < 16; b++ {
		want := byte(0xee)
		if (b >= 2 && b < 5) || b == 10 {
			want = 0
		}
		if got[b*testBlockSize] != want {
			t.Errorf("block %d: %#x, want %#x", b, got[b*testBlockSize], want)
		}
	}
	truncated := unmapList([2]uint64{0, 1})
	put16(truncated[2:4], 32) // claims two descriptors
	runMediaCases(t, e, []mediaCase{
		{"empty list", cdbUnmap(8), unmapList(), 0, 0, -1},
		{"zero length", cdbUnmap(0), nil, 0, 0, -1},
		{"zero blocks at capacity", cdbUnmap(24), unmapList([2]uint64{testBlocks, 0}), 0, 0, -1},
		{"beyond end", cdbUnmap(24), unmapList([2]uint64{testBlocks - 1, 2}), senseIllegalRequest, ascLBAOutOfRange, -1},
		{"too many blocks", cdbUnmap(24), unmapList([2]uint64{0, 65}), senseIllegalRequest, ascInvalidFieldInParam, 16},
		{"too many descriptors", cdbUnmap(88), unmapList([2]uint64{0, 1}, [2]uint64{1, 1}, [2]uint64{2, 1}, [2]uint64{3, 1}, [2]uint64{4, 1}),
			senseIllegalRequest, ascInvalidFieldInParam, 2},
		{"short parameter list", cdbUnmap(6), make([]byte, 6), senseIllegalRequest, ascParameterListLength, -1},
		{"descriptor length beyond list", cdbUnmap(24), truncated, senseIllegalRequest, ascParameterListLength, -1},
		{"ANCHOR", append([]byte{opUnmap, 0x01}, make([]byte, 8)...), nil, senseIllegalRequest, ascInvalidFieldInCDB, 1},
	})
}

func TestCompareAndWrite(t *testing.T) {
	for _, img := range []rbdbackend.Image{memImage(testBlocks), plainImage{memImage(testBlocks)}} {
		e := newEnvWithImage(t, img, func(c *LUConfig) { c.Limits.MaxCompareAndWriteBlocks = 2 })
		old := fill(2*testBlockSize, 'A')
		e.good(cdb16(opWrite16, 7, 2), old)
		e.good(cawCDB(7, 2), append(bytes.Clone(old), fill(2*testBlockSize, 'B')...))
		if got := e.good(cdb16(opRead16, 7, 2), nil); !bytes.Equal(got, fill(2*testBlockSize, 'B')) {
			t.Errorf("%T: COMPARE AND WRITE did not write", img)
		}
		cmp := fill(2*testBlockSize, 'B')
		cmp[testBlockSize+3] = 'Z'
		r := e.expectSense(cawCDB(7, 2), append(cmp, fill(2*testBlockSize, 'C')...), senseMiscompare, ascMiscompareDuringVerify)
		if p := parseSense(t, r.Sense); !p.hasInfo || p.info != testBlockSize+3 {
			t.Errorf("%T: miscompare offset %d", img, p.info)
		}
		if got := e.good(cdb16(opRead16, 7, 2), nil); !bytes.Equal(got, fill(2*testBlockSize, 'B')) {
			t.Errorf("%T: a miscompare wrote data", img)
		}
		runMediaCases(t, e, []mediaCase{
			{"NoLB over the limit", cawCDB(0, 3), fill(6*testBlockSize, 0), senseIllegalRequest, ascInvalidFieldInCDB, 13},
			{"NoLB zero", cawCDB(0, 0), nil, 0, 0, -1},
			{"NoLB zero with data", cawCDB(0, 0), fill(2*testBlockSize, 0), senseIllegalRequest, ascInvalidFieldInCDB, 13},
			{"beyond end", cawCDB(testBlocks-1, 2), fill(4*testBlockSize, 0), senseIllegalRequest, ascLBAOutOfRange, -1},
			{"Data-Out too long", cawCDB(0, 1), fill(4*testBlockSize, 0), senseIllegalRequest, ascInvalidFieldInIU, -1},
			{"Data-Out too short", cawCDB(0, 2), fill(2*testBlockSize, 0), senseIllegalRequest, ascInvalidFieldInIU, -1},
		})
	}
}

func lbaStatus(t *testing.T, data []byte) [][3]uint64 {
	t.Helper()
	if int(be32(data[0:4]))+4 != len(data) {
		t.Fatalf("PARAMETER DATA LENGTH %d for %d bytes", be32(data[0:4]), len(data))
	}
	var out [][3]uint64
	for d := data[8:]; len(d) >= 16; d = d[16:] {
		out = append(out, [3]uint64{be64(d[0:8]), uint64(be32(d[8:12])), uint64(d[12] & 0x0f)})
	}
	return out
}

func TestGetLBAStatus(t *testing.T) {
	// 1 MiB allocation units of the memory image are 2048 blocks.
	const unit = 2048
	e := newEnv(t)
	e.good(cdb16(opWrite16, unit, 1), fill(testBlockSize, 1))
	got := lbaStatus(t, e.good(cdbSA16(byte(saGetLBAStatus), 0, 1024), nil))
	want := [][3]uint64{{0, unit, lbaDeallocated}, {unit, unit, lbaMapped}, {2 * unit, testBlocks - 2*unit, lbaDeallocated}}
	if len(got) != len(want) {
		t.Fatalf("descriptors %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("descriptor %d: %v, want %v", i, got[i], want[i])
		}
	}
	// The first descriptor starts at the requested LBA.
	if got := lbaStatus(t, e.good(cdbSA16(byte(saGetLBAStatus), unit+5, 24), nil)); got[0] != [3]uint64{unit + 5, unit - 5, lbaMapped} {
		t.Errorf("from LBA %d: %v", unit+5, got)
	}
	e.good(cdbUnmap(24), unmapList([2]uint64{unit, unit}))
	if got := lbaStatus(t, e.good(cdbSA16(byte(saGetLBAStatus), unit, 24), nil)); got[0][2] != lbaDeallocated {
		t.Errorf("after UNMAP: %v", got)
	}
	e.expectSense(cdbSA16(byte(saGetLBAStatus), testBlocks, 24), nil, senseIllegalRequest, ascLBAOutOfRange)
	e.expectSense(cdbSA16(byte(saGetLBAStatus), ^uint64(0), 24), nil, senseIllegalRequest, ascLBAOutOfRange)
	if got := e.good(cdbSA16(byte(saGetLBAStatus), 0, 0), nil); len(got) != 0 {
		t.Errorf("allocation length 0 returned %d bytes", len(got))
	}

	// Without an AllocationReporter everything is "mapped or unknown".
	p := newEnvWithImage(t, plainImage{memImage(testBlocks)})
	if got := lbaStatus(t, p.good(cdbSA16(byte(saGetLBAStatus), 10, 1024), nil)); len(got) != 1 || got[0] != [3]uint64{10, testBlocks - 10, lbaMapped} {
		t.Errorf("plain image: %v", got)
	}
}

func TestReadCapacity(t *testing.T) {
	e := newEnv(t)
	rc10 := e.good(cdb10(opReadCapacity10, 0, 0), nil)
	if be32(rc10[0:4]) != testBlocks-1 || be32(rc10[4:8]) != testBlockSize {
		t.Errorf("READ CAPACITY(10) % x", rc10)
	}
	rc16 := e.good(cdbSA16(byte(saReadCapacity16), 0, 32), nil)
	if be64(rc16[0:8]) != testBlocks-1 || be32(rc16[8:12]) != testBlockSize || rc16[14] != 0xc0 || rc16[12] != 0 {
		t.Errorf("READ CAPACITY(16) % x", rc16)
	}
	for alloc := uint32(0); alloc < 40; alloc++ {
		if got := e.good(cdbSA16(byte(saReadCapacity16), 0, alloc), nil); len(got) != int(min(alloc, 32)) {
			t.Errorf("alloc %d: %d bytes", alloc, len(got))
		}
	}
	e.expectSense(cdb10(opReadCapacity10, 1, 0), nil, senseIllegalRequest, ascInvalidFieldInCDB)
	p := newEnvWithImage(t, plainImage{memImage(testBlocks)})
	if rc16 := p.good(cdbSA16(byte(saReadCapacity16), 0, 32), nil); rc16[14] != 0 {
		t.Errorf("LBPME without a Discarder: % x", rc16)
	}
}

func TestPrefetchAndSync(t *testing.T) {
	e := newEnv(t)
	runMediaCases(t, e, []mediaCase{
		{"PRE-FETCH(10)", cdb10(opPrefetch10, 0, 8), nil, 0, 0, -1},
		{"PRE-FETCH(10) zero blocks", cdb10(opPrefetch10, 0, 0), nil, 0, 0, -1},
		{"PRE-FETCH(10) beyond", cdb10(opPrefetch10, testBlocks-1, 2), nil, senseIllegalRequest, ascLBAOutOfRange, -1},
		{"PRE-FETCH(16) IMMED", append([]byte{opPrefetch16, 0x02}, make([]byte, 14)...), nil, 0, 0, -1},
		{"SYNCHRONIZE CACHE(16) beyond", cdb16(opSyncCache16, testBlocks+1, 0), nil, senseIllegalRequest, ascLBAOutOfRange, -1},
		{"SYNCHRONIZE CACHE(10) IMMED", append([]byte{opSyncCache10, 0x02}, make([]byte, 8)...), nil, 0, 0, -1},
	})
	// An image with a cache to load answers CONDITION MET.
	pe := newEnvWithImage(t, prefetchImage{memImage(testBlocks), new(int)})
	if r := pe.exec(cdb10(opPrefetch10, 0, 8), nil); r.Status != StatusConditionMet {
		t.Errorf("PRE-FETCH with a cache: status %#x", r.Status)
	}
}

type prefetchImage struct {
	*rbdbackend.MemoryImage
	calls *int
}

func (p prefetchImage) Prefetch(off, length int64) error { *p.calls++; return nil }

// The transport may cut an over-long Data-Out to what the CDB asks for; the
// announced length still tells that the initiator got the size wrong.
func TestExactDataOutUsesAnnouncedLength(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		cdb       []byte
		announced uint32
		sent      int
	}{
		{ws10(0, 0, 1), 2 * testBlockSize, testBlockSize},
		{cawCDB(0, 1), 4 * testBlockSize, 2 * testBlockSize},
	} {
		r := e.tgt.Execute(t.Context(), &Command{Nexus: e.n, CDB: c.cdb, Tag: 99, Attr: TaskSimple,
			ExpectedLength: c.announced, Write: true, DataOut: make([]byte, c.sent)})
		if k, code := senseCode(t, r); k != senseIllegalRequest || code != ascInvalidFieldInIU {
			t.Errorf("op %#02x: %#x/%04x, want INVALID FIELD IN INFORMATION UNIT", c.cdb[0], k, code)
		}
	}
}
