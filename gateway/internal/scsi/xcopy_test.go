package scsi

import (
	"bytes"
	"testing"
)

// identTarget builds an identification target descriptor for lu.
func identTarget(lu *LU) []byte {
	d := make([]byte, 32)
	d[0] = descTypeIdentification
	d[4], d[5], d[7] = codeSetBinary, desigNAA, 16
	copy(d[8:24], lu.naa[:])
	put24(d[29:32], lu.cfg.BlockSize)
	return d
}

func b2bSegment(src, dst uint16, blocks uint16, srcLBA, dstLBA uint64) []byte {
	d := make([]byte, 28)
	d[0] = descTypeBlockToBlock
	put16(d[2:4], 0x18)
	put16(d[4:6], src)
	put16(d[6:8], dst)
	put16(d[10:12], blocks)
	put64(d[12:20], srcLBA)
	put64(d[20:28], dstLBA)
	return d
}

// xcopyParam builds an EXTENDED COPY(LID1) parameter list.
func xcopyParam(listID, usage byte, targets [][]byte, segments [][]byte) []byte {
	var tl, sl []byte
	for _, t := range targets {
		tl = append(tl, t...)
	}
	for _, s := range segments {
		sl = append(sl, s...)
	}
	p := make([]byte, 16)
	p[0], p[1] = listID, usage<<3
	put16(p[2:4], uint16(len(tl)))
	put32(p[8:12], uint32(len(sl)))
	return append(append(p, tl...), sl...)
}

func xcopyCDB(n int) []byte {
	c := make([]byte, 16)
	c[0] = opThirdPartyCopyOut
	put32(c[10:14], uint32(n))
	return c
}

func rcrCDB(sa, listID byte, alloc uint32) []byte {
	c := make([]byte, 16)
	c[0], c[1], c[2] = opThirdPartyCopyIn, sa, listID
	put32(c[10:14], alloc)
	return c
}

func TestExtendedCopy(t *testing.T) {
	e := newEnv(t)
	src := fill(64*testBlockSize, 'A')
	src[5] = 'x'
	e.good(cdb16(opWrite16, 0, 64), src)
	p := xcopyParam(1, listIDHold, [][]byte{identTarget(e.lu)}, [][]byte{b2bSegment(0, 0, 64, 0, testBlocks-64)})
	e.good(xcopyCDB(len(p)), p)
	if got := e.good(cdb16(opRead16, testBlocks-64, 64), nil); !bytes.Equal(got, src) {
		t.Fatal("blocks were not copied")
	}
	st := e.good(rcrCDB(byte(saCopyStatusLID1), 1, 1024), nil)
	if be32(st[0:4]) != 8 || st[4] != 0 || be16(st[5:7]) != 1 || st[7] != 0 || be32(st[8:12]) != 64*testBlockSize {
		t.Errorf("copy status % x", st)
	}
	fd := e.good(rcrCDB(byte(saCopyFailedSegments), 1, 1024), nil)
	if be32(fd[0:4]) != 56 || fd[56] != 0 || be16(fd[58:60]) != 0 {
		t.Errorf("failure details of a good copy % x", fd)
	}
	e.expectSense(rcrCDB(byte(saCopyStatusLID1), 2, 1024), nil, senseIllegalRequest, ascInvalidFieldInCDB)

	// Between two logical units of the target.
	other := newLUForTest(t, "disk2", "00000000000000cc")
	e.tgt.SetLU(1, other)
	e.good(cdbReportLUNs(0, 64), nil) // clears REPORTED LUNS DATA HAS CHANGED
	p = xcopyParam(0, listIDNotUnique, [][]byte{identTarget(e.lu), identTarget(other)}, [][]byte{b2bSegment(0, 1, 64, 0, 100)})
	e.good(xcopyCDB(len(p)), p)
	got := make([]byte, 64*testBlockSize)
	if _, err := other.Image().ReadAt(got, 100*testBlockSize); err != nil || !bytes.Equal(got, src) {
		t.Errorf("copy to another logical unit: %v", err)
	}
	e.good(xcopyCDB(0), nil)

	// Overlapping ranges of one logical unit copy like memmove.
	big := make([]byte, 4096*testBlockSize)
	for i := range big {
		big[i] = byte(i / testBlockSize)
	}
	e.good(cdb16(opWrite16, 0, 4096), big)
	p = xcopyParam(0, listIDNotUnique, [][]byte{identTarget(e.lu)}, [][]byte{b2bSegment(0, 0, 4000, 0, 96)})
	e.good(xcopyCDB(len(p)), p)
	if got := e.good(cdb16(opRead16, 96, 4000), nil); !bytes.Equal(got, big[:4000*testBlockSize]) {
		t.Error("overlapping copy corrupted the data")
	}
}

