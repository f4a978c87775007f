package pdu

// Encoders for request PDUs: the initiator side of the codec, used by test
// initiators and round-trip tests. Data is aliased, never copied.

// Encode builds the PDU. A CDB longer than 16 bytes spills into an extended
// CDB AHS; a non-zero BidiReadLength adds a bidirectional read length AHS.
func (c *SCSICommand) Encode() *PDU {
	p := &PDU{}
	c.EncodeTo(p)
	return p
}

// EncodeTo is Encode into p, which the caller holds; p.AHS is reused.
func (c *SCSICommand) EncodeTo(p *PDU) {
	ahs := p.AHS[:0]
	initPDU(p, OpSCSICommand, flag(c.Final, 0x80)|flag(c.Read, 0x40)|
		flag(c.Write, 0x20)|c.Attr&0x07, c.Data)
	p.AHS = ahs
	b := &p.BHS
	b[0] |= flag(c.Immediate, 0x40)
	b.put64(8, c.LUN)
	b.put32(16, c.ITT)
	b.put32(20, c.EDTL)
	b.put32(24, c.CmdSN)
	b.put32(28, c.ExpStatSN)
	copy(b[32:48], c.CDB)
	if len(c.CDB) > 16 {
		p.AHS = appendExtendedCDBAHS(p.AHS, c.CDB[16:])
	}
	if c.BidiReadLength != 0 {
		p.AHS = appendBidiReadLengthAHS(p.AHS, c.BidiReadLength)
	}
	b.setTotalAHSLength(len(p.AHS))
}

// Encode builds the PDU.
func (d *DataOut) Encode() *PDU {
	p := newPDU(OpDataOut, flag(d.Final, 0x80), d.Data)
	b := &p.BHS
	b.put64(8, d.LUN)
	b.put32(16, d.ITT)
	b.put32(20, d.TTT)
	b.put32(28, d.ExpStatSN)
	b.put32(36, d.DataSN)
	b.put32(40, d.BufferOffset)
	return p
}

// Encode builds the PDU.
func (n *NOPOut) Encode() *PDU {
	p := newPDU(OpNOPOut, 0x80, n.Data)
	b := &p.BHS
	b[0] |= flag(n.Immediate, 0x40)
	b.put64(8, n.LUN)
	b.put32(16, n.ITT)
	b.put32(20, n.TTT)
	b.put32(24, n.CmdSN)
	b.put32(28, n.ExpStatSN)
	return p
}

// Encode builds the PDU.
func (t *TaskMgmtReq) Encode() *PDU {
	p := newPDU(OpTaskMgmtReq, 0x80|t.Function&0x7f, nil)
	b := &p.BHS
	b[0] |= flag(t.Immediate, 0x40)
	b.put64(8, t.LUN)
	b.put32(16, t.ITT)
	b.put32(20, t.RefTaskTag)
	b.put32(24, t.CmdSN)
	b.put32(28, t.ExpStatSN)
	b.put32(32, t.RefCmdSN)
	b.put32(36, t.ExpDataSN)
	return p
}

// Encode builds the PDU. The I bit is always set, as RFC 7143 requires.
func (l *LoginReq) Encode() *PDU {
	p := newPDU(OpLoginReq, flag(l.Transit, 0x80)|flag(l.Continue, 0x40)|
		(l.CSG&0x03)<<2|l.NSG&0x03, l.Data)
	b := &p.BHS
	b[0] |= 0x40
	b[2] = l.VersionMax
	b[3] = l.VersionMin
	copy(b[8:14], l.ISID[:])
	b.put16(14, l.TSIH)
	b.put32(16, l.ITT)
	b.put16(20, l.CID)
	b.put32(24, l.CmdSN)
	b.put32(28, l.ExpStatSN)
	return p
}

// Encode builds the PDU.
func (t *TextReq) Encode() *PDU {
	p := newPDU(OpTextReq, flag(t.Final, 0x80)|flag(t.Continue, 0x40), t.Data)
	b := &p.BHS
	b[0] |= flag(t.Immediate, 0x40)
	b.put64(8, t.LUN)
	b.put32(16, t.ITT)
	b.put32(20, t.TTT)
	b.put32(24, t.CmdSN)
	b.put32(28, t.ExpStatSN)
	return p
}

// Encode builds the PDU.
func (l *LogoutReq) Encode() *PDU {
	p := newPDU(OpLogoutReq, 0x80|l.Reason&0x7f, nil)
	b := &p.BHS
	b[0] |= flag(l.Immediate, 0x40)
	b.put32(16, l.ITT)
	b.put16(20, l.CID)
	b.put32(24, l.CmdSN)
	b.put32(28, l.ExpStatSN)
	return p
}

// Encode builds the PDU.
func (s *SNACKReq) Encode() *PDU {
	p := newPDU(OpSNACKReq, 0x80|s.Type&0x0f, nil)
	b := &p.BHS
	b.put64(8, s.LUN)
	b.put32(16, s.ITT)
	b.put32(20, s.TTT)
	b.put32(28, s.ExpStatSN)
	b.put32(40, s.BegRun)
	b.put32(44, s.RunLength)
	return p
}
