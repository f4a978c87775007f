package pdu

import "encoding/binary"

// Response PDUs (target to initiator). Encode fills the BHS, sets
// DataSegmentLength from the data and lets PDU.Data alias the caller's slice.

// reservedTag fills tag fields that RFC 7143 requires to be 0xffffffff.
const reservedTag = 0xffffffff

// SCSI Response codes (RFC 7143 section 11.4.3).
const (
	ResponseCompleted     = 0x00
	ResponseTargetFailure = 0x01
)

// SCSIResponse is a SCSI Response PDU (RFC 7143 section 11.4).
type SCSIResponse struct {
	BidiOverflow, BidiUnderflow, Overflow, Underflow                             bool
	Response, Status                                                             uint8
	ITT, SNACKTag, StatSN, ExpCmdSN, MaxCmdSN, ExpDataSN, BidiResidual, Residual uint32
	Sense                                                                        []byte
}

// Encode builds the PDU. Sense data, if any, goes into the data segment
// behind its 2-byte SenseLength.
func (r *SCSIResponse) Encode() *PDU {
	p := &PDU{}
	r.EncodeTo(p)
	return p
}

// EncodeTo is Encode into p, which the caller holds (and may reuse once
// the PDU is written). Sense data needs a buffer: with sense, p.Data is a
// new slice.
func (r *SCSIResponse) EncodeTo(p *PDU) {
	var data []byte
	if len(r.Sense) > 0 {
		data = make([]byte, 2+len(r.Sense))
		binary.BigEndian.PutUint16(data, uint16(len(r.Sense)))
		copy(data[2:], r.Sense)
	}
	initPDU(p, OpSCSIResponse, 0x80|
		flag(r.BidiOverflow, 0x10)|flag(r.BidiUnderflow, 0x08)|
		flag(r.Overflow, 0x04)|flag(r.Underflow, 0x02), data)
	b := &p.BHS
	b[2] = r.Response
	b[3] = r.Status
	b.put32(16, r.ITT)
	b.put32(20, r.SNACKTag)
	b.put32(24, r.StatSN)
	b.put32(28, r.ExpCmdSN)
	b.put32(32, r.MaxCmdSN)
	b.put32(36, r.ExpDataSN)
	b.put32(40, r.BidiResidual)
	b.put32(44, r.Residual)
}

// DataIn is a SCSI Data-In PDU (RFC 7143 section 11.7). Status, StatSN and
// the residual flags only mean something when HasStatus (the S bit) is set.
type DataIn struct {
	Final, Ack, Overflow, Underflow, HasStatus                           bool
	Status                                                               uint8
	LUN                                                                  uint64
	ITT, TTT, StatSN, ExpCmdSN, MaxCmdSN, DataSN, BufferOffset, Residual uint32
	Data                                                                 []byte
}

// Encode builds the PDU; Data is not copied.
func (d *DataIn) Encode() *PDU {
	p := &PDU{}
	d.EncodeTo(p)
	return p
}

// EncodeTo is Encode into p, which the caller holds.
func (d *DataIn) EncodeTo(p *PDU) {
	initPDU(p, OpDataIn, flag(d.Final, 0x80)|flag(d.Ack, 0x40)|
		flag(d.Overflow, 0x04)|flag(d.Underflow, 0x02)|flag(d.HasStatus, 0x01), d.Data)
	b := &p.BHS
	b[3] = d.Status
	b.put64(8, d.LUN)
	b.put32(16, d.ITT)
	b.put32(20, d.TTT)
	b.put32(24, d.StatSN)
	b.put32(28, d.ExpCmdSN)
	b.put32(32, d.MaxCmdSN)
	b.put32(36, d.DataSN)
	b.put32(40, d.BufferOffset)
	b.put32(44, d.Residual)
}

// R2T is a Ready To Transfer PDU (RFC 7143 section 11.8).
type R2T struct {
	LUN                                                                      uint64
	ITT, TTT, StatSN, ExpCmdSN, MaxCmdSN, R2TSN, BufferOffset, DesiredLength uint32
}

