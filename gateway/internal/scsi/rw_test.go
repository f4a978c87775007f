package scsi

import (
	"bytes"
	"testing"

	"github.com/rbdgw/rbdgw/rbdbackend"
)

// mediaCase is one media command and its expected outcome.
type mediaCase struct {
	name string
	cdb  []byte
	data []byte
	key  byte // 0: GOOD
	code asc
	// field, when >= 0, is the expected sense-key specific field pointer.
	field int
}

func runMediaCases(t *testing.T, e *env, cases []mediaCase) {
	t.Helper()
	for _, c := range cases {
		r := e.exec(c.cdb, c.data)
		if c.key == 0 {
			if r.Status != StatusGood {
				k, code := senseCode(t, r)
				t.Errorf("%s: status %#x sense %#x/%04x, want GOOD", c.name, r.Status, k, code)
			}
			continue
		}
		if r.Status != StatusCheckCondition {
			t.Errorf("%s: status %#x, want CHECK CONDITION", c.name, r.Status)
			continue
		}
		p := parseSense(t, r.Sense)
		if p.key != c.key || p.code != c.code {
			t.Errorf("%s: sense %#x/%04x, want %#x/%04x", c.name, p.key, p.code, c.key, c.code)
		}
		if c.field >= 0 && p.field != c.field {
			t.Errorf("%s: field pointer %d, want %d", c.name, p.field, c.field)
		}
	}
}

func TestReadWriteRanges(t *testing.T) {
	e := newEnv(t, func(c *LUConfig) { c.Limits.MaxTransferBytes = 1 << 20 })
	last := uint64(testBlocks - 1)
	blk := fill(testBlockSize, 0xa5)
	two := fill(2*testBlockSize, 0x5a)
	maxBlocks := e.lu.cfg.Limits.MaxTransferBytes / testBlockSize
	cases := []mediaCase{
		{"READ(10) last block", cdb10(opRead10, uint32(last), 1), nil, 0, 0, -1},
		{"READ(10) zero blocks", cdb10(opRead10, 0, 0), nil, 0, 0, -1},
		{"READ(10) zero blocks at capacity", cdb10(opRead10, testBlocks, 0), nil, 0, 0, -1},
		{"READ(10) zero blocks beyond", cdb10(opRead10, testBlocks+1, 0), nil, senseIllegalRequest, ascLBAOutOfRange, -1},
		{"READ(10) across end", cdb10(opRead10, uint32(last), 2), nil, senseIllegalRequest, ascLBAOutOfRange, -1},
		{"READ(10) LBA -1", cdb10(opRead10, 0xffffffff, 1), nil, senseIllegalRequest, ascLBAOutOfRange, -1},
		{"READ(12) across end", cdb12(opRead12, uint32(last), 2), nil, senseIllegalRequest, ascLBAOutOfRange, -1},
		{"READ(16) huge LBA", cdb16(opRead16, 1<<63, 1), nil, senseIllegalRequest, ascLBAOutOfRange, -1},
		{"READ(16) LBA+len overflows", cdb16(opRead16, ^uint64(0), 2), nil, senseIllegalRequest, ascLBAOutOfRange, -1},
		{"READ(6) end", cdbRead6(uint32(last), 1), nil, 0, 0, -1},
		{"READ(6) beyond", cdbRead6(0x1fffff, 1), nil, senseIllegalRequest, ascLBAOutOfRange, -1},
		{"READ(10) RDPROTECT", append([]byte{opRead10, 0x20}, make([]byte, 8)...), nil, senseIllegalRequest, ascInvalidFieldInCDB, 1},
		{"READ(16) over MAXIMUM TRANSFER LENGTH", cdb16(opRead16, 0, maxBlocks+1), nil, senseIllegalRequest, ascInvalidFieldInCDB, 10},
		{"READ(16) at MAXIMUM TRANSFER LENGTH", cdb16(opRead16, 0, maxBlocks), nil, 0, 0, -1},
		{"WRITE(10)", cdb10(opWrite10, 1, 1), blk, 0, 0, -1},
		{"WRITE(10) FUA DPO FUA_NV", append([]byte{opWrite10, 0x1a, 0, 0, 0, 1, 0, 0, 1}, 0), blk, 0, 0, -1},
		{"WRITE(10) group number", append([]byte{opWrite10, 0, 0, 0, 0, 1, 0x1f, 0, 1}, 0), blk, 0, 0, -1},
		{"WRITE(10) across end", cdb10(opWrite10, uint32(last), 2), two, senseIllegalRequest, ascLBAOutOfRange, -1},
		{"WRITE(10) long Data-Out", cdb10(opWrite10, 0, 1), two, 0, 0, -1},
		{"WRITE(10) zero blocks", cdb10(opWrite10, 0, 0), nil, 0, 0, -1},
		{"WRITE(16) WRPROTECT", append([]byte{opWrite16, 0x40}, make([]byte, 14)...), nil, senseIllegalRequest, ascInvalidFieldInCDB, 1},
		{"WRITE AND VERIFY(10) BYTCHK", append([]byte{opWriteVerify10, 0x12, 0, 0, 0, 2, 0, 0, 1}, 0), blk, 0, 0, -1},
		{"WRITE AND VERIFY(16) beyond", cdb16(opWriteVerify16, testBlocks, 1), blk, senseIllegalRequest, ascLBAOutOfRange, -1},
		{"VERIFY(10) BYTCHK=0", cdb10(opVerify10, 0, 16), nil, 0, 0, -1},
		{"VERIFY(10) BYTCHK=10b", append([]byte{opVerify10, 0x04}, make([]byte, 8)...), nil, senseIllegalRequest, ascInvalidFieldInCDB, 1},
		{"VERIFY(12) VRPROTECT", append([]byte{opVerify12, 0x20}, make([]byte, 10)...), nil, senseIllegalRequest, ascInvalidFieldInCDB, 1},
		{"VERIFY(16) beyond", cdb16(opVerify16, testBlocks+1, 0), nil, senseIllegalRequest, ascLBAOutOfRange, -1},
	}
	runMediaCases(t, e, cases)
}

