package scsi

// READ, WRITE, WRITE AND VERIFY, VERIFY and ORWRITE (SBC-3 5.8-5.40).

// hasProtectField reports whether byte 1 bits 7:5 of the CDB are a
// RDPROTECT/WRPROTECT/VRPROTECT/ORPROTECT field (all but the 6-byte CDBs).
func hasProtectField(op byte) bool { return op != opRead6 && op != opWrite6 }

// mediaRange validates the common fields of a media command and returns its
// range: no protection information (the logical unit is not formatted with
// it), at most MAXIMUM TRANSFER LENGTH blocks when limit is set, and within
// the capacity.
func (t *task) mediaRange(limit bool) (blockRange, error) {
	if hasProtectField(t.cdb[0]) && t.cdb[1]&0xe0 != 0 {
		return blockRange{}, invalidCDB(1, 7)
	}
	r := rangeOf(t.cdb)
	bs := uint64(t.lu.cfg.BlockSize)
	if limit && r.blocks > uint64(t.lu.cfg.Limits.MaxTransferBytes)/bs {
		return r, invalidCDB(r.lenField, -1)
	}
	if err := r.check(t.lu.Blocks()); err != nil {
		return r, err
	}
	return r, nil
}

// fua reports the FUA bit of a 10/12/16-byte READ or WRITE.
func (t *task) fua() bool { return hasProtectField(t.cdb[0]) && t.cdb[1]&0x08 != 0 }

// cmdRead is READ(6/10/12/16). The blocks go into the transport's
// Data-In buffer when it lent one that is large enough.
func cmdRead(t *task) ([]byte, error) {
	r, err := t.mediaRange(true)
	if err != nil || r.blocks == 0 {
		return nil, err
	}
	bs := uint64(t.lu.cfg.BlockSize)
	buf := t.dataInBuffer(r.blocks * bs)
	if err := t.readAt(buf, int64(r.lba*bs)); err != nil {
		return nil, err
	}
	return buf, nil
}

// dataInBuffer returns n bytes for Data-In: Command.DataIn when its
// capacity holds them, a new buffer otherwise.
func (t *task) dataInBuffer(n uint64) []byte {
	if d := t.cmd.DataIn; uint64(cap(d)) >= n {
		return d[:n]
	}
	return make([]byte, n)
}

// isWriteAndVerify reports WRITE AND VERIFY(10/12/16).
func isWriteAndVerify(op byte) bool {
	return op == opWriteVerify10 || op == opWriteVerify12 || op == opWriteVerify16
}

// cmdWrite is WRITE(6/10/12/16) and WRITE AND VERIFY(10/12/16). WRITE AND
// VERIFY writes through to the medium and, with BYTCHK, reads the data back
// and compares it.
func cmdWrite(t *task) ([]byte, error) {
	r, err := t.mediaRange(true)
	if err != nil {
		return nil, err
	}
	if err := t.lu.writeProtected(); err != nil {
		return nil, err
	}
	if t.partialBlock() {
		// A partial block is read, merged and written back: keep other
		// read-modify-write commands out meanwhile.
		t.lu.rmwMu.Lock()
		defer t.lu.rmwMu.Unlock()
	}
	data, err := t.writeData(r)
	if err != nil || len(data) == 0 {
		return nil, err
	}
	bs := uint64(t.lu.cfg.BlockSize)
	r.blocks = uint64(len(data)) / bs
	off := int64(r.lba * bs)
	if err := t.writeAt(data, off); err != nil {
		return nil, err
	}
	if !isWriteAndVerify(t.cdb[0]) {
		return nil, t.afterWrite(t.fua())
	}
	if err := t.lu.flush(); err != nil {
		return nil, err
	}
	if t.cdb[1]&0x02 == 0 { // BYTCHK=0: medium verification only
		_, err := t.readBlocks(r.lba, r.blocks)
		return nil, err
	}
	back, err := t.readBlocks(r.lba, r.blocks)
	if err != nil {
		return nil, err
	}
	if i := firstDifference(data, back); i >= 0 {
		return nil, miscompareAt(uint64(i))
	}
	return nil, nil
}

