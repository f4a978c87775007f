package scsi

// Transfer sizes the transport needs before it takes a buffer for a
// command (issue 11, item 5): a command's data is never buffered beyond
// what its logical unit accepts.

// MaxTransferLUN returns the MAXIMUM TRANSFER LENGTH, in bytes, of the
// logical unit the I_T nexus n addresses as lun (Block Limits VPD page),
// and false when n sees no logical unit there. No READ, WRITE, VERIFY or
// WRITE AND VERIFY of more is executed (INVALID FIELD IN CDB), so the
// transport refuses such a command before it buffers any Data-Out.
func (t *Target) MaxTransferLUN(n *Nexus, lun uint64) (uint32, bool) {
	lu := t.luFor(n, lun)
	if lu == nil {
		return 0, false
	}
	return lu.cfg.Limits.MaxTransferBytes, true
}

// ReadLengthLUN returns how many bytes of Data-In a READ(6/10/12/16) in
// cdb asks of the logical unit n addresses as lun, so the transport can
// lend a buffer of that size (Command.DataIn). It is false for any other
// command, for a LUN n does not see, and for a READ beyond the logical
// unit's maximum transfer length (which is refused without data).
func (t *Target) ReadLengthLUN(n *Nexus, lun uint64, cdb []byte) (int, bool) {
	if len(cdb) == 0 {
		return 0, false
	}
	switch cdb[0] {
	case opRead6, opRead10, opRead12, opRead16:
	default:
		return 0, false
	}
	e, _ := lookupOp(cdb)
	if e == nil || len(cdb) < e.cdbLen {
		return 0, false
	}
	lu := t.luFor(n, lun)
	if lu == nil {
		return 0, false
	}
	bytes := rangeOf(cdb).blocks * uint64(lu.cfg.BlockSize)
	if bytes > uint64(lu.cfg.Limits.MaxTransferBytes) {
		return 0, false
	}
	return int(bytes), true
}
