package scsi

import (
	"encoding/binary"
	"fmt"
)

// Sense keys (SPC-4 table 48).
const (
	senseNoSense        byte = 0x00
	senseRecoveredError byte = 0x01
	senseNotReady       byte = 0x02
	senseMediumError    byte = 0x03
	senseHardwareError  byte = 0x04
	senseIllegalRequest byte = 0x05
	senseUnitAttention  byte = 0x06
	senseDataProtect    byte = 0x07
	senseCopyAborted    byte = 0x0a
	senseAbortedCommand byte = 0x0b
	senseMiscompare     byte = 0x0e
)

// asc is an additional sense code and qualifier, ASC in the high byte.
type asc uint16

func (a asc) code() byte      { return byte(a >> 8) }
func (a asc) qualifier() byte { return byte(a) }

// Additional sense codes used by the device server (SPC-4 table 49).
const (
	ascNone                       asc = 0x0000
	ascOperationInProgress        asc = 0x0016
	ascNotReadyBecomingReady      asc = 0x0401
	ascNotReadyTransition         asc = 0x040a
	ascNotReadyStandby            asc = 0x040b
	ascNotReadyUnavailable        asc = 0x040c
	ascNotReadyOffline            asc = 0x0412
	ascCopyTargetUnreachable      asc = 0x0804
	ascCopyTargetNotReachable     asc = 0x0d02 // COPY TARGET DEVICE NOT REACHABLE
	ascWriteError                 asc = 0x0c00
	ascCopyTargetDataUnderrun     asc = 0x0d04 // COPY TARGET DEVICE DATA UNDERRUN
	ascInvalidFieldInIU           asc = 0x0e03
	ascUnrecoveredReadError       asc = 0x1100
	ascParameterListLength        asc = 0x1a00
	ascDefectListNotFound         asc = 0x1c00
	ascMiscompareDuringVerify     asc = 0x1d00
	ascInvalidOpcode              asc = 0x2000
	ascLBAOutOfRange              asc = 0x2100
	ascInvalidFieldInCDB          asc = 0x2400
	ascLUNotSupported             asc = 0x2500
	ascInvalidFieldInParam        asc = 0x2600
	ascTooManyTargetDescriptors   asc = 0x2606
	ascUnsupportedTargetDescType  asc = 0x2607
	ascTooManySegmentDescriptors  asc = 0x2608
	ascUnsupportedSegmentDescType asc = 0x2609
	ascWriteProtected             asc = 0x2700
	ascSoftwareWriteProtected     asc = 0x2702
	ascPowerOnReset               asc = 0x2900
	ascPowerOnOccurred            asc = 0x2901
	ascBusDeviceReset             asc = 0x2903
	ascModeParametersChanged      asc = 0x2a01
	ascAsymmetricAccessChanged    asc = 0x2a06
	ascCapacityChanged            asc = 0x2a09
	ascCommandsCleared            asc = 0x2f00
	ascSavingNotSupported         asc = 0x3900
	ascReportedLUNsChanged        asc = 0x3f0e
	ascInternalTargetFailure      asc = 0x4400
	ascOverlappedCommands         asc = 0x4e00
	ascMediumRemovalPrevented     asc = 0x5302
)

// senseError is a command that ends with CHECK CONDITION. Handlers return it
// as an error; Execute encodes it in the format the logical unit uses.
type senseError struct {
	key  byte
	code asc
	// info is the INFORMATION field, valid when hasInfo is set (LBA of a
	// medium error, offset of a miscompare).
	info    uint64
	hasInfo bool
	// field is the byte in error for the sense-key specific field pointer,
	// -1 when there is none; inCDB tells CDB (C/D=1) from parameter list.
	field int
	inCDB bool
	// bit is the bit in error within field, -1 when not given.
	bit int
}

func (e *senseError) Error() string {
	return fmt.Sprintf("check condition: sense key %#02x, ASC/ASCQ %02xh/%02xh", e.key, e.code.code(), e.code.qualifier())
}

func newSense(key byte, code asc) *senseError {
	return &senseError{key: key, code: code, field: -1, bit: -1}
}

// withInfo sets the INFORMATION field.
func (e *senseError) withInfo(v uint64) *senseError {
	e.info, e.hasInfo = v, true
	return e
}

