package scsi

import "github.com/rbdgw/rbdgw/gateway/internal/scsi/pr"

// PERSISTENT RESERVE IN/OUT and RESERVE/RELEASE(6/10): the reservation rules
// live in package pr; this file turns its outcomes into results and side
// effects.

// cmdPersistentReserveIn is PERSISTENT RESERVE IN (SPC-4 6.15).
func cmdPersistentReserveIn(t *task) ([]byte, error) {
	out := t.lu.pr.In(t.ctx, portOf(t.nexus), t.cdb)
	data, err := t.applyOutcome(out)
	return cut(data, uint32(be16(t.cdb[7:9]))), err
}

// cmdPersistentReserveOut is PERSISTENT RESERVE OUT (SPC-4 6.16).
func cmdPersistentReserveOut(t *task) ([]byte, error) {
	param, err := t.dataOut(uint64(be32(t.cdb[5:9])))
	if err != nil {
		return nil, err
	}
	_, err = t.applyOutcome(t.lu.pr.Out(t.ctx, portOf(t.nexus), t.cdb, param))
	return nil, err
}

// cmdReserve is RESERVE(6) and RESERVE(10) (SPC-2 7.21, 7.22).
func cmdReserve(t *task) ([]byte, error) {
	_, err := t.applyOutcome(t.lu.pr.Reserve(t.ctx, portOf(t.nexus)))
	return nil, err
}

// cmdRelease is RELEASE(6) and RELEASE(10) (SPC-2 7.17, 7.18).
func cmdRelease(t *task) ([]byte, error) {
	_, err := t.applyOutcome(t.lu.pr.Release(t.ctx, portOf(t.nexus)))
	return nil, err
}

// applyOutcome queues the unit attentions and aborts the tasks a
// reservation command asked for, and maps its status.
func (t *task) applyOutcome(out pr.Outcome) ([]byte, error) {
	for _, ua := range out.UAs {
		t.lu.queueUAFor(ua)
	}
	if len(out.AbortTasksOf) > 0 || len(out.AbortNexuses) > 0 {
		t.lu.preemptAndAbort(t.nexus, out)
	}
	switch out.Status {
	case pr.StatusGood:
		return out.Data, nil
	case pr.StatusReservationConflict:
		return nil, errReservationConflict
	}
	e := newSense(out.SenseKey, asc(uint16(out.ASC)<<8|uint16(out.ASCQ)))
	if out.FieldPointer >= 0 {
		e.field, e.inCDB = out.FieldPointer, out.InCDB
	}
	return nil, e
}

// queueUAFor establishes the unit attention on the I_T nexus it names.
func (lu *LU) queueUAFor(ua pr.UnitAttention) {
	code := asc(uint16(ua.ASC)<<8 | uint16(ua.ASCQ))
	lu.mu.Lock()
	defer lu.mu.Unlock()
	for _, nx := range lu.nexuses {
		if pr.SameName(nx.port.InitiatorPort, ua.InitiatorPort) &&
			(ua.TargetPort == "" || pr.SameName(nx.port.TargetPort, ua.TargetPort)) {
			lu.addUALocked(nx, code)
		}
	}
}

// PeerReservation applies the effects of a PERSISTENT RESERVE OUT executed
// through another gateway's target port to the I_T nexuses here: its unit
// attentions, and for PREEMPT AND ABORT the aborted tasks. It returns once
// those tasks can no longer touch the medium, so that the other gateway
// completes the command only after that.
func (lu *LU) PeerReservation(eff pr.Effects) {
	for _, ua := range eff.UAs {
		lu.queueUAFor(ua)
	}
	if len(eff.AbortTasksOf) > 0 || len(eff.AbortNexuses) > 0 {
		lu.preemptAndAbort(nil, pr.Outcome{AbortTasksOf: eff.AbortTasksOf, AbortNexuses: eff.AbortNexuses})
	}
}

// preemptAndAbort aborts the tasks of the I_T nexuses a PREEMPT AND ABORT
// preempted (SPC-4 5.13.11.2.4): with TAS=1 their initiators get TASK
// ABORTED, with TAS=0 they get COMMANDS CLEARED BY ANOTHER INITIATOR. The
// tasks of the issuing nexus (nil when it is another gateway's) are not
// aborted.
func (lu *LU) preemptAndAbort(issuer *Nexus, out pr.Outcome) {
	victims := make(map[string]bool)
	for _, p := range out.AbortNexuses {
		victims[pr.NameKey(p.InitiatorPort)+"|"+pr.NameKey(p.TargetPort)] = true
	}
	ports := make(map[string]bool)
	for _, p := range out.AbortTasksOf {
		ports[pr.NameKey(p)] = true
	}
	issuerKey := ""
	if issuer != nil {
		issuerKey = issuer.Key()
	}
	lu.mu.Lock()
	hit := make(map[string]bool) // nexus keys whose tasks are aborted
	for key, nx := range lu.nexuses {
		if key == issuerKey {
			continue
		}
		ip, tp := pr.NameKey(nx.port.InitiatorPort), pr.NameKey(nx.port.TargetPort)
		if victims[ip+"|"+tp] || (len(out.AbortNexuses) == 0 && ports[ip]) {
			hit[key] = true
		}
	}
	lu.mu.Unlock()
	if len(hit) == 0 {
		return
	}
	tas := lu.modeFlags.Load()&modeTAS != 0
	aborted := lu.tasks.abort(func(e *taskEntry) bool { return hit[e.key.nexus] },
		func(*taskEntry) bool { return tas })
	if !tas {
		lu.uaForAborted(aborted, ascCommandsCleared)
	}
	// The preempted nexuses must not change the medium after the command
	// completed; the issuing task is not among them, so this cannot wait
	// for itself.
	waitDone(aborted)
}

// uaForAborted establishes code on the I_T nexuses of the aborted tasks.
func (lu *LU) uaForAborted(aborted []*taskEntry, code asc) {
	if len(aborted) == 0 {
		return
	}
	lu.mu.Lock()
	defer lu.mu.Unlock()
	for _, e := range aborted {
		if nx := lu.nexuses[e.key.nexus]; nx != nil {
			lu.addUALocked(nx, code)
		}
	}
}
