package scsi

import (
	"errors"

	"github.com/rbdgw/rbdgw/rbdbackend"
)

// This file is the one place where storage errors become sense data.

// ioKind tells the mapping which medium error to report.
type ioKind uint8

const (
	ioRead ioKind = iota
	ioWrite
)

// senseFromBackend maps an error of an rbdbackend.Image to the CHECK
// CONDITION the initiator sees.
//
//   - ErrOutOfRange: ILLEGAL REQUEST, LBA OUT OF RANGE (21h/00h). The range
//     checks run before any I/O, so this only happens when the image shrank
//     under a running command.
//   - ErrTimeout: NOT READY, LOGICAL UNIT IS IN PROCESS OF BECOMING READY
//     (04h/01h). Linux scsi_io_completion answers this sense with a delayed
//     retry on the same path (ACTION_DELAYED_RETRY) and does not count it as
//     a path failure, which is what a slow but healthy cluster needs: the
//     command is repeated a second later instead of failing the I/O or
//     making dm-multipath fail the path. UNIT ATTENTION would be retried too
//     but tells the initiator that device state changed, which is not true;
//     BUSY is retried without any delay.
//   - ErrLockLost: NOT READY, ASYMMETRIC ACCESS STATE TRANSITION (04h/0Ah).
//     Another gateway took the image; scsi_dh_alua retries the command and
//     re-reads the target port groups to find the new owner.
//   - ErrReadOnly: DATA PROTECT, WRITE PROTECTED (27h/00h).
//   - ErrMiscompare: MISCOMPARE, MISCOMPARE DURING VERIFY OPERATION
//     (1Dh/00h); the caller adds the offset.
//   - ErrClosed: ILLEGAL REQUEST, LOGICAL UNIT NOT SUPPORTED (25h/00h): the
//     logical unit is being removed.
//   - ErrUnsupported: ILLEGAL REQUEST, INVALID COMMAND OPERATION CODE.
//   - anything else: MEDIUM ERROR, UNRECOVERED READ ERROR (11h/00h) for
//     reads, WRITE ERROR (0Ch/00h) for writes.
func senseFromBackend(err error, kind ioKind) *senseError {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, rbdbackend.ErrOutOfRange):
		return errLBAOutOfRange()
	case errors.Is(err, rbdbackend.ErrTimeout):
		return newSense(senseNotReady, ascNotReadyBecomingReady)
	case errors.Is(err, rbdbackend.ErrLockLost):
		return newSense(senseNotReady, ascNotReadyTransition)
	case errors.Is(err, rbdbackend.ErrReadOnly):
		return newSense(senseDataProtect, ascWriteProtected)
	case errors.Is(err, rbdbackend.ErrMiscompare):
		return newSense(senseMiscompare, ascMiscompareDuringVerify)
	case errors.Is(err, rbdbackend.ErrClosed):
		return newSense(senseIllegalRequest, ascLUNotSupported)
	case errors.Is(err, rbdbackend.ErrUnsupported):
		return newSense(senseIllegalRequest, ascInvalidOpcode)
	case kind == ioWrite:
		return newSense(senseMediumError, ascWriteError)
	default:
		return newSense(senseMediumError, ascUnrecoveredReadError)
	}
}

// senseFromReservationStore maps a failure to read the reservation state
// (the conflict check of an ordinary command) to ABORTED COMMAND, LOGICAL
// UNIT COMMUNICATION FAILURE (08h/00h), the same answer the reservation
// commands give: initiators retry it.
func senseFromReservationStore(error) *senseError {
	return newSense(senseAbortedCommand, asc(0x0800))
}
