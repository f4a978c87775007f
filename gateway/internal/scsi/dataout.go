package scsi

// DataOutLength reports how many bytes of Data-Out cdb asks for, so that the
// transport can compare it with the expected data transfer length. It is
// false when the command is not supported, or when the amount depends on the
// block size and the target's logical units differ in it (DataOutLengthLUN
// answers for one LUN).
func (t *Target) DataOutLength(cdb []byte) (int, bool) {
	var bs uint32
	for _, lu := range *t.lus.Load() {
		if bs != 0 && bs != lu.cfg.BlockSize {
			bs = 0
			break
		}
		bs = lu.cfg.BlockSize
	}
	return dataOutLength(cdb, bs)
}

// DataOutLengthLUN is DataOutLength for a command of the I_T nexus n
// addressed to lun (unknown block size when n does not see lun).
func (t *Target) DataOutLengthLUN(n *Nexus, lun uint64, cdb []byte) (int, bool) {
	var bs uint32
	if lu := t.luFor(n, lun); lu != nil {
		bs = lu.cfg.BlockSize
	}
	return dataOutLength(cdb, bs)
}

// dataOutLength computes the Data-Out length of cdb for block size bs (0:
// unknown).
func dataOutLength(cdb []byte, bs uint32) (int, bool) {
	if len(cdb) == 0 {
		return 0, false
	}
	e, _ := lookupOp(cdb)
	if e == nil || len(cdb) < e.cdbLen {
		return 0, false
	}
	if e.dir != dirOut {
		return 0, true
	}
	blocks := func(n uint64) (int, bool) {
		if bs == 0 {
			return 0, false
		}
		return int(min(n*uint64(bs), 1<<40)), true
	}
	switch cdb[0] {
	case opModeSelect6:
		return int(cdb[4]), true
	case opModeSelect10, opUnmap:
		return int(be16(cdb[7:9])), true
	case opPersistentOut:
		return int(be32(cdb[5:9])), true
	case opThirdPartyCopyOut:
		return int(be32(cdb[10:14])), true
	case opVerify10, opVerify12, opVerify16:
		switch cdb[1] >> 1 & 0x03 {
		case 0:
			return 0, true
		case 3:
			return blocks(1)
		}
		return blocks(rangeOf(cdb).blocks)
	case opWriteSame10, opWriteSame16:
		if cdb[0] == opWriteSame16 && cdb[1]&0x01 != 0 { // NDOB
			return 0, true
		}
		return blocks(1)
	case opCompareAndWrite:
		return blocks(2 * rangeOf(cdb).blocks)
	}
	return blocks(rangeOf(cdb).blocks)
}
