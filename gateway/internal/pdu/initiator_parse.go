package pdu

import "encoding/binary"

// Decoders for response PDUs: the initiator side of the codec, used by test
// initiators and round-trip tests. Like the request parsers they never
// panic and return *ProtocolError for unusable layouts.

// ParseSCSIResponse decodes a SCSI Response, splitting the SenseLength prefix
// off the data segment. Sense aliases PDU.Data.
func ParseSCSIResponse(p *PDU) (*SCSIResponse, error) {
	r := &SCSIResponse{}
	if err := ParseSCSIResponseInto(p, r); err != nil {
		return nil, err
	}
	return r, nil
}

// ParseSCSIResponseInto is ParseSCSIResponse decoding into r; r.Sense
// aliases p.Data.
func ParseSCSIResponseInto(p *PDU, r *SCSIResponse) error {
	if err := checkSimple(p, OpSCSIResponse); err != nil {
		return err
	}
	b := &p.BHS
	*r = SCSIResponse{
		BidiOverflow:  b[1]&0x10 != 0,
		BidiUnderflow: b[1]&0x08 != 0,
		Overflow:      b[1]&0x04 != 0,
		Underflow:     b[1]&0x02 != 0,
		Response:      b[2],
		Status:        b[3],
		ITT:           b.ITT(),
		SNACKTag:      b.u32(20),
		StatSN:        b.u32(24),
		ExpCmdSN:      b.u32(28),
		MaxCmdSN:      b.u32(32),
		ExpDataSN:     b.u32(36),
		BidiResidual:  b.u32(40),
		Residual:      b.u32(44),
	}
	if len(p.Data) > 0 {
		if len(p.Data) < 2 {
			return protoErr("SCSI Response data segment shorter than SenseLength")
		}
		n := int(binary.BigEndian.Uint16(p.Data))
		if 2+n > len(p.Data) {
			return protoErr("SenseLength beyond data segment")
		}
		if n > 0 {
			r.Sense = p.Data[2 : 2+n]
		}
	}
	return nil
}

// ParseDataIn decodes a SCSI Data-In PDU.
func ParseDataIn(p *PDU) (*DataIn, error) {
	d := &DataIn{}
	if err := ParseDataInInto(p, d); err != nil {
		return nil, err
	}
	return d, nil
}

// ParseDataInInto is ParseDataIn decoding into d; d.Data aliases p.Data.
func ParseDataInInto(p *PDU, d *DataIn) error {
	if err := checkSimple(p, OpDataIn); err != nil {
		return err
	}
	b := &p.BHS
	*d = DataIn{
		Final:        b[1]&0x80 != 0,
		Ack:          b[1]&0x40 != 0,
		Overflow:     b[1]&0x04 != 0,
		Underflow:    b[1]&0x02 != 0,
		HasStatus:    b[1]&0x01 != 0,
		Status:       b[3],
		LUN:          b.u64(8),
		ITT:          b.ITT(),
		TTT:          b.u32(20),
		StatSN:       b.u32(24),
		ExpCmdSN:     b.u32(28),
		MaxCmdSN:     b.u32(32),
		DataSN:       b.u32(36),
		BufferOffset: b.u32(40),
		Residual:     b.u32(44),
		Data:         p.Data,
	}
	return nil
}

// ParseR2T decodes an R2T.
func ParseR2T(p *PDU) (*R2T, error) {
	if err := checkNoData(p, OpR2T); err != nil {
		return nil, err
	}
	b := &p.BHS
	return &R2T{
		LUN:           b.u64(8),
		ITT:           b.ITT(),
		TTT:           b.u32(20),
		StatSN:        b.u32(24),
		ExpCmdSN:      b.u32(28),
		MaxCmdSN:      b.u32(32),
		R2TSN:         b.u32(36),
		BufferOffset:  b.u32(40),
		DesiredLength: b.u32(44),
	}, nil
}

