package scsi

// Commands about the state of the logical unit rather than its data:
// TEST UNIT READY, REQUEST SENSE, START STOP UNIT, PREVENT ALLOW MEDIUM
// REMOVAL.

// cmdTestUnitReady is TEST UNIT READY (SPC-4 6.47). The medium is always
// present; unit attentions and access states are handled by the dispatcher.
func cmdTestUnitReady(*task) ([]byte, error) { return nil, nil }

// cmdRequestSense is REQUEST SENSE (SPC-4 6.39): it returns, and clears, the
// pending unit attention of the I_T nexus, or NO SENSE.
func cmdRequestSense(t *task) ([]byte, error) {
	descriptor := t.cdb[1]&0x01 != 0
	alloc := uint32(t.cdb[4])
	var sense *senseError
	switch {
	case t.lu == nil:
		sense = newSense(senseIllegalRequest, ascLUNotSupported)
	default:
		if code, ok := t.lu.popUA(t.nexus); ok {
			sense = newSense(senseUnitAttention, code)
		} else {
			sense = noSense()
		}
	}
	return cut(sense.encode(descriptor), alloc), nil
}

// Power conditions of START STOP UNIT accepted without effect (SBC-3
// table 95): START_VALID, ACTIVE, IDLE, STANDBY, LU_CONTROL, FORCE_IDLE_0,
// FORCE_STANDBY_0.
var validPowerConditions = [16]bool{0: true, 1: true, 2: true, 3: true, 7: true, 0xa: true, 0xb: true}

// cmdStartStopUnit is START STOP UNIT (SBC-3 5.25). The disk has no spindle
// and no removable medium: starting and stopping only flush the cache (a
// stop without NO_FLUSH makes written data durable first). LOEJ asks to load
// or eject a medium that cannot be removed; the request is accepted as a
// no-op unless an I_T nexus prevents medium removal.
func cmdStartStopUnit(t *task) ([]byte, error) {
	pc := t.cdb[4] >> 4
	if !validPowerConditions[pc] {
		return nil, invalidCDB(4, 7)
	}
	noFlush := t.cdb[4]&0x04 != 0
	loej := t.cdb[4]&0x02 != 0
	start := t.cdb[4]&0x01 != 0
	if pc == 0 && loej && !start && t.lu.removalPrevented() {
		return nil, newSense(senseIllegalRequest, ascMediumRemovalPrevented)
	}
	if pc == 0 && !start && !noFlush {
		if err := t.lu.flush(); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// cmdPreventAllow is PREVENT ALLOW MEDIUM REMOVAL (SBC-3 5.11). The state is
// kept per I_T nexus; removal is prevented while any nexus prevents it.
func cmdPreventAllow(t *task) ([]byte, error) {
	prevent := t.cdb[4] & 0x03
	if prevent > 1 {
		return nil, invalidCDB(4, 1)
	}
	t.lu.mu.Lock()
	t.lu.nexusLocked(t.nexus).prevent = prevent == 1
	t.lu.mu.Unlock()
	return nil, nil
}

// removalPrevented reports whether any I_T nexus prevents medium removal.
func (lu *LU) removalPrevented() bool {
	lu.mu.Lock()
	defer lu.mu.Unlock()
	for _, nx := range lu.nexuses {
		if nx.prevent {
			return true
		}
	}
	return false
}
