package scsi

import "bytes"

// Commands that write a pattern or deallocate blocks: COMPARE AND WRITE,
// WRITE SAME(10/16), UNMAP.

// cmdCompareAndWrite is COMPARE AND WRITE (SBC-3 5.2): the Data-Out buffer
// holds the verify data followed by the write data; the write happens only
// if the medium matches, atomically.
func cmdCompareAndWrite(t *task) ([]byte, error) {
	if t.cdb[13] > t.lu.cfg.Limits.MaxCompareAndWriteBlocks {
		return nil, invalidCDB(13, -1)
	}
	r, err := t.mediaRange(false)
	if err != nil {
		return nil, err
	}
	if err := t.lu.writeProtected(); err != nil {
		return nil, err
	}
	if r.blocks == 0 {
		if t.cmd.ExpectedLength != 0 || len(t.cmd.DataOut) != 0 {
			// Data for a command that transfers none: the NUMBER OF
			// LOGICAL BLOCKS field disagrees with the transfer.
			return nil, invalidCDB(13, -1)
		}
		return nil, nil
	}
	half := r.blocks * uint64(t.lu.cfg.BlockSize)
	data, err := t.exactDataOut(2 * half)
	if err != nil {
		return nil, err
	}
	mismatch, err := t.compareAndWrite(int64(r.lba*uint64(t.lu.cfg.BlockSize)), data[:half], data[half:], true)
	if err != nil {
		return nil, err
	}
	if mismatch >= 0 {
		return nil, miscompareAt(uint64(mismatch))
	}
	return nil, t.afterWrite(t.fua())
}

// cmdWriteSame is WRITE SAME(10) and WRITE SAME(16) (SBC-3 5.41, 5.42).
// With UNMAP set the blocks are deallocated (they read back as zeroes,
// LBPRZ); a NUMBER OF LOGICAL BLOCKS of zero means "up to the last LBA"
// (WSNZ=0).
func cmdWriteSame(t *task) ([]byte, error) {
	cdb := t.cdb
	if cdb[1]&0xe0 != 0 {
		return nil, invalidCDB(1, 7)
	}
	if cdb[1]&0x10 != 0 { // ANCHOR: anchored blocks are not supported (ANC_SUP=0)
		return nil, invalidCDB(1, 4)
	}
	unmap := cdb[1]&0x08 != 0
	if unmap && t.lu.discarder == nil {
		return nil, invalidCDB(1, 3)
	}
	ndob := cdb[0] == opWriteSame16 && cdb[1]&0x01 != 0
	r := rangeOf(cdb)
	capacity := t.lu.Blocks()
	if r.lba > capacity {
		return nil, errLBAOutOfRange()
	}
	if r.blocks == 0 {
		r.blocks = capacity - r.lba
	}
	if r.blocks > uint64(t.lu.cfg.Limits.MaxWriteSameBlocks) {
		return nil, invalidCDB(r.lenField, -1)
	}
	if err := r.check(capacity); err != nil {
		return nil, err
	}
	if err := t.lu.writeProtected(); err != nil {
		return nil, err
	}
	bs := uint64(t.lu.cfg.BlockSize)
	pattern := make([]byte, bs)
	if !ndob {
		data, err := t.exactDataOut(bs)
		if err != nil {
			return nil, err
		}
		copy(pattern, data)
	}
	if r.blocks == 0 {
		return nil, nil
	}
	off, length := int64(r.lba*bs), int64(r.blocks*bs)
	if unmap {
		// The blocks are deallocated whatever the pattern, as LIO and tgt
		// do and as the libiscsi conformance tests expect; initiators send
		// UNMAP with the zero pattern (Linux discard, VMware space
		// reclamation), which unmapped blocks return (LBPRZ).
		if err := t.discard(off, length); err != nil {
			return nil, err
		}
	} else if err := t.writeSame(off, length, pattern); err != nil {
		return nil, err
	}
	return nil, t.afterWrite(false)
}

// writeSameChunk bounds the buffer used to emulate WRITE SAME on images
// without a native write-same.
const writeSameChunk = 1 << 20

// writeSame writes pattern over [off, off+length).
func (t *task) writeSame(off, length int64, pattern []byte) error {
	if t.lu.writeSamer != nil {
		if err := t.ctx.Err(); err != nil {
			return err
		}
		if err := t.lu.writeSamer.WriteSame(off, length, pattern); err != nil {
			return senseFromBackend(err, ioWrite)
		}
		return nil
	}
	bs := int64(len(pattern))
	chunk := min(length, max(writeSameChunk/bs, 1)*bs)
	buf := bytes.Repeat(pattern, int(chunk/bs))
	for done := int64(0); done < length; {
		n := min(chunk, length-done)
		if err := t.writeAt(buf[:n], off+done); err != nil {
			return err
		}
		done += n
	}
	return nil
}

// discard deallocates [off, off+length).
func (t *task) discard(off, length int64) error {
	if err := t.ctx.Err(); err != nil {
		return err
	}
	if err := t.lu.discarder.Discard(off, length); err != nil {
		return senseFromBackend(err, ioWrite)
	}
	return nil
}

// unmapDescriptor is one UNMAP block descriptor.
type unmapDescriptor struct{ lba, blocks uint64 }

// cmdUnmap is UNMAP (SBC-3 5.28).
func cmdUnmap(t *task) ([]byte, error) {
	if t.cdb[1]&0x01 != 0 { // ANCHOR (ANC_SUP=0)
		return nil, invalidCDB(1, 0)
	}
	plen := uint64(be16(t.cdb[7:9]))
	if plen == 0 {
		return nil, nil
	}
	if plen < 8 {
		return nil, errParamListLength()
	}
	param, err := t.dataOut(plen)
	if err != nil {
		return nil, err
	}
	descs, err := t.unmapDescriptors(param)
	if err != nil {
		return nil, err
	}
	if err := t.lu.writeProtected(); err != nil {
		return nil, err
	}
	bs := uint64(t.lu.cfg.BlockSize)
	for _, d := range descs {
		if d.blocks == 0 {
			continue
		}
		if err := t.discard(int64(d.lba*bs), int64(d.blocks*bs)); err != nil {
			return nil, err
		}
	}
	return nil, t.afterWrite(false)
}

// unmapDescriptors validates the UNMAP parameter list (SBC-3 5.28.2).
func (t *task) unmapDescriptors(param []byte) ([]unmapDescriptor, error) {
	plen := uint64(len(param))
	if uint64(be16(param[0:2])) > plen-2 {
		return nil, errParamListLength()
	}
	descLen := uint64(be16(param[2:4]))
	if descLen > plen-8 {
		return nil, errParamListLength()
	}
	count := descLen / 16
	limits := t.lu.cfg.Limits
	if count > uint64(limits.MaxUnmapDescriptors) {
		return nil, invalidParam(2, -1)
	}
	capacity := t.lu.Blocks()
	descs := make([]unmapDescriptor, 0, count)
	for i := uint64(0); i < count; i++ {
		d := param[8+16*i : 8+16*(i+1)]
		u := unmapDescriptor{lba: be64(d[0:8]), blocks: uint64(be32(d[8:12]))}
		if u.blocks > uint64(limits.MaxUnmapBlocks) {
			return nil, invalidParam(int(8+16*i+8), -1)
		}
		if err := (blockRange{lba: u.lba, blocks: u.blocks}).check(capacity); err != nil {
			return nil, err
		}
		descs = append(descs, u)
	}
	return descs, nil
}
