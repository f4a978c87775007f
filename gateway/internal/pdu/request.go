package pdu

// Request PDUs (initiator to target). Parse* never panic; they return a
// *ProtocolError for a PDU whose layout cannot be used. Semantic checks
// (sequence numbers, negotiation state) belong to the callers.

// SCSICommand is a SCSI Command PDU (RFC 7143 section 11.3).
type SCSICommand struct {
	Immediate, Final, Read, Write bool
	Attr                          uint8  // task attribute, bits 0..2 of byte 1
	LUN                           uint64 // raw 8-byte LUN field
	ITT, EDTL, CmdSN, ExpStatSN   uint32
	CDB                           []byte // 16 bytes from the BHS plus any extended CDB
	BidiReadLength                uint32 // from AHS type 2, 0 if absent
	Data                          []byte // immediate data, aliases PDU.Data
}

// ParseSCSICommand decodes a SCSI Command PDU.
func ParseSCSICommand(p *PDU) (*SCSICommand, error) {
	c := &SCSICommand{}
	if err := ParseSCSICommandInto(p, c); err != nil {
		return nil, err
	}
	return c, nil
}

// ParseSCSICommandInto is ParseSCSICommand decoding into c, so that a
// caller on the I/O path can reuse one. c.CDB aliases p's BHS unless an
// extended CDB made it a new slice, and c.Data aliases p.Data: both are
// valid only as long as p is.
func ParseSCSICommandInto(p *PDU, c *SCSICommand) error {
	if err := checkOpcode(p, OpSCSICommand); err != nil {
		return err
	}
	ahs, err := parseAHS(p.AHS)
	if err != nil {
		return err
	}
	b := &p.BHS
	*c = SCSICommand{
		Immediate:      b.Immediate(),
		Final:          b.Final(),
		Read:           b[1]&0x40 != 0,
		Write:          b[1]&0x20 != 0,
		Attr:           b[1] & 0x07,
		LUN:            b.u64(8),
		ITT:            b.ITT(),
		EDTL:           b.u32(20),
		CmdSN:          b.u32(24),
		ExpStatSN:      b.u32(28),
		BidiReadLength: ahs.bidiReadLen,
		Data:           p.Data,
	}
	if ahs.extCDB == nil {
		c.CDB = b[32:48]
	} else {
		c.CDB = make([]byte, 16+len(ahs.extCDB))
		copy(c.CDB, b[32:48])
		copy(c.CDB[16:], ahs.extCDB)
	}
	return nil
}

// DataOut is a SCSI Data-Out PDU (RFC 7143 section 11.7).
type DataOut struct {
	Final                                     bool
	LUN                                       uint64
	ITT, TTT, ExpStatSN, DataSN, BufferOffset uint32
	Data                                      []byte
}

// ParseDataOut decodes a SCSI Data-Out PDU.
func ParseDataOut(p *PDU) (*DataOut, error) {
	d := &DataOut{}
	if err := ParseDataOutInto(p, d); err != nil {
		return nil, err
	}
	return d, nil
}

// ParseDataOutInto is ParseDataOut decoding into d; d.Data aliases p.Data.
func ParseDataOutInto(p *PDU, d *DataOut) error {
	if err := checkSimple(p, OpDataOut); err != nil {
		return err
	}
	b := &p.BHS
	*d = DataOut{
		Final:        b.Final(),
		LUN:          b.u64(8),
		ITT:          b.ITT(),
		TTT:          b.u32(20),
		ExpStatSN:    b.u32(28),
		DataSN:       b.u32(36),
		BufferOffset: b.u32(40),
		Data:         p.Data,
	}
	return nil
}

// NOPOut is a NOP-Out PDU (RFC 7143 section 11.18).
type NOPOut struct {
	Immediate                  bool
	LUN                        uint64
	ITT, TTT, CmdSN, ExpStatSN uint32
	Data                       []byte
}

// ParseNOPOut decodes a NOP-Out PDU.
func ParseNOPOut(p *PDU) (*NOPOut, error) {
	if err := checkSimple(p, OpNOPOut); err != nil {
		return nil, err
	}
	b := &p.BHS
	return &NOPOut{
		Immediate: b.Immediate(),
		LUN:       b.u64(8),
		ITT:       b.ITT(),
		TTT:       b.u32(20),
		CmdSN:     b.u32(24),
		ExpStatSN: b.u32(28),
		Data:      p.Data,
	}, nil
}

// Task management functions (RFC 7143 section 11.5.1).
const (
	TMFAbortTask        = 1
	TMFAbortTaskSet     = 2
	TMFClearACA         = 3
	TMFClearTaskSet     = 4
	TMFLogicalUnitReset = 5
	TMFTargetWarmReset  = 6
	TMFTargetColdReset  = 7
	TMFTaskReassign     = 8
)

// TaskMgmtReq is a Task Management Function Request (RFC 7143 section 11.5).
type TaskMgmtReq struct {
	Immediate                                              bool
	Function                                               uint8
	LUN                                                    uint64
	ITT, RefTaskTag, CmdSN, ExpStatSN, RefCmdSN, ExpDataSN uint32
}