func TestReadWriteData(t *testing.T) {
	e := newEnv(t)
	data := make([]byte, 4*testBlockSize)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, w := range [][]byte{cdb10(opWrite10, 10, 4), cdb12(opWrite12, 10, 4), cdb16(opWrite16, 10, 4)} {
		e.good(w, data)
		for _, r := range [][]byte{cdb10(opRead10, 10, 4), cdb12(opRead12, 10, 4), cdb16(opRead16, 10, 4)} {
			if got := e.good(r, nil); !bytes.Equal(got, data) {
				t.Fatalf("read back after % x differs", w[:2])
			}
		}
		data[0]++
	}
	// WRITE(6) and READ(6); a READ(6) of 0 blocks reads 256.
	e.good([]byte{opWrite6, 0, 0, 3, 1, 0}, data[:testBlockSize])
	if got := e.good(cdbRead6(3, 1), nil); !bytes.Equal(got, data[:testBlockSize]) {
		t.Error("READ(6) data")
	}
	if got := e.good(cdbRead6(0, 0), nil); len(got) != 256*testBlockSize {
		t.Errorf("READ(6) transfer length 0 returned %d bytes", len(got))
	}
	// Excess Data-Out is ignored: only the blocks of the CDB are written.
	e.good(cdb10(opWrite10, 20, 1), fill(2*testBlockSize, 0x11))
	if got := e.good(cdb10(opRead10, 21, 1), nil); !bytes.Equal(got, make([]byte, testBlockSize)) {
		t.Error("excess Data-Out was written")
	}
	// Short Data-Out: the whole blocks sent are written, nothing else.
	e.good(cdb10(opWrite10, 30, 2), fill(2*testBlockSize, 'a'))
	e.good(cdb10(opWrite10, 30, 2), fill(testBlockSize, 'b'))
	if got := e.good(cdb10(opRead10, 30, 2), nil); !bytes.Equal(got, append(fill(testBlockSize, 'b'), fill(testBlockSize, 'a')...)) {
		t.Error("short Data-Out: wrong blocks written")
	}
	e.good(cdb10(opWriteVerify10, 30, 1), nil)
	// Part of a block: the bytes sent replace the start of the block, the
	// rest stays.
	e.good(cdb10(opWrite10, 30, 2), fill(testBlockSize+200, 'c'))
	want := append(fill(testBlockSize+200, 'c'), fill(testBlockSize-200, 'a')...)
	if got := e.good(cdb10(opRead10, 30, 2), nil); !bytes.Equal(got, want) {
		t.Error("part of a block was not merged")
	}
}

