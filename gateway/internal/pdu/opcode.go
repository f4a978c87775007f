// Package pdu encodes and decodes iSCSI PDUs (RFC 7143 section 11) and frames
// them on a byte stream. It is a pure codec: no goroutines, no connection state.
package pdu

import "fmt"

// Opcode is the 6-bit iSCSI opcode from byte 0 of the BHS.
type Opcode uint8

// Initiator opcodes (0x00-0x1f) and target opcodes (0x20-0x3f).
const (
	OpNOPOut       Opcode = 0x00
	OpSCSICommand  Opcode = 0x01
	OpTaskMgmtReq  Opcode = 0x02
	OpLoginReq     Opcode = 0x03
	OpTextReq      Opcode = 0x04
	OpDataOut      Opcode = 0x05
	OpLogoutReq    Opcode = 0x06
	OpSNACKReq     Opcode = 0x10
	OpNOPIn        Opcode = 0x20
	OpSCSIResponse Opcode = 0x21
	OpTaskMgmtResp Opcode = 0x22
	OpLoginResp    Opcode = 0x23
	OpTextResp     Opcode = 0x24
	OpDataIn       Opcode = 0x25
	OpLogoutResp   Opcode = 0x26
	OpR2T          Opcode = 0x31
	OpAsyncMsg     Opcode = 0x32
	OpReject       Opcode = 0x3f
)

var opcodeNames = map[Opcode]string{
	OpNOPOut:       "NOP-Out",
	OpSCSICommand:  "SCSI-Command",
	OpTaskMgmtReq:  "Task-Mgmt-Request",
	OpLoginReq:     "Login-Request",
	OpTextReq:      "Text-Request",
	OpDataOut:      "Data-Out",
	OpLogoutReq:    "Logout-Request",
	OpSNACKReq:     "SNACK-Request",
	OpNOPIn:        "NOP-In",
	OpSCSIResponse: "SCSI-Response",
	OpTaskMgmtResp: "Task-Mgmt-Response",
	OpLoginResp:    "Login-Response",
	OpTextResp:     "Text-Response",
	OpDataIn:       "Data-In",
	OpLogoutResp:   "Logout-Response",
	OpR2T:          "R2T",
	OpAsyncMsg:     "Async-Message",
	OpReject:       "Reject",
}

func (o Opcode) String() string {
	if name, ok := opcodeNames[o]; ok {
		return name
	}
	return fmt.Sprintf("Opcode(0x%02x)", uint8(o))
}