// invalidCDB is INVALID FIELD IN CDB pointing at byte field, bit (-1: none).
func invalidCDB(field, bit int) *senseError {
	e := newSense(senseIllegalRequest, ascInvalidFieldInCDB)
	e.field, e.inCDB, e.bit = field, true, bit
	return e
}

// invalidParam is INVALID FIELD IN PARAMETER LIST pointing at byte field of
// the parameter list, bit (-1: none).
func invalidParam(field, bit int) *senseError {
	e := newSense(senseIllegalRequest, ascInvalidFieldInParam)
	e.field, e.bit = field, bit
	return e
}

// paramSense is an ILLEGAL REQUEST about the parameter list with the given
// code, pointing at byte field (-1: none).
func paramSense(code asc, field int) *senseError {
	e := newSense(senseIllegalRequest, code)
	e.field = field
	return e
}

func errLBAOutOfRange() *senseError { return newSense(senseIllegalRequest, ascLBAOutOfRange) }

func errParamListLength() *senseError {
	return newSense(senseIllegalRequest, ascParameterListLength)
}

// errDataOutLength: the initiator sent less (or, where the command needs an
// exact amount, other) Data-Out than the CDB describes.
func errDataOutLength() *senseError { return newSense(senseIllegalRequest, ascInvalidFieldInIU) }

// Sense data sizes.
const (
	fixedSenseLen      = 18
	senseDescInfoLen   = 12 // information descriptor
	senseDescSKSLen    = 8  // sense key specific descriptor
	senseDescHeaderLen = 8
)

// encode returns the sense data in descriptor format (SPC-4 4.5.2) when
// descriptor is set, else in fixed format (SPC-4 4.5.3).
func (e *senseError) encode(descriptor bool) []byte {
	sks, hasSKS := e.senseKeySpecific()
	if descriptor {
		b := make([]byte, senseDescHeaderLen, senseDescHeaderLen+senseDescInfoLen+senseDescSKSLen)
		b[0] = 0x72
		b[1] = e.key
		b[2] = e.code.code()
		b[3] = e.code.qualifier()
		if e.hasInfo {
			d := make([]byte, senseDescInfoLen)
			d[0] = 0x00 // information descriptor
			d[1] = senseDescInfoLen - 2
			d[2] = 0x80 // VALID
			binary.BigEndian.PutUint64(d[4:], e.info)
			b = append(b, d...)
		}
		if hasSKS {
			d := make([]byte, senseDescSKSLen)
			d[0] = 0x02 // sense key specific descriptor
			d[1] = senseDescSKSLen - 2
			copy(d[4:7], sks[:])
			b = append(b, d...)
		}
		b[7] = byte(len(b) - senseDescHeaderLen)
		return b
	}
	b := make([]byte, fixedSenseLen)
	b[0] = 0x70
	b[2] = e.key
	if e.hasInfo {
		b[0] |= 0x80 // VALID
		// The fixed format holds 32 bits; a larger value cannot be reported
		// there, so VALID stays clear (SPC-4 4.5.3).
		if e.info <= 0xffffffff {
			binary.BigEndian.PutUint32(b[3:7], uint32(e.info))
		} else {
			b[0] &^= 0x80
		}
	}
	b[7] = fixedSenseLen - 8
	b[12] = e.code.code()
	b[13] = e.code.qualifier()
	if hasSKS {
		copy(b[15:18], sks[:])
	}
	return b
}

// senseKeySpecific builds the 3-byte field pointer (SPC-4 4.5.2.4.2) for
// ILLEGAL REQUEST sense; other keys carry none here.
func (e *senseError) senseKeySpecific() ([3]byte, bool) {
	var s [3]byte
	if e.field < 0 || e.field > 0xffff {
		return s, false
	}
	s[0] = 0x80 // SKSV
	if e.inCDB {
		s[0] |= 0x40 // C/D
	}
	if e.bit >= 0 && e.bit <= 7 {
		s[0] |= 0x08 | byte(e.bit) // BPV, bit pointer
	}
	binary.BigEndian.PutUint16(s[1:], uint16(e.field))
	return s, true
}

// noSense is the sense data of REQUEST SENSE when nothing is pending.
func noSense() *senseError { return newSense(senseNoSense, ascNone) }
