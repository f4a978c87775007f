package scsi

// REPORT SUPPORTED OPERATION CODES (SPC-4 6.35) and REPORT SUPPORTED TASK
// MANAGEMENT FUNCTIONS (SPC-4 6.41), generated from the dispatch table.

// Reporting options of REPORT SUPPORTED OPERATION CODES.
const (
	rsocAll             = 0
	rsocOpcode          = 1
	rsocOpcodeSA        = 2
	rsocOpcodeMaybeSA   = 3
	rsocTimeoutsDescLen = 12
)

// SUPPORT values of the one-command format.
const (
	supportNotAvailable = 0x0
	supportNone         = 0x1
	supportStandard     = 0x3
)

// cmdReportOpcodes is REPORT SUPPORTED OPERATION CODES.
func cmdReportOpcodes(t *task) ([]byte, error) {
	rctd := t.cdb[2]&0x80 != 0
	option := t.cdb[2] & 0x07
	opcode := t.cdb[3]
	sa := be16(t.cdb[4:6])
	alloc := be32(t.cdb[6:10])
	switch option {
	case rsocAll:
		return cut(reportAllOpcodes(t.lu, rctd), alloc), nil
	case rsocOpcode, rsocOpcodeSA, rsocOpcodeMaybeSA:
	default:
		return nil, invalidCDB(2, 2)
	}
	slot := &opTable[opcode]
	hasSAs := slot.sas != nil
	switch {
	case option == rsocOpcode && hasSAs:
		return nil, invalidCDB(2, 2)
	case option == rsocOpcodeSA && !hasSAs:
		return nil, invalidCDB(2, 2)
	}
	e := slot.entry
	if hasSAs {
		e = slot.sas[sa]
	}
	if e != nil && !e.supportedBy(t.lu) {
		e = nil
	}
	return cut(reportOneOpcode(e, rctd), alloc), nil
}

// reportAllOpcodes is the all-commands parameter data.
func reportAllOpcodes(lu *LU, rctd bool) []byte {
	data := make([]byte, 4)
	for _, e := range opList {
		if !e.supportedBy(lu) {
			continue
		}
		d := make([]byte, 8)
		d[0] = e.opcode
		put16(d[2:4], e.sa)
		if e.hasSA {
			d[5] |= 0x01 // SERVACTV
		}
		put16(d[6:8], uint16(e.cdbLen))
		if rctd {
			d[5] |= 0x02 // CTDP
			d = append(d, e.timeouts()...)
		}
		data = append(data, d...)
	}
	put32(data[0:4], uint32(len(data)-4))
	return data
}

// reportOneOpcode is the one-command parameter data; e is nil for a
// command that is not supported.
func reportOneOpcode(e *opEntry, rctd bool) []byte {
	if e == nil {
		return []byte{0, supportNone, 0, 0}
	}
	data := make([]byte, 4, 4+len(e.usage)+rsocTimeoutsDescLen)
	data[1] = supportStandard
	put16(data[2:4], uint16(e.cdbLen))
	data = append(data, e.usage...)
	if rctd {
		data[1] |= 0x80 // CTDP
		data = append(data, e.timeouts()...)
	}
	return data
}

// timeouts is the command timeouts descriptor of e: no nominal processing
// time is promised, the recommended timeout is the entry's.
func (e *opEntry) timeouts() []byte {
	d := make([]byte, rsocTimeoutsDescLen)
	put16(d[0:2], rsocTimeoutsDescLen-2)
	timeout := e.timeout
	if timeout == 0 {
		timeout = defaultTimeout
	}
	put32(d[8:12], timeout)
	return d
}

// Supported task management functions: ABORT TASK, ABORT TASK SET, CLEAR
// TASK SET, LOGICAL UNIT RESET, TARGET RESET.
const supportedTMFs = 0x80 | 0x40 | 0x10 | 0x08 | 0x02

// cmdReportTMFs is REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS.
func cmdReportTMFs(t *task) ([]byte, error) {
	alloc := be32(t.cdb[6:10])
	if alloc < 4 {
		return nil, invalidCDB(6, -1)
	}
	data := []byte{supportedTMFs, 0, 0, 0}
	if t.cdb[2]&0x80 != 0 { // REPD: extended format, no timeouts reported
		data[3] = 0x0c
		data = append(data, make([]byte, 12)...)
	}
	return cut(data, alloc), nil
}