// Encode builds the PDU.
func (r *R2T) Encode() *PDU {
	p := &PDU{}
	r.EncodeTo(p)
	return p
}

// EncodeTo is Encode into p, which the caller holds.
func (r *R2T) EncodeTo(p *PDU) {
	initPDU(p, OpR2T, 0x80, nil)
	b := &p.BHS
	b.put64(8, r.LUN)
	b.put32(16, r.ITT)
	b.put32(20, r.TTT)
	b.put32(24, r.StatSN)
	b.put32(28, r.ExpCmdSN)
	b.put32(32, r.MaxCmdSN)
	b.put32(36, r.R2TSN)
	b.put32(40, r.BufferOffset)
	b.put32(44, r.DesiredLength)
}

// NOPIn is a NOP-In PDU (RFC 7143 section 11.19).
type NOPIn struct {
	LUN                                  uint64
	ITT, TTT, StatSN, ExpCmdSN, MaxCmdSN uint32
	Data                                 []byte
}

// Encode builds the PDU; Data is not copied.
func (n *NOPIn) Encode() *PDU {
	p := newPDU(OpNOPIn, 0x80, n.Data)
	b := &p.BHS
	b.put64(8, n.LUN)
	b.put32(16, n.ITT)
	b.put32(20, n.TTT)
	b.put32(24, n.StatSN)
	b.put32(28, n.ExpCmdSN)
	b.put32(32, n.MaxCmdSN)
	return p
}

// Task management responses (RFC 7143 section 11.6.1).
const (
	TMFRespComplete       = 0
	TMFRespNoTask         = 1
	TMFRespNoLUN          = 2
	TMFRespTaskAllegiant  = 3
	TMFRespNoReassignment = 4
	TMFRespNotSupported   = 5
	TMFRespAuthFailed     = 6
	TMFRespRejected       = 255
)

// TaskMgmtResp is a Task Management Function Response (RFC 7143 section 11.6).
type TaskMgmtResp struct {
	Response                        uint8
	ITT, StatSN, ExpCmdSN, MaxCmdSN uint32
}

// Encode builds the PDU.
func (r *TaskMgmtResp) Encode() *PDU {
	p := newPDU(OpTaskMgmtResp, 0x80, nil)
	b := &p.BHS
	b[2] = r.Response
	b.put32(16, r.ITT)
	b.put32(24, r.StatSN)
	b.put32(28, r.ExpCmdSN)
	b.put32(32, r.MaxCmdSN)
	return p
}

// LoginResp is a Login Response (RFC 7143 section 11.13).
type LoginResp struct {
	Transit, Continue                   bool
	CSG, NSG, VersionMax, VersionActive uint8
	ISID                                [6]byte
	TSIH                                uint16
	ITT, StatSN, ExpCmdSN, MaxCmdSN     uint32
	StatusClass, StatusDetail           uint8
	Data                                []byte
}

// Encode builds the PDU; Data is not copied.
func (r *LoginResp) Encode() *PDU {
	p := newPDU(OpLoginResp, flag(r.Transit, 0x80)|flag(r.Continue, 0x40)|
		(r.CSG&0x03)<<2|r.NSG&0x03, r.Data)
	b := &p.BHS
	b[2] = r.VersionMax
	b[3] = r.VersionActive
	copy(b[8:14], r.ISID[:])
	b.put16(14, r.TSIH)
	b.put32(16, r.ITT)
	b.put32(24, r.StatSN)
	b.put32(28, r.ExpCmdSN)
	b.put32(32, r.MaxCmdSN)
	b[36] = r.StatusClass
	b[37] = r.StatusDetail
	return p
}

// TextResp is a Text Response (RFC 7143 section 11.11).
type TextResp struct {
	Final, Continue                      bool
	LUN                                  uint64
	ITT, TTT, StatSN, ExpCmdSN, MaxCmdSN uint32
	Data                                 []byte
}