// ParseNOPIn decodes a NOP-In.
func ParseNOPIn(p *PDU) (*NOPIn, error) {
	if err := checkSimple(p, OpNOPIn); err != nil {
		return nil, err
	}
	b := &p.BHS
	return &NOPIn{
		LUN:      b.u64(8),
		ITT:      b.ITT(),
		TTT:      b.u32(20),
		StatSN:   b.u32(24),
		ExpCmdSN: b.u32(28),
		MaxCmdSN: b.u32(32),
		Data:     p.Data,
	}, nil
}

// ParseTaskMgmtResp decodes a Task Management Function Response.
func ParseTaskMgmtResp(p *PDU) (*TaskMgmtResp, error) {
	if err := checkNoData(p, OpTaskMgmtResp); err != nil {
		return nil, err
	}
	b := &p.BHS
	return &TaskMgmtResp{
		Response: b[2],
		ITT:      b.ITT(),
		StatSN:   b.u32(24),
		ExpCmdSN: b.u32(28),
		MaxCmdSN: b.u32(32),
	}, nil
}

// ParseLoginResp decodes a Login Response.
func ParseLoginResp(p *PDU) (*LoginResp, error) {
	if err := checkSimple(p, OpLoginResp); err != nil {
		return nil, err
	}
	b := &p.BHS
	r := &LoginResp{
		Transit:       b[1]&0x80 != 0,
		Continue:      b[1]&0x40 != 0,
		CSG:           b[1] >> 2 & 0x03,
		NSG:           b[1] & 0x03,
		VersionMax:    b[2],
		VersionActive: b[3],
		TSIH:          b.u16(14),
		ITT:           b.ITT(),
		StatSN:        b.u32(24),
		ExpCmdSN:      b.u32(28),
		MaxCmdSN:      b.u32(32),
		StatusClass:   b[36],
		StatusDetail:  b[37],
		Data:          p.Data,
	}
	copy(r.ISID[:], b[8:14])
	return r, nil
}

// ParseTextResp decodes a Text Response.
func ParseTextResp(p *PDU) (*TextResp, error) {
	if err := checkSimple(p, OpTextResp); err != nil {
		return nil, err
	}
	b := &p.BHS
	return &TextResp{
		Final:    b[1]&0x80 != 0,
		Continue: b[1]&0x40 != 0,
		LUN:      b.u64(8),
		ITT:      b.ITT(),
		TTT:      b.u32(20),
		StatSN:   b.u32(24),
		ExpCmdSN: b.u32(28),
		MaxCmdSN: b.u32(32),
		Data:     p.Data,
	}, nil
}

// ParseLogoutResp decodes a Logout Response.
func ParseLogoutResp(p *PDU) (*LogoutResp, error) {
	if err := checkNoData(p, OpLogoutResp); err != nil {
		return nil, err
	}
	b := &p.BHS
	return &LogoutResp{
		Response:    b[2],
		ITT:         b.ITT(),
		StatSN:      b.u32(24),
		ExpCmdSN:    b.u32(28),
		MaxCmdSN:    b.u32(32),
		Time2Wait:   b.u16(40),
		Time2Retain: b.u16(42),
	}, nil
}

// ParseAsyncMsg decodes an Asynchronous Message.
func ParseAsyncMsg(p *PDU) (*AsyncMsg, error) {
	if err := checkSimple(p, OpAsyncMsg); err != nil {
		return nil, err
	}
	b := &p.BHS
	return &AsyncMsg{
		LUN:        b.u64(8),
		StatSN:     b.u32(24),
		ExpCmdSN:   b.u32(28),
		MaxCmdSN:   b.u32(32),
		AsyncEvent: b[36],
		AsyncVCode: b[37],
		Parameter1: b.u16(38),
		Parameter2: b.u16(40),
		Parameter3: b.u16(42),
		Data:       p.Data,
	}, nil
}

// ParseReject decodes a Reject; Header aliases PDU.Data.
func ParseReject(p *PDU) (*Reject, error) {
	if err := checkSimple(p, OpReject); err != nil {
		return nil, err
	}
	b := &p.BHS
	return &Reject{
		Reason:   b[2],
		StatSN:   b.u32(24),
		ExpCmdSN: b.u32(28),
		MaxCmdSN: b.u32(32),
		DataSN:   b.u32(36),
		Header:   p.Data,
	}, nil
}
