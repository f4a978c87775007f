package scsi

import "context"

// ResetNotifier is implemented by an ALUAProvider whose logical units are
// also reached through the target ports of other gateways (one device,
// several processes). The device server tells it about every logical unit
// reset it performs, so that the other gateways establish the reset's unit
// attention on their I_T nexuses too (they call LU.PeerReset).
type ResetNotifier interface {
	// LogicalUnitReset runs after lu was reset (LOGICAL UNIT RESET or a
	// target reset); the task management response waits for it.
	LogicalUnitReset(lu *LU)
}

// PeerReset applies a logical unit reset performed through another
// gateway's target port: the SPC-2 reservation ends, mode parameters
// return to their defaults and every I_T nexus here gets BUS DEVICE RESET
// FUNCTION OCCURRED. Tasks running here are not aborted; they complete.
func (lu *LU) PeerReset() {
	lu.reset(context.Background(), ascBusDeviceReset)
}

// notifyReset tells the ALUA provider, when it cares, that lu was reset.
func (t *Target) notifyReset(lu *LU) {
	if rn, ok := t.alua.(ResetNotifier); ok {
		rn.LogicalUnitReset(lu)
	}
}
