package scsi

import "context"

// TaskManagement performs a task management function (SAM-5 7) for the I_T
// nexus n. It returns once the aborted tasks have stopped, so that the
// response tells the initiator that none of them will touch the medium
// again.
func (t *Target) TaskManagement(n *Nexus, fn TMFunction, lun uint64, refTag uint32) TMFResponse {
	if n == nil {
		return TMFRejected
	}
	switch fn {
	case TMFTargetWarmReset, TMFTargetColdReset:
		// SAM-5: a warm reset reports POWER ON, RESET, OR BUS DEVICE RESET
		// OCCURRED, a cold reset POWER ON OCCURRED. SCSI BUS RESET OCCURRED
		// (29h/02h) describes a parallel bus reset, which iSCSI has not.
		code := ascPowerOnReset
		if fn == TMFTargetColdReset {
			code = ascPowerOnOccurred
		}
		// Only the logical units the nexus sees: an initiator must not
		// reset, and end the reservations of, logical units masked from
		// it.
		lus := t.visible(n)
		t.log.Info("target reset", "initiator", n.InitiatorPort(), "cold", fn == TMFTargetColdReset)
		for _, lu := range lus {
			lu.resetTasks(n)
		}
		for _, lu := range lus {
			lu.reset(context.Background(), code)
			t.notifyReset(lu)
		}
		return TMFComplete
	case TMFClearACA:
		return TMFNotSupported // NACA is refused, so no ACA condition exists
	case TMFTaskReassign:
		return TMFReassignUnsupported
	case TMFAbortTask, TMFAbortTaskSet, TMFClearTaskSet, TMFLUReset:
	default:
		return TMFNotSupported
	}
	lu := t.luFor(n, lun)
	if lu == nil {
		return TMFLUNNotExist
	}
	key := n.Key()
	switch fn {
	case TMFAbortTask:
		k := taskKey{nexus: key, tag: refTag}
		e := lu.tasks.find(k)
		if e == nil {
			return TMFTaskNotExist
		}
		// The key too: a task that left meanwhile may have been pooled
		// and e be another task's entry by now.
		waitDone(lu.tasks.abort(func(c *taskEntry) bool { return c == e && c.key == k },
			func(*taskEntry) bool { return false }))
	case TMFAbortTaskSet:
		waitDone(lu.tasks.abort(func(c *taskEntry) bool { return c.key.nexus == key },
			func(*taskEntry) bool { return false }))
	case TMFClearTaskSet:
		lu.clearTaskSet(key)
	case TMFLUReset:
		t.log.Info("logical unit reset", "lu", lu.Name(), "initiator", n.InitiatorPort())
		lu.resetTasks(n)
		lu.reset(context.Background(), ascBusDeviceReset)
		t.notifyReset(lu)
	}
	return TMFComplete
}

// clearTaskSet aborts every task of the logical unit (CLEAR TASK SET). Tasks
// of other I_T nexuses end with TASK ABORTED when TAS=1, or establish
// COMMANDS CLEARED BY ANOTHER INITIATOR when TAS=0.
func (lu *LU) clearTaskSet(issuer string) {
	tas := lu.modeFlags.Load()&modeTAS != 0
	aborted := lu.tasks.abort(func(*taskEntry) bool { return true },
		func(e *taskEntry) bool { return tas && e.key.nexus != issuer })
	if !tas {
		var others []*taskEntry
		for _, e := range aborted {
			if e.key.nexus != issuer {
				others = append(others, e)
			}
		}
		lu.uaForAborted(others, ascCommandsCleared)
	}
	waitDone(aborted)
}

// resetTasks aborts every task of the logical unit for a reset. Tasks of
// other I_T nexuses end with TASK ABORTED when TAS=1; their initiators learn
// about the reset from the unit attention either way.
func (lu *LU) resetTasks(issuer *Nexus) {
	key := issuer.Key()
	tas := lu.modeFlags.Load()&modeTAS != 0
	waitDone(lu.tasks.abort(func(*taskEntry) bool { return true },
		func(e *taskEntry) bool { return tas && e.key.nexus != key }))
}
