package pr

import "errors"

// SAM status codes an Outcome carries.
const (
	StatusGood                uint8 = 0x00
	StatusCheckCondition      uint8 = 0x02
	StatusReservationConflict uint8 = 0x18
)

// Sense keys.
const (
	SenseIllegalRequest uint8 = 0x05
	SenseUnitAttention  uint8 = 0x06
	SenseAbortedCommand uint8 = 0x0b
)

// Additional sense codes (ASC, ASCQ) used by this package.
const (
	ascParameterListLength   = 0x1a // 1Ah/00h PARAMETER LIST LENGTH ERROR
	ascInvalidFieldInCDB     = 0x24 // 24h/00h INVALID FIELD IN CDB
	ascInvalidFieldInParam   = 0x26 // 26h/00h INVALID FIELD IN PARAMETER LIST
	ascqInvalidRelease       = 0x04 // 26h/04h INVALID RELEASE OF PERSISTENT RESERVATION
	ascInsufficientResources = 0x55 // 55h/04h INSUFFICIENT REGISTRATION RESOURCES
	ascqInsufficientRegs     = 0x04
	ascLUCommunication       = 0x08 // 08h/00h LOGICAL UNIT COMMUNICATION FAILURE

	// ASCReservations is the ASC of the reservation unit attentions.
	ASCReservations uint8 = 0x2a
	// ASCQReservationsPreempted: 2Ah/03h RESERVATIONS PREEMPTED.
	ASCQReservationsPreempted uint8 = 0x03
	// ASCQReservationsReleased: 2Ah/04h RESERVATIONS RELEASED.
	ASCQReservationsReleased uint8 = 0x04
	// ASCQRegistrationsPreempted: 2Ah/05h REGISTRATIONS PREEMPTED.
	ASCQRegistrationsPreempted uint8 = 0x05
)

// Outcome is the result of one command: status, the sense fields for CHECK
// CONDITION, PERSISTENT RESERVE IN data, and the side effects the device
// server must apply to other I_T nexuses.
type Outcome struct {
	Status              uint8 // SAM status
	SenseKey, ASC, ASCQ uint8 // for CHECK CONDITION
	// FieldPointer is the byte in error (sense-key specific field pointer),
	// in the CDB when InCDB is set, else in the parameter list; -1 for none.
	FieldPointer int
	InCDB        bool
	// Data is the PERSISTENT RESERVE IN parameter data, not cut to the
	// allocation length (the caller cuts it).
	Data []byte
	// UAs are unit attentions to queue on other I_T nexuses.
	UAs []UnitAttention
	// AbortTasksOf lists the initiator ports (and, in AbortNexuses, the full
	// I_T nexuses) whose tasks a PREEMPT AND ABORT aborts.
	AbortTasksOf []string
	AbortNexuses []Port
}

// UnitAttention is one unit attention condition to establish on the I_T
// nexus (InitiatorPort, TargetPort). Both are always set.
type UnitAttention struct {
	InitiatorPort string
	TargetPort    string
	ASC, ASCQ     uint8
}

// Good reports whether the outcome is GOOD status.
func (o Outcome) Good() bool { return o.Status == StatusGood }

func good() Outcome { return Outcome{Status: StatusGood, FieldPointer: -1} }

func goodData(b []byte) Outcome {
	o := good()
	o.Data = b
	return o
}

// failure is a command that ends without changing state; it aborts a Store
// update and carries the outcome back to the caller.
type failure struct{ out Outcome }

func (f *failure) Error() string {
	switch f.out.Status {
	case StatusReservationConflict:
		return "reservation conflict"
	default:
		return "check condition"
	}
}

func conflict() error {
	return &failure{Outcome{Status: StatusReservationConflict, FieldPointer: -1}}
}

func checkCondition(key, asc, ascq uint8, field int, inCDB bool) error {
	return &failure{Outcome{
		Status: StatusCheckCondition, SenseKey: key, ASC: asc, ASCQ: ascq,
		FieldPointer: field, InCDB: inCDB,
	}}
}

func invalidCDB(field int) error {
	return checkCondition(SenseIllegalRequest, ascInvalidFieldInCDB, 0, field, true)
}

func invalidParam(field int) error {
	return checkCondition(SenseIllegalRequest, ascInvalidFieldInParam, 0, field, false)
}

func paramListLength() error {
	return checkCondition(SenseIllegalRequest, ascParameterListLength, 0, -1, false)
}

func invalidRelease() error {
	return checkCondition(SenseIllegalRequest, ascInvalidFieldInParam, ascqInvalidRelease, -1, false)
}

func insufficientRegistrations() error {
	return checkCondition(SenseIllegalRequest, ascInsufficientResources, ascqInsufficientRegs, -1, false)
}

// outcomeOf maps an error to the outcome the initiator sees. This is the
// one place where errors become wire responses in this package: a failure
// carries its own outcome; anything else is a store that could not be read
// or written, reported so that initiators retry (ABORTED COMMAND).
func outcomeOf(err error) Outcome {
	var f *failure
	if errors.As(err, &f) {
		return f.out
	}
	return Outcome{
		Status: StatusCheckCondition, SenseKey: SenseAbortedCommand,
		ASC: ascLUCommunication, FieldPointer: -1,
	}
}