// ParseTaskMgmtReq decodes a Task Management Function Request.
func ParseTaskMgmtReq(p *PDU) (*TaskMgmtReq, error) {
	if err := checkNoData(p, OpTaskMgmtReq); err != nil {
		return nil, err
	}
	b := &p.BHS
	return &TaskMgmtReq{
		Immediate:  b.Immediate(),
		Function:   b[1] & 0x7f,
		LUN:        b.u64(8),
		ITT:        b.ITT(),
		RefTaskTag: b.u32(20),
		CmdSN:      b.u32(24),
		ExpStatSN:  b.u32(28),
		RefCmdSN:   b.u32(32),
		ExpDataSN:  b.u32(36),
	}, nil
}

// LoginReq is a Login Request (RFC 7143 section 11.12).
type LoginReq struct {
	Transit, Continue      bool
	CSG, NSG               uint8
	VersionMax, VersionMin uint8
	ISID                   [6]byte
	TSIH                   uint16
	ITT                    uint32
	CID                    uint16
	CmdSN, ExpStatSN       uint32
	Data                   []byte
}

// ParseLoginReq decodes a Login Request.
func ParseLoginReq(p *PDU) (*LoginReq, error) {
	if err := checkSimple(p, OpLoginReq); err != nil {
		return nil, err
	}
	b := &p.BHS
	r := &LoginReq{
		Transit:    b[1]&0x80 != 0,
		Continue:   b[1]&0x40 != 0,
		CSG:        b[1] >> 2 & 0x03,
		NSG:        b[1] & 0x03,
		VersionMax: b[2],
		VersionMin: b[3],
		TSIH:       b.u16(14),
		ITT:        b.ITT(),
		CID:        b.u16(20),
		CmdSN:      b.u32(24),
		ExpStatSN:  b.u32(28),
		Data:       p.Data,
	}
	copy(r.ISID[:], b[8:14])
	return r, nil
}

// TextReq is a Text Request (RFC 7143 section 11.10).
type TextReq struct {
	Immediate, Final, Continue bool
	LUN                        uint64
	ITT, TTT, CmdSN, ExpStatSN uint32
	Data                       []byte
}

// ParseTextReq decodes a Text Request.
func ParseTextReq(p *PDU) (*TextReq, error) {
	if err := checkSimple(p, OpTextReq); err != nil {
		return nil, err
	}
	b := &p.BHS
	return &TextReq{
		Immediate: b.Immediate(),
		Final:     b.Final(),
		Continue:  b[1]&0x40 != 0,
		LUN:       b.u64(8),
		ITT:       b.ITT(),
		TTT:       b.u32(20),
		CmdSN:     b.u32(24),
		ExpStatSN: b.u32(28),
		Data:      p.Data,
	}, nil
}

// Logout reasons (RFC 7143 section 11.14.1).
const (
	LogoutCloseSession      = 0
	LogoutCloseConnection   = 1
	LogoutRemoveForRecovery = 2
)

// LogoutReq is a Logout Request (RFC 7143 section 11.14).
type LogoutReq struct {
	Immediate        bool
	Reason           uint8
	ITT              uint32
	CID              uint16
	CmdSN, ExpStatSN uint32
}

// ParseLogoutReq decodes a Logout Request.
func ParseLogoutReq(p *PDU) (*LogoutReq, error) {
	if err := checkNoData(p, OpLogoutReq); err != nil {
		return nil, err
	}
	b := &p.BHS
	return &LogoutReq{
		Immediate: b.Immediate(),
		Reason:    b[1] & 0x7f,
		ITT:       b.ITT(),
		CID:       b.u16(20),
		CmdSN:     b.u32(24),
		ExpStatSN: b.u32(28),
	}, nil
}

// SNACK types (RFC 7143 section 11.16.1).
const (
	SNACKDataR2T    = 0
	SNACKStatus     = 1
	SNACKDataACK    = 2
	SNACKRDataSNACK = 3
)

// SNACKReq is a SNACK Request (RFC 7143 section 11.16).
type SNACKReq struct {
	Type                                   uint8
	LUN                                    uint64
	ITT, TTT, ExpStatSN, BegRun, RunLength uint32
}

// ParseSNACKReq decodes a SNACK Request.
func ParseSNACKReq(p *PDU) (*SNACKReq, error) {
	if err := checkNoData(p, OpSNACKReq); err != nil {
		return nil, err
	}
	b := &p.BHS
	return &SNACKReq{
		Type:      b[1] & 0x0f,
		LUN:       b.u64(8),
		ITT:       b.ITT(),
		TTT:       b.u32(20),
		ExpStatSN: b.u32(28),
		BegRun:    b.u32(40),
		RunLength: b.u32(44),
	}, nil
}

func checkOpcode(p *PDU, want Opcode) error {
	if p == nil {
		return protoErr("nil PDU")
	}
	if got := p.BHS.Opcode(); got != want {
		return protoErr("expected " + want.String() + ", got " + got.String())
	}
	return nil
}

// checkSimple accepts want with no AHS: only the SCSI Command defines any.
func checkSimple(p *PDU, want Opcode) error {
	if err := checkOpcode(p, want); err != nil {
		return err
	}
	if len(p.AHS) != 0 || p.BHS.TotalAHSLength() != 0 {
		return protoErr(want.String() + " with AHS")
	}
	return nil
}

// checkNoData is checkSimple for PDUs whose DataSegmentLength must be 0.
func checkNoData(p *PDU, want Opcode) error {
	if err := checkSimple(p, want); err != nil {
		return err
	}
	if len(p.Data) != 0 || p.BHS.DataSegmentLength() != 0 {
		return protoErr(want.String() + " with a data segment")
	}
	return nil
}
