package pr

// Access classifies a command for the reservation-conflict check. The
// caller maps each opcode to one class following SPC-4 table 45 (persistent
// reservations) and SPC-2 (RESERVE/RELEASE).
type Access uint8

const (
	// AccessAllowed never conflicts: INQUIRY, REPORT LUNS, REQUEST SENSE,
	// READ CAPACITY, REPORT TARGET PORT GROUPS, LOG SENSE, and the
	// reservation commands themselves (PERSISTENT RESERVE IN/OUT,
	// RESERVE, RELEASE), which apply their own rules.
	AccessAllowed Access = iota
	// AccessRead reads the medium or device state: READ*, VERIFY,
	// PRE-FETCH, GET LBA STATUS, MODE SENSE, READ BUFFER, RECEIVE
	// DIAGNOSTIC RESULTS. Allowed through Write Exclusive types, conflicts
	// through Exclusive Access types.
	AccessRead
	// AccessWrite changes the medium: WRITE*, WRITE SAME, UNMAP, COMPARE
	// AND WRITE, SYNCHRONIZE CACHE, EXTENDED COPY, FORMAT UNIT.
	AccessWrite
	// AccessOther changes device state other than the medium (MODE SELECT,
	// WRITE BUFFER, SEND DIAGNOSTIC, START STOP UNIT, ...): conflicts like
	// a write under every reservation.
	AccessOther
	// AccessSPC2Only is allowed through every persistent reservation type
	// but conflicts with an SPC-2 reservation held by another I_T nexus:
	// TEST UNIT READY.
	AccessSPC2Only
)

func (a Access) String() string {
	switch a {
	case AccessAllowed:
		return "allowed"
	case AccessRead:
		return "read"
	case AccessWrite:
		return "write"
	case AccessOther:
		return "other"
	case AccessSPC2Only:
		return "spc2-only"
	}
	return "unknown"
}

// conflicts applies the SPC-2 and SPC-4 conflict rules to a command of
// class a from p.
func conflicts(st *State, p Port, a Access) bool {
	if a == AccessAllowed {
		return false
	}
	if st.Legacy != nil {
		// SPC-2: while reserved, every command from another I_T nexus
		// conflicts, except the few that are always allowed.
		return !st.Legacy.Same(p)
	}
	r := st.Reservation
	if r == nil || a == AccessSPC2Only || st.isHolder(p) {
		return false
	}
	// p is not a holder. Registrants-only and all-registrants types give
	// every registered I_T nexus full access (for all-registrants types a
	// registrant is a holder, handled above).
	if isRegistrantsOnly(r.Type) && st.isRegistered(p) {
		return false
	}
	switch r.Type {
	case TypeWriteExclusive, TypeWriteExclusiveRegsOnly, TypeWriteExclusiveAllRegs:
		return a != AccessRead
	default: // the Exclusive Access types
		return true
	}
}