// Encode builds the PDU; Data is not copied.
func (r *TextResp) Encode() *PDU {
	p := newPDU(OpTextResp, flag(r.Final, 0x80)|flag(r.Continue, 0x40), r.Data)
	b := &p.BHS
	b.put64(8, r.LUN)
	b.put32(16, r.ITT)
	b.put32(20, r.TTT)
	b.put32(24, r.StatSN)
	b.put32(28, r.ExpCmdSN)
	b.put32(32, r.MaxCmdSN)
	return p
}

// Logout responses (RFC 7143 section 11.15.1).
const (
	LogoutRespSuccess       = 0
	LogoutRespCIDNotFound   = 1
	LogoutRespNoRecovery    = 2
	LogoutRespCleanupFailed = 3
)

// LogoutResp is a Logout Response (RFC 7143 section 11.15).
type LogoutResp struct {
	Response                        uint8
	ITT, StatSN, ExpCmdSN, MaxCmdSN uint32
	Time2Wait, Time2Retain          uint16
}

// Encode builds the PDU.
func (r *LogoutResp) Encode() *PDU {
	p := newPDU(OpLogoutResp, 0x80, nil)
	b := &p.BHS
	b[2] = r.Response
	b.put32(16, r.ITT)
	b.put32(24, r.StatSN)
	b.put32(28, r.ExpCmdSN)
	b.put32(32, r.MaxCmdSN)
	b.put16(40, r.Time2Wait)
	b.put16(42, r.Time2Retain)
	return p
}

// Async events (RFC 7143 section 11.9.1).
const (
	AsyncEventSCSI               = 0
	AsyncEventLogoutRequest      = 1
	AsyncEventDropConnection     = 2
	AsyncEventDropAllConnections = 3
	AsyncEventNegotiate          = 4
	AsyncEventVendor             = 255
)

// AsyncMsg is an Asynchronous Message (RFC 7143 section 11.9). Its ITT is
// always 0xffffffff.
type AsyncMsg struct {
	LUN                                uint64
	StatSN, ExpCmdSN, MaxCmdSN         uint32
	AsyncEvent, AsyncVCode             uint8
	Parameter1, Parameter2, Parameter3 uint16
	Data                               []byte
}

// Encode builds the PDU; Data is not copied.
func (a *AsyncMsg) Encode() *PDU {
	p := newPDU(OpAsyncMsg, 0x80, a.Data)
	b := &p.BHS
	b.put64(8, a.LUN)
	b.put32(16, reservedTag)
	b.put32(24, a.StatSN)
	b.put32(28, a.ExpCmdSN)
	b.put32(32, a.MaxCmdSN)
	b[36] = a.AsyncEvent
	b[37] = a.AsyncVCode
	b.put16(38, a.Parameter1)
	b.put16(40, a.Parameter2)
	b.put16(42, a.Parameter3)
	return p
}

// Reject reasons (RFC 7143 section 11.17.1).
const (
	RejectDataDigest       = 0x02
	RejectSNACK            = 0x03
	RejectProtocolError    = 0x04
	RejectCmdNotSupported  = 0x05
	RejectImmCmd           = 0x06
	RejectTaskInProgress   = 0x07
	RejectInvalidDataAck   = 0x08
	RejectInvalidPDUField  = 0x09
	RejectOutOfResources   = 0x0a
	RejectNegotiationReset = 0x0b
	RejectWaitingForLogout = 0x0c
)

// Reject is a Reject PDU (RFC 7143 section 11.17). Header is the rejected
// BHS (48 bytes) and becomes the data segment. The ITT is always 0xffffffff.
type Reject struct {
	Reason                             uint8
	StatSN, ExpCmdSN, MaxCmdSN, DataSN uint32
	Header                             []byte
}

// Encode builds the PDU; Header is not copied.
func (r *Reject) Encode() *PDU {
	p := newPDU(OpReject, 0x80, r.Header)
	b := &p.BHS
	b[2] = r.Reason
	b.put32(16, reservedTag)
	b.put32(24, r.StatSN)
	b.put32(28, r.ExpCmdSN)
	b.put32(32, r.MaxCmdSN)
	b.put32(36, r.DataSN)
	return p
}
