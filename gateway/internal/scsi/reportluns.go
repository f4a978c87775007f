package scsi

// cmdReportLUNs is REPORT LUNS (SPC-4 6.33). SELECT REPORT 00h and 02h list
// the logical units the I_T nexus sees (this target has no well-known
// logical units, so 01h lists none). When it sees none, LUN 0 is still
// reported: SAM-5 requires a logical unit at LUN 0 or the REPORT LUNS
// well-known logical unit, and initiators scan from LUN 0 (which answers
// INQUIRY with peripheral qualifier 011b).
func cmdReportLUNs(t *task) ([]byte, error) {
	sel := t.cdb[2]
	alloc := be32(t.cdb[6:10])
	if alloc < 16 {
		return nil, invalidCDB(6, -1)
	}
	var luns []uint64
	switch sel {
	case 0x00, 0x02:
		luns = t.tgt.LUNsFor(t.nexus)
		if len(luns) == 0 {
			luns = []uint64{0}
		}
	case 0x01:
	default:
		return nil, invalidCDB(2, -1)
	}
	data := make([]byte, 8+8*len(luns))
	put32(data[0:4], uint32(8*len(luns)))
	for i, lun := range luns {
		encodeLUN(data[8+8*i:16+8*i], lun)
	}
	// REPORT LUNS answers the REPORTED LUNS DATA HAS CHANGED condition of
	// this I_T nexus on every logical unit (SPC-4 6.33).
	for _, lu := range *t.tgt.lus.Load() {
		lu.clearUA(t.nexus, ascReportedLUNsChanged)
	}
	return cut(data, alloc), nil
}

// encodeLUN writes the 8-byte LUN of a LUN number (SAM-5 4.7): peripheral
// device addressing below 256, flat space addressing below 16384, and the
// extended flat space format above.
func encodeLUN(dst []byte, lun uint64) {
	switch {
	case lun < 256:
		dst[1] = byte(lun)
	case lun < 1<<14:
		dst[0] = 0x40 | byte(lun>>8)
		dst[1] = byte(lun)
	default:
		dst[0] = 0xd2 // extended LUN, length 2: extended flat space
		put24(dst[1:4], uint32(lun))
	}
}
