package pr

import (
	"slices"
)

// effects are what a transition does to I_T nexuses other than the one the
// command came from.
type effects struct {
	uas []UnitAttention
	// preempted are the other I_T nexuses whose registrations a PREEMPT
	// removed (their tasks are aborted by PREEMPT AND ABORT).
	preempted []Port
}

func (e *effects) attention(p Port, ascq uint8) {
	ua := UnitAttention{InitiatorPort: p.InitiatorPort, TargetPort: p.TargetPort, ASC: ASCReservations, ASCQ: ascq}
	for _, u := range e.uas {
		if u.ASCQ == ascq && SameName(u.InitiatorPort, ua.InitiatorPort) &&
			SameName(u.TargetPort, ua.TargetPort) {
			return
		}
	}
	e.uas = append(e.uas, ua)
}

// attentionOthers establishes ascq for every registered I_T nexus but p.
func (e *effects) attentionOthers(st *State, p Port, ascq uint8) {
	for _, r := range st.Registrations {
		if !r.Port.Same(p) {
			e.attention(r.Port, ascq)
		}
	}
}

// portResolver maps a RELATIVE TARGET PORT IDENTIFIER to the target port
// name, for REGISTER AND MOVE.
type portResolver func(relativePortID uint16) (targetPort string, ok bool)

// applyProut performs one PERSISTENT RESERVE OUT service action on st for
// the I_T nexus p (SPC-4 5.13). On error st must be discarded.
func applyProut(st *State, p Port, req proutRequest, resolve portResolver) (effects, error) {
	switch req.sa {
	case saRegister:
		return register(st, p, req, false)
	case saRegisterAndIgnore:
		return register(st, p, req, true)
	case saReserve:
		return reserve(st, p, req)
	case saRelease:
		return release(st, p, req)
	case saClear:
		return clearAll(st, p, req)
	case saPreempt, saPreemptAndAbort:
		return preempt(st, p, req)
	case saRegisterAndMove:
		return registerAndMove(st, p, req, resolve)
	}
	return effects{}, invalidCDB(cdbFieldServiceAction)
}

// registeredWithKey returns p's registration index when p is registered
// with key; any other case is a RESERVATION CONFLICT.
func registeredWithKey(st *State, p Port, key uint64) (int, error) {
	i := st.registration(p)
	if i < 0 || st.Registrations[i].Key != key {
		return -1, conflict()
	}
	return i, nil
}

// register handles REGISTER and REGISTER AND IGNORE EXISTING KEY (SPC-4
// 5.13.7): register, change the key, or unregister the I_T nexus.
func register(st *State, p Port, req proutRequest, ignoreKey bool) (effects, error) {
	var e effects
	i := st.registration(p)
	switch {
	case i < 0:
		if !ignoreKey && req.key != 0 {
			return e, conflict()
		}
		if req.sark == 0 {
			return e, nil // nothing to register, nothing changes
		}
		if len(st.Registrations) >= maxRegistrations {
			return e, insufficientRegistrations()
		}
		st.Registrations = append(st.Registrations, Registration{Key: req.sark, Port: p})
	case !ignoreKey && req.key != st.Registrations[i].Key:
		return e, conflict()
	case req.sark != 0:
		st.Registrations[i].Key = req.sark
		if r := st.Reservation; r != nil && !r.AllRegistrants && r.Holder.Same(p) {
			r.Key = req.sark // the holder keeps its reservation under its new key
		}
	default:
		unregister(st, i, &e)
	}
	st.APTPL = req.aptpl
	st.Generation++
	return e, nil
}

// unregister removes registration i and what depends on it (SPC-4
// 5.13.11.3): the reservation of a holder that is not all-registrants is
// released, with RESERVATIONS RELEASED to the other registrants for the
// registrants-only types; an all-registrants reservation ends with its last
// registrant.
func unregister(st *State, i int, e *effects) {
	gone := st.Registrations[i].Port
	st.Registrations = slices.Delete(st.Registrations, i, i+1)
	r := st.Reservation
	switch {
	case r == nil:
	case r.AllRegistrants:
		dropOrphanReservation(st)
	case r.Holder.Same(gone):
		st.Reservation = nil
		if isRegistrantsOnly(r.Type) {
			e.attentionOthers(st, gone, ASCQReservationsReleased)
		}
	}
}

// dropOrphanReservation keeps the reservation consistent after
// registrations were removed: an all-registrants reservation needs a
// registrant, any other needs its holder.
func dropOrphanReservation(st *State) {
	r := st.Reservation
	if r == nil {
		return
	}
	if !r.AllRegistrants {
		if !st.isRegistered(r.Holder) {
			st.Reservation = nil
		}
		return
	}
	if len(st.Registrations) == 0 {
		st.Reservation = nil
		return
	}
	if !st.isRegistered(r.Holder) {
		r.Holder = st.Registrations[0].Port
	}
}

// reserve handles RESERVE (SPC-4 5.13.9).
func reserve(st *State, p Port, req proutRequest) (effects, error) {
	i, err := registeredWithKey(st, p, req.key)
	if err != nil {
		return effects{}, err
	}
	if r := st.Reservation; r != nil {
		// Only a holder may repeat its own reservation; nobody may change
		// the type of an existing one.
		if !st.isHolder(p) || r.Type != req.typ {
			return effects{}, conflict()
		}
		return effects{}, nil
	}
	st.Reservation = newReservation(p, st.Registrations[i].Key, req.typ)
	return effects{}, nil
}