func TestVerifyCompare(t *testing.T) {
	e := newEnv(t)
	data := fill(3*testBlockSize, 0x33)
	e.good(cdb10(opWrite10, 100, 3), data)
	bytchk := func(op byte, v byte, lba uint32, n uint16) []byte {
		c := cdb10(op, lba, n)
		c[1] = v << 1
		return c
	}
	e.good(bytchk(opVerify10, 1, 100, 3), data)
	bad := bytes.Clone(data)
	bad[testBlockSize+17] ^= 0xff
	r := e.expectSense(bytchk(opVerify10, 1, 100, 3), bad, senseMiscompare, ascMiscompareDuringVerify)
	if p := parseSense(t, r.Sense); !p.hasInfo || p.info != testBlockSize+17 {
		t.Errorf("miscompare INFORMATION %d (valid %v), want %d", p.info, p.hasInfo, testBlockSize+17)
	}
	// BYTCHK=11b: one block compared with every block.
	e.good(bytchk(opVerify10, 3, 100, 3), data[:testBlockSize])
	e.expectSense(bytchk(opVerify10, 3, 100, 3), bad[testBlockSize:2*testBlockSize], senseMiscompare, ascMiscompareDuringVerify)
	// BYTCHK=0 ignores the data.
	e.good(bytchk(opVerify10, 0, 100, 3), nil)
	// Missing Data-Out with BYTCHK=1.
	e.expectSense(bytchk(opVerify10, 1, 100, 3), data[:10], senseIllegalRequest, ascInvalidFieldInIU)
}

func TestWriteProtection(t *testing.T) {
	e := newEnv(t, func(c *LUConfig) { c.ReadOnly = true })
	blk := fill(testBlockSize, 1)
	for _, c := range []struct {
		name string
		cdb  []byte
		data []byte
	}{
		{"WRITE(10)", cdb10(opWrite10, 0, 1), blk},
		{"WRITE(16)", cdb16(opWrite16, 0, 1), blk},
		{"WRITE AND VERIFY(12)", cdb12(opWriteVerify12, 0, 1), blk},
		{"WRITE SAME(10) UNMAP without data", []byte{opWriteSame10, 0x08, 0, 0, 0, 0, 0, 0, 1, 0}, nil},
		{"WRITE SAME(16)", cdb16(opWriteSame16, 0, 1), blk},
		{"UNMAP", cdbUnmap(24), unmapList([2]uint64{0, 1})},
		{"COMPARE AND WRITE", cawCDB(0, 1), fill(2*testBlockSize, 0)},
		{"ORWRITE", cdb16(opOrWrite16, 0, 1), blk},
	} {
		r := e.exec(c.cdb, c.data)
		if k, code := senseCode(t, r); k != senseDataProtect || code != ascWriteProtected {
			t.Errorf("%s: %#x/%04x, want DATA PROTECT", c.name, k, code)
		}
	}
	e.good(cdb10(opRead10, 0, 1), nil)
	ms := e.good(cdbModeSense6(true, pcCurrent, pageAll, 0, 255), nil)
	if ms[2]&0x80 == 0 {
		t.Error("MODE SENSE device-specific parameter: WP not set")
	}
}

func TestOrWrite(t *testing.T) {
	for _, img := range []rbdbackend.Image{memImage(testBlocks), plainImage{memImage(testBlocks)}} {
		e := newEnvWithImage(t, img)
		e.good(cdb16(opWrite16, 5, 2), fill(2*testBlockSize, 0x0f))
		e.good(cdb16(opOrWrite16, 5, 2), fill(2*testBlockSize, 0xa0))
		if got := e.good(cdb16(opRead16, 5, 2), nil); !bytes.Equal(got, fill(2*testBlockSize, 0xaf)) {
			t.Errorf("%T: ORWRITE result % x", img, got[:4])
		}
		e.good(cdb16(opOrWrite16, 0, 0), nil)
		e.expectSense(cdb16(opOrWrite16, testBlocks, 1), fill(testBlockSize, 0), senseIllegalRequest, ascLBAOutOfRange)
	}
}