// partialBlock reports Data-Out that ends within a block (see writeData).
func (t *task) partialBlock() bool {
	return uint64(len(t.cmd.DataOut))%uint64(t.lu.cfg.BlockSize) != 0
}

// writeData returns the blocks a WRITE or WRITE AND VERIFY writes. When the
// initiator sent less than the CDB asks for (expected data transfer length
// below the transfer length), only what it sent is written: FCP-4's
// "process the command normally except that data beyond the expected length
// is not transferred", which the transport reports as residual overflow. A
// trailing partial block is merged with the block's current contents, so
// that the bytes not sent stay as they were.
func (t *task) writeData(r blockRange) ([]byte, error) {
	bs := uint64(t.lu.cfg.BlockSize)
	want := r.blocks * bs
	got := uint64(len(t.cmd.DataOut))
	if got >= want {
		return t.cmd.DataOut[:want], nil
	}
	whole := got / bs * bs
	if whole == got {
		return t.cmd.DataOut[:got], nil
	}
	data := make([]byte, whole+bs)
	lastLBA := r.lba + whole/bs
	if err := t.readAt(data[whole:], int64(lastLBA*bs)); err != nil {
		return nil, err
	}
	copy(data, t.cmd.DataOut)
	return data, nil
}

// cmdVerify is VERIFY(10/12/16): BYTCHK 00b reads the blocks, 01b compares
// them with the Data-Out buffer, 11b compares each block with the single
// block sent.
func cmdVerify(t *task) ([]byte, error) {
	bytchk := t.cdb[1] >> 1 & 0x03
	if bytchk == 2 {
		return nil, invalidCDB(1, 2)
	}
	r, err := t.mediaRange(true)
	if err != nil || r.blocks == 0 {
		return nil, err
	}
	bs := uint64(t.lu.cfg.BlockSize)
	var want []byte
	switch bytchk {
	case 1:
		if want, err = t.dataOut(r.blocks * bs); err != nil {
			return nil, err
		}
	case 3:
		if want, err = t.dataOut(bs); err != nil {
			return nil, err
		}
	}
	have, err := t.readBlocks(r.lba, r.blocks)
	if err != nil || bytchk == 0 {
		return nil, err
	}
	for off := uint64(0); off < uint64(len(have)); off += bs {
		expect := want
		if bytchk == 1 {
			expect = want[off : off+bs]
		}
		if i := firstDifference(expect, have[off:off+bs]); i >= 0 {
			return nil, miscompareAt(off + uint64(i))
		}
	}
	return nil, nil
}

// maxOrWriteRetries bounds the compare-and-write loop of ORWRITE when other
// writers keep changing the blocks.
const maxOrWriteRetries = 8

// cmdOrWrite is ORWRITE(16) (SBC-3 5.9): the blocks become the bitwise OR of
// their current contents and the Data-Out buffer, atomically with respect
// to other read-modify-write commands.
func cmdOrWrite(t *task) ([]byte, error) {
	r, err := t.mediaRange(true)
	if err != nil {
		return nil, err
	}
	if err := t.lu.writeProtected(); err != nil {
		return nil, err
	}
	if r.blocks == 0 {
		return nil, nil
	}
	bs := uint64(t.lu.cfg.BlockSize)
	mask, err := t.dataOut(r.blocks * bs)
	if err != nil {
		return nil, err
	}
	off := int64(r.lba * bs)
	useBackend := r.blocks <= uint64(t.lu.cfg.Limits.MaxCompareAndWriteBlocks)
	for attempt := 0; ; attempt++ {
		old, err := t.readBlocks(r.lba, r.blocks)
		if err != nil {
			return nil, err
		}
		next := make([]byte, len(old))
		for i := range old {
			next[i] = old[i] | mask[i]
		}
		mismatch, err := t.compareAndWrite(off, old, next, useBackend)
		if err != nil {
			return nil, err
		}
		if mismatch < 0 {
			break
		}
		if attempt == maxOrWriteRetries {
			// Another writer keeps changing the blocks; let the
			// initiator retry the command.
			return nil, newSense(senseAbortedCommand, ascNone)
		}
	}
	return nil, t.afterWrite(t.fua())
}