// release handles RELEASE (SPC-4 5.13.11.2).
func release(st *State, p Port, req proutRequest) (effects, error) {
	var e effects
	if _, err := registeredWithKey(st, p, req.key); err != nil {
		return e, err
	}
	r := st.Reservation
	if r == nil || !st.isHolder(p) {
		return e, nil // nothing of p's to release
	}
	if req.scope != scopeLU || req.typ != r.Type {
		return e, invalidRelease()
	}
	st.Reservation = nil
	if isRegistrantsOnly(r.Type) || r.AllRegistrants {
		e.attentionOthers(st, p, ASCQReservationsReleased)
	}
	return e, nil
}

// clearAll handles CLEAR (SPC-4 5.13.11.6): every registration and the
// reservation go, the other registrants get RESERVATIONS PREEMPTED.
func clearAll(st *State, p Port, req proutRequest) (effects, error) {
	var e effects
	if _, err := registeredWithKey(st, p, req.key); err != nil {
		return e, err
	}
	e.attentionOthers(st, p, ASCQReservationsPreempted)
	st.Registrations = nil
	st.Reservation = nil
	st.Generation++
	return e, nil
}

// preempt handles PREEMPT and PREEMPT AND ABORT (SPC-4 5.13.11.4).
func preempt(st *State, p Port, req proutRequest) (effects, error) {
	var e effects
	i, err := registeredWithKey(st, p, req.key)
	if err != nil {
		return e, err
	}
	self := st.Registrations[i]
	r := st.Reservation
	switch {
	case r != nil && r.AllRegistrants && req.sark == 0:
		// Take over an all-registrants reservation: every other
		// registration goes.
		preemptReservation(st, self, req.typ, func(Registration) bool { return true }, &e)
	case r != nil && !r.AllRegistrants && req.sark == r.Key:
		// The key names the holder: take over its reservation and remove
		// every other registration with that key.
		preemptReservation(st, self, req.typ, func(o Registration) bool { return o.Key == req.sark }, &e)
	case req.sark == 0:
		return e, invalidParam(paramFieldSARK)
	default:
		// The key names no holder: only registrations go, the reservation
		// (if any) stays.
		if err := removeRegistrations(st, self.Port, req.sark, &e); err != nil {
			return e, err
		}
	}
	st.Generation++
	return e, nil
}

// preemptReservation releases the reservation, removes the other
// registrations that match, and establishes typ for self.
func preemptReservation(st *State, self Registration, typ uint8, match func(Registration) bool, e *effects) {
	oldType := st.Reservation.Type
	kept := make([]Registration, 0, len(st.Registrations))
	for _, o := range st.Registrations {
		if !o.Port.Same(self.Port) && match(o) {
			e.preempted = append(e.preempted, o.Port)
			e.attention(o.Port, ASCQRegistrationsPreempted)
			continue
		}
		kept = append(kept, o)
	}
	st.Registrations = kept
	st.Reservation = newReservation(self.Port, self.Key, typ)
	if oldType != typ {
		e.attentionOthers(st, self.Port, ASCQReservationsReleased)
	}
}

// removeRegistrations removes every registration with key, the issuer's
// included; a key that matches nothing is a RESERVATION CONFLICT.
func removeRegistrations(st *State, issuer Port, key uint64, e *effects) error {
	kept := make([]Registration, 0, len(st.Registrations))
	removed := 0
	for _, o := range st.Registrations {
		if o.Key != key {
			kept = append(kept, o)
			continue
		}
		removed++
		if !o.Port.Same(issuer) {
			e.preempted = append(e.preempted, o.Port)
			e.attention(o.Port, ASCQRegistrationsPreempted)
		}
	}
	if removed == 0 {
		return conflict()
	}
	st.Registrations = kept
	dropOrphanReservation(st)
	return nil
}

// registerAndMove handles REGISTER AND MOVE (SPC-4 5.13.8): the holder
// registers another I_T nexus and hands its reservation over to it.
func registerAndMove(st *State, p Port, req proutRequest, resolve portResolver) (effects, error) {
	i, err := registeredWithKey(st, p, req.key)
	if err != nil {
		return effects{}, err
	}
	if req.sark == 0 {
		return effects{}, invalidParam(paramFieldSARK)
	}
	targetPort, ok := resolve(req.relativePort)
	if !ok {
		return effects{}, invalidParam(moveFieldRelativePort)
	}
	if SameName(req.destPort, p.InitiatorPort) {
		return effects{}, invalidParam(moveFieldTransportID)
	}
	r := st.Reservation
	if r == nil {
		return effects{}, invalidCDB(-1)
	}
	if !st.isHolder(p) || r.AllRegistrants {
		return effects{}, conflict()
	}
	dest := Port{
		InitiatorPort: req.destPort, InitiatorName: req.destName,
		TargetPort: targetPort, RelativePortID: req.relativePort,
	}
	j := st.registration(dest)
	if j < 0 {
		if len(st.Registrations) >= maxRegistrations {
			return effects{}, insufficientRegistrations()
		}
		st.Registrations = append(st.Registrations, Registration{Key: req.sark, Port: dest})
		j = len(st.Registrations) - 1
	}
	// The reservation keeps its type and scope (the CDB's are ignored).
	st.Reservation = &Reservation{Holder: st.Registrations[j].Port, Key: st.Registrations[j].Key, Type: r.Type}
	if req.unreg {
		st.Registrations = slices.Delete(st.Registrations, i, i+1)
	}
	st.APTPL = req.aptpl
	st.Generation++
	return effects{}, nil
}