// With the write cache disabled every write is flushed; with it enabled
// only FUA writes are.
func TestWriteCacheAndFUA(t *testing.T) {
	fi := rbdbackend.NewFaultImage(memImage(testBlocks))
	e := newEnvWithImage(t, fi)
	blk := fill(testBlockSize, 1)
	e.good(cdb10(opWrite10, 0, 1), blk)
	if n := fi.Calls(rbdbackend.OpFlush); n != 0 {
		t.Fatalf("write with WCE=1 flushed %d times", n)
	}
	fua := cdb10(opWrite10, 0, 1)
	fua[1] = 0x08
	e.good(fua, blk)
	if n := fi.Calls(rbdbackend.OpFlush); n != 1 {
		t.Fatalf("FUA write: %d flushes", n)
	}
	e.good(cdb10(opSyncCache10, 0, 0), nil)
	if n := fi.Calls(rbdbackend.OpFlush); n != 2 {
		t.Fatalf("SYNCHRONIZE CACHE: %d flushes", n)
	}
	setCachingWCE(t, e, false)
	e.good(cdb10(opWrite10, 0, 1), blk)
	if n := fi.Calls(rbdbackend.OpFlush); n != 3 {
		t.Fatalf("write with WCE=0: %d flushes", n)
	}
}

func setCachingWCE(t *testing.T, e *env, on bool) {
	t.Helper()
	page := e.good(cdbModeSense6(true, pcCurrent, pageCaching, 0, 255), nil)[4:]
	page = bytes.Clone(page)
	if on {
		page[2] |= 0x04
	} else {
		page[2] &^= 0x04
	}
	param := append(make([]byte, 4), page...)
	e.good([]byte{opModeSelect6, 0x10, 0, 0, byte(len(param)), 0}, param)
}

func TestBackendErrorsBecomeSense(t *testing.T) {
	fi := rbdbackend.NewFaultImage(memImage(testBlocks))
	e := newEnvWithImage(t, fi)
	for _, c := range []struct {
		op   rbdbackend.FaultOp
		err  error
		cdb  []byte
		data []byte
		key  byte
		code asc
	}{
		{rbdbackend.OpRead, rbdbackend.ErrTimeout, cdb10(opRead10, 0, 1), nil, senseNotReady, ascNotReadyBecomingReady},
		{rbdbackend.OpRead, rbdbackend.ErrLockLost, cdb10(opRead10, 0, 1), nil, senseNotReady, ascNotReadyTransition},
		{rbdbackend.OpRead, errFake, cdb10(opRead10, 0, 1), nil, senseMediumError, ascUnrecoveredReadError},
		{rbdbackend.OpWrite, errFake, cdb10(opWrite10, 0, 1), fill(testBlockSize, 0), senseMediumError, ascWriteError},
		{rbdbackend.OpWrite, rbdbackend.ErrReadOnly, cdb10(opWrite10, 0, 1), fill(testBlockSize, 0), senseDataProtect, ascWriteProtected},
		{rbdbackend.OpFlush, rbdbackend.ErrTimeout, cdb10(opSyncCache10, 0, 0), nil, senseNotReady, ascNotReadyBecomingReady},
		{rbdbackend.OpDiscard, errFake, cdbUnmap(24), unmapList([2]uint64{0, 8}), senseMediumError, ascWriteError},
	} {
		fi.Inject(rbdbackend.Fault{Op: c.op, Err: c.err, Count: 1})
		r := e.exec(c.cdb, c.data)
		if k, code := senseCode(t, r); k != c.key || code != c.code {
			t.Errorf("%v %v: %#x/%04x, want %#x/%04x", c.op, c.err, k, code, c.key, c.code)
		}
		fi.ClearFaults()
	}
}

type fakeError struct{}

func (fakeError) Error() string { return "injected" }

var errFake = fakeError{}