func TestExtendedCopyErrors(t *testing.T) {
	e := newEnv(t)
	tgt := identTarget(e.lu)
	seg := b2bSegment(0, 0, 8, 0, 100)
	unknown := bytes.Clone(tgt)
	unknown[8+15] ^= 0xff
	streamSeg := make([]byte, 20)
	streamSeg[0] = 0x03
	put16(streamSeg[2:4], 0x10)
	fcTarget := bytes.Clone(tgt)
	fcTarget[0] = 0xe0
	many := func(d []byte, n int) [][]byte {
		out := make([][]byte, n)
		for i := range out {
			out[i] = d
		}
		return out
	}
	good := xcopyParam(1, 0, [][]byte{tgt}, [][]byte{seg})
	for _, c := range []struct {
		name  string
		param []byte
		plen  int
		key   byte
		code  asc
	}{
		{"too many target descriptors", xcopyParam(1, 0, many(tgt, xcopyMaxTargetDescs+1), [][]byte{seg}), -1, senseIllegalRequest, ascTooManyTargetDescriptors},
		{"too many segment descriptors", xcopyParam(1, 0, [][]byte{tgt}, many(seg, xcopyMaxSegmentDescs+1)), -1, senseIllegalRequest, ascTooManySegmentDescriptors},
		{"descriptor lists too long", xcopyParam(1, 0, many(tgt, 3), many(seg, 34)), -1, senseIllegalRequest, ascParameterListLength},
		{"unsupported target type", xcopyParam(1, 0, [][]byte{fcTarget}, [][]byte{seg}), -1, senseIllegalRequest, ascUnsupportedTargetDescType},
		{"unsupported segment type", xcopyParam(1, 0, [][]byte{tgt}, [][]byte{streamSeg}), -1, senseIllegalRequest, ascUnsupportedSegmentDescType},
		{"truncated target list", good[:16+31], -1, senseIllegalRequest, ascParameterListLength},
		{"truncated segment list", good[:len(good)-1], -1, senseIllegalRequest, ascParameterListLength},
		{"short header", good[:10], -1, senseIllegalRequest, ascParameterListLength},
		{"Data-Out shorter than the CDB", good[:20], len(good), senseIllegalRequest, ascInvalidFieldInIU},
		{"destination index out of range", xcopyParam(1, 0, [][]byte{tgt}, [][]byte{b2bSegment(0, 1, 8, 0, 100)}), -1, senseCopyAborted, ascCopyTargetUnreachable},
		{"unknown logical unit", xcopyParam(1, 0, [][]byte{unknown}, [][]byte{seg}), -1, senseCopyAborted, ascCopyTargetNotReachable},
		{"destination beyond end", xcopyParam(1, 0, [][]byte{tgt}, [][]byte{b2bSegment(0, 0, 8, 0, testBlocks-1)}), -1, senseCopyAborted, ascCopyTargetNotReachable},
		{"source beyond end", xcopyParam(1, 0, [][]byte{tgt}, [][]byte{b2bSegment(0, 0, 8, testBlocks-1, 0)}), -1, senseCopyAborted, ascCopyTargetDataUnderrun},
		{"reserved LIST ID USAGE", xcopyParam(1, listIDReserved, [][]byte{tgt}, [][]byte{seg}), -1, senseIllegalRequest, ascInvalidFieldInParam},
	} {
		plen := c.plen
		if plen < 0 {
			plen = len(c.param)
		}
		r := e.exec(xcopyCDB(plen), c.param)
		if k, code := senseCode(t, r); k != c.key || code != c.code {
			t.Errorf("%s: %#x/%04x, want %#x/%04x", c.name, k, code, c.key, c.code)
		}
	}
	// A failed copy with a held list identifier reports its sense data.
	bad := xcopyParam(9, listIDHold, [][]byte{tgt}, [][]byte{b2bSegment(0, 0, 8, 0, testBlocks-1)})
	e.exec(xcopyCDB(len(bad)), bad)
	st := e.good(rcrCDB(byte(saCopyStatusLID1), 9, 1024), nil)
	if st[4] != 0x01 {
		t.Errorf("status of a failed copy % x", st)
	}
	fd := e.good(rcrCDB(byte(saCopyFailedSegments), 9, 1024), nil)
	if fd[56] != byte(StatusCheckCondition) || int(be16(fd[58:60])) != len(fd)-60 {
		t.Fatalf("failure details % x", fd)
	}
	if p := parseSense(t, fd[60:]); p.key != senseCopyAborted || p.code != ascCopyTargetNotReachable {
		t.Errorf("failure sense %+v", p)
	}
}

func TestCopyOperatingParametersAndVPD(t *testing.T) {
	e := newEnv(t)
	op := e.good(rcrCDB(byte(saCopyOpParams), 0, 1024), nil)
	if int(be32(op[0:4]))+4 != len(op) || be16(op[8:10]) != xcopyMaxTargetDescs || be16(op[10:12]) != xcopyMaxSegmentDescs ||
		be32(op[12:16]) != xcopyMaxDescListLen || op[43] != 2 || !bytes.Equal(op[44:46], []byte{0x02, 0xe4}) {
		t.Errorf("operating parameters % x", op)
	}
	vpd := e.good(cdbInquiry(true, vpdThirdPartyCopy, 1024), nil)
	found := map[uint16][]byte{}
	for d := vpd[4:]; len(d) >= 4; {
		n := int(be16(d[2:4]))
		if n%4 != 0 || 4+n > len(d) {
			t.Fatalf("descriptor % x", d)
		}
		found[be16(d[0:2])] = d[4 : 4+n]
		d = d[4+n:]
	}
	cmds := found[tpcSupportedCommands]
	if cmds == nil || !bytes.Contains(cmds[1:1+cmds[0]], []byte{opThirdPartyCopyIn, 3, 0x00, 0x03, 0x04}) {
		t.Errorf("supported commands % x", cmds)
	}
	if found[tpcParameterData] == nil || found[tpcSupportedDescriptors] == nil {
		t.Errorf("descriptors %v", found)
	}
}
