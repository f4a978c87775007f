package pr

import (
	"encoding/binary"
	"errors"
)

// PERSISTENT RESERVE OUT service actions.
const (
	saRegister          = 0x00
	saReserve           = 0x01
	saRelease           = 0x02
	saClear             = 0x03
	saPreempt           = 0x04
	saPreemptAndAbort   = 0x05
	saRegisterAndIgnore = 0x06
	saRegisterAndMove   = 0x07
)

// Layout of the CDB and of the parameter lists (SPC-4 6.17.2-6.17.4);
// offsets double as sense-data field pointers.
const (
	cdbFieldServiceAction = 1
	cdbFieldScopeType     = 2

	basicParamListLength = 24
	paramFieldKey        = 0  // RESERVATION KEY
	paramFieldSARK       = 8  // SERVICE ACTION RESERVATION KEY
	paramFieldFlags      = 20 // SPEC_I_PT, ALL_TG_PT, APTPL
	flagSpecIPT          = 0x08
	flagAllTgPt          = 0x04
	flagAPTPL            = 0x01

	moveHeaderLength      = 24
	moveFieldFlags        = 17 // UNREG, APTPL
	flagUnreg             = 0x02
	moveFieldRelativePort = 18
	moveFieldTIDLength    = 20
	moveFieldTransportID  = 24
)

// proutRequest is a decoded PERSISTENT RESERVE OUT command.
type proutRequest struct {
	sa    uint8
	scope uint8
	typ   uint8
	key   uint64 // RESERVATION KEY
	sark  uint64 // SERVICE ACTION RESERVATION KEY
	aptpl bool
	// REGISTER AND MOVE only.
	unreg        bool
	relativePort uint16
	destPort     string // initiator port named by the TransportID
	destName     string
}

func serviceActionName(sa uint8) string {
	switch sa {
	case saRegister:
		return "REGISTER"
	case saReserve:
		return "RESERVE"
	case saRelease:
		return "RELEASE"
	case saClear:
		return "CLEAR"
	case saPreempt:
		return "PREEMPT"
	case saPreemptAndAbort:
		return "PREEMPT AND ABORT"
	case saRegisterAndIgnore:
		return "REGISTER AND IGNORE EXISTING KEY"
	case saRegisterAndMove:
		return "REGISTER AND MOVE"
	}
	return "unknown"
}

// decodeProut validates the CDB and the parameter list of a PERSISTENT
// RESERVE OUT command (SPC-4 6.17). param holds the Data-Out the initiator
// sent; the PARAMETER LIST LENGTH field of the CDB says how much of it
// counts.
func decodeProut(cdb, param []byte) (proutRequest, error) {
	var req proutRequest
	if len(cdb) < cdbLength {
		return req, invalidCDB(-1)
	}
	req.sa = cdb[1] & 0x1f
	req.scope = cdb[2] >> 4
	req.typ = cdb[2] & 0x0f
	if req.sa > saRegisterAndMove {
		return req, invalidCDB(cdbFieldServiceAction)
	}
	listLen := binary.BigEndian.Uint32(cdb[5:9])
	if uint64(len(param)) < uint64(listLen) {
		// The initiator sent less than the CDB announced.
		return req, paramListLength()
	}
	param = param[:listLen]
	if len(param) < basicParamListLength {
		return req, paramListLength()
	}
	req.key = binary.BigEndian.Uint64(param[paramFieldKey:])
	req.sark = binary.BigEndian.Uint64(param[paramFieldSARK:])
	if req.sa == saRegisterAndMove {
		return decodeRegisterAndMove(req, param)
	}
	flags := param[paramFieldFlags]
	if flags&flagSpecIPT != 0 {
		// Only REGISTER may use SPEC_I_PT, and this device server does not
		// implement it (SIP_C=0).
		return req, invalidParam(paramFieldFlags)
	}
	if len(param) != basicParamListLength {
		return req, paramListLength()
	}
	if flags&flagAllTgPt != 0 && (req.sa == saRegister || req.sa == saRegisterAndIgnore) {
		// ATP_C=0: registrations are per I_T nexus only. ALL_TG_PT is
		// ignored by the other service actions.
		return req, invalidParam(paramFieldFlags)
	}
	req.aptpl = flags&flagAPTPL != 0
	switch req.sa {
	case saReserve, saPreempt, saPreemptAndAbort:
		if req.scope != scopeLU || !validType(req.typ) {
			return req, invalidCDB(cdbFieldScopeType)
		}
	}
	return req, nil
}

// decodeRegisterAndMove reads the REGISTER AND MOVE parameter list: the
// 24-byte header and the TransportID of the destination initiator port.
func decodeRegisterAndMove(req proutRequest, param []byte) (proutRequest, error) {
	flags := param[moveFieldFlags]
	req.unreg = flags&flagUnreg != 0
	req.aptpl = flags&flagAPTPL != 0
	req.relativePort = binary.BigEndian.Uint16(param[moveFieldRelativePort:])
	tidLen := uint64(binary.BigEndian.Uint32(param[moveFieldTIDLength:]))
	if moveHeaderLength+tidLen > uint64(len(param)) {
		return req, paramListLength()
	}
	port, name, err := decodeTransportID(param[moveHeaderLength : moveHeaderLength+int(tidLen)])
	if err != nil {
		var te *tidError
		if errors.As(err, &te) {
			return req, invalidParam(moveFieldTransportID + te.field)
		}
		return req, invalidParam(moveFieldTransportID)
	}
	req.destPort, req.destName = port, name
	return req, nil
}
