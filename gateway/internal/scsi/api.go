// Package scsi is the SCSI device server (SPC-4/SBC-3) behind the iSCSI
// target: a table-driven opcode dispatch, sense data, unit attentions per
// I_T nexus, ALUA, reservations, and the mapping of commands onto an
// rbdbackend.Image.
//
// The transport (gateway/internal/iscsi) sees only the types in this file:
// it builds a Command from a SCSI Command PDU and its Data-Out, calls
// Target.Execute, and turns the Result into Data-In and SCSI Response PDUs.
//
// Transport-facing API (implemented in this package):
//
//	func (t *Target) Execute(ctx context.Context, cmd *Command) Result
//	func (t *Target) TaskManagement(n *Nexus, fn TMFunction, lun uint64, refTag uint32) TMFResponse
//	func (t *Target) NexusLogin(n *Nexus)  // new I_T nexus: queues 29h/00h POWER ON/RESET on every LU
//	func (t *Target) NexusLogout(n *Nexus) // I_T nexus loss: drops SPC-2 reservations, aborts its tasks
//	func (t *Target) DataOutLength(cdb []byte) (int, bool) // bytes of Data-Out the CDB asks for; false when unknown
package scsi

import (
	"sync/atomic"
)

// Status is the SAM status byte.
type Status byte

const (
	StatusGood                Status = 0x00
	StatusCheckCondition      Status = 0x02
	StatusConditionMet        Status = 0x04
	StatusBusy                Status = 0x08
	StatusReservationConflict Status = 0x18
	StatusTaskSetFull         Status = 0x28
	StatusACAActive           Status = 0x30
	StatusTaskAborted         Status = 0x40
)

// TaskAttr is the SAM task attribute of a command.
type TaskAttr uint8

const (
	TaskUntagged    TaskAttr = 0
	TaskSimple      TaskAttr = 1
	TaskOrdered     TaskAttr = 2
	TaskHeadOfQueue TaskAttr = 3
	TaskACA         TaskAttr = 4
)

// Nexus identifies an I_T nexus: one initiator port (iSCSI initiator name +
// ISID) talking to one target port (target name + portal group tag, which
// is this gateway's target port group and relative target port).
//
// The port names are built once and cached in the Nexus (safe for
// concurrent use); a Nexus must therefore not be copied by value once in
// use. A change of the identifying fields is noticed and the names rebuilt.
type Nexus struct {
	InitiatorName  string
	ISID           [6]byte
	TargetName     string
	TPGT           uint16 // portal group tag of the target port
	RelativePortID uint16 // relative target port identifier (VPD 0x83, RTPG)
	PortGroupID    uint16 // target port group (ALUA) of the target port

	names atomic.Pointer[nexusNames]
}

// InitiatorPort is the SCSI initiator port name "<iqn>,i,0x<isid>".
func (n *Nexus) InitiatorPort() string { return n.portNames().initiatorPort }

// TargetPort is the SCSI target port name "<iqn>,t,0x<tpgt>".
func (n *Nexus) TargetPort() string { return n.portNames().targetPort }

// Key identifies the nexus in maps (initiator port + target port).
func (n *Nexus) Key() string { return n.portNames().key }

// Command is one SCSI command as the transport delivered it.
type Command struct {
	Nexus *Nexus
	LUN   uint64 // LUN number (already decoded from the 8-byte LUN field)
	CDB   []byte // 6..260 bytes (AHS extended CDBs are appended)
	Attr  TaskAttr
	Tag   uint32 // initiator task tag, for ABORT TASK

	// ExpectedDataTransferLength from the PDU: for reads the size of the
	// initiator's buffer, for writes the amount of data it sends.
	ExpectedLength uint32
	Read, Write    bool // direction flags of the PDU

	// DataOut is the data the initiator sent (immediate, unsolicited and
	// solicited Data-Out, in order), at most ExpectedLength bytes.
	DataOut []byte

	// DataIn optionally lends the device server a buffer for the Data-In
	// of a READ (6/10/12/16): when its capacity holds the data, the blocks
	// are read into DataIn[:n] and Result.Data is that slice, so the
	// command allocates no buffer of its own. Pass it with length 0; other
	// commands, and reads that do not fit, ignore it. The buffer must stay
	// untouched until Execute returns, and Result.Data aliases it
	// afterwards. When the result is Aborted, a read abandoned by the abort
	// may still be filling the buffer: it must not be reused (dropping it
	// to the garbage collector is safe).
	DataIn []byte
}

// Result is the outcome of a command.
type Result struct {
	Status Status
	Sense  []byte // sense data for CHECK CONDITION (fixed or descriptor format)
	// Data is the Data-In payload the command produced (already cut to the
	// allocation length of the CDB). The transport sends at most
	// ExpectedLength bytes of it and reports the rest as overflow.
	Data []byte
	// Aborted is set when the task was aborted by task management while it
	// ran; the transport sends no response for it (TAS=0), or TASK ABORTED
	// status when TaskAbortedStatus is also set.
	Aborted           bool
	TaskAbortedStatus bool
}

// TMFunction is a task management function (iSCSI function codes).
type TMFunction uint8

const (
	TMFAbortTask       TMFunction = 1
	TMFAbortTaskSet    TMFunction = 2
	TMFClearACA        TMFunction = 3
	TMFClearTaskSet    TMFunction = 4
	TMFLUReset         TMFunction = 5
	TMFTargetWarmReset TMFunction = 6
	TMFTargetColdReset TMFunction = 7
	TMFTaskReassign    TMFunction = 8
)

// TMFResponse is the iSCSI task management response code.
type TMFResponse uint8

const (
	TMFComplete            TMFResponse = 0
	TMFTaskNotExist        TMFResponse = 1
	TMFLUNNotExist         TMFResponse = 2
	TMFTaskStillAllegiant  TMFResponse = 3
	TMFReassignUnsupported TMFResponse = 4
	TMFNotSupported        TMFResponse = 5
	TMFAuthFailed          TMFResponse = 6
	TMFRejected            TMFResponse = 255
)
