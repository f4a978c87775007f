package pr

import (
	"testing"
)

// Register behaviours (SPC-4 table 47 and libiscsi ProutRegister.Simple).
func TestRegister(t *testing.T) {
	const old, newKey = 0x1000, 0x2000
	tests := []struct {
		name       string
		registered bool // port(1) registered with old before the command
		sa         uint8
		key, sark  uint64
		wantStatus uint8
		wantKeys   []uint64
		wantGen    uint32 // generation change
	}{
		{"unregistered/register", false, saRegister, 0, newKey, StatusGood, []uint64{newKey}, 1},
		{"unregistered/key must be zero", false, saRegister, 5, newKey, StatusReservationConflict, nil, 0},
		{"unregistered/zero sark is a no-op", false, saRegister, 0, 0, StatusGood, nil, 0},
		{"unregistered/ignore any key", false, saRegisterAndIgnore, 5, newKey, StatusGood, []uint64{newKey}, 1},
		{"unregistered/ignore zero sark", false, saRegisterAndIgnore, 5, 0, StatusGood, nil, 0},
		{"registered/change key", true, saRegister, old, newKey, StatusGood, []uint64{newKey}, 1},
		{"registered/same key again", true, saRegister, old, old, StatusGood, []uint64{old}, 1},
		{"registered/wrong key", true, saRegister, old + 1, newKey, StatusReservationConflict, []uint64{old}, 0},
		{"registered/reregister with zero key", true, saRegister, 0, old + 1, StatusReservationConflict, []uint64{old}, 0},
		{"registered/unregister", true, saRegister, old, 0, StatusGood, nil, 1},
		{"registered/ignore existing key", true, saRegisterAndIgnore, 0, newKey, StatusGood, []uint64{newKey}, 1},
		{"registered/ignore and unregister", true, saRegisterAndIgnore, 99, 0, StatusGood, nil, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if tc.registered {
				h.register(port(1), old)
			}
			gen0, _ := h.keys()
			o := h.out(port(1), tc.sa, 0, basicParam(tc.key, tc.sark, 0))
			if o.Status != tc.wantStatus {
				t.Fatalf("status %#x, want %#x", o.Status, tc.wantStatus)
			}
			gen, keys := h.keys()
			if gen-gen0 != tc.wantGen {
				t.Fatalf("generation moved by %d, want %d", gen-gen0, tc.wantGen)
			}
			if len(keys) != len(tc.wantKeys) || (len(keys) == 1 && keys[0] != tc.wantKeys[0]) {
				t.Fatalf("keys %x, want %x", keys, tc.wantKeys)
			}
		})
	}
}

// A holder that changes its key keeps the reservation under the new key.
func TestRegisterHolderChangesKey(t *testing.T) {
	h := newHarness(t)
	h.register(port(1), 1)
	h.reserve(port(1), 1, TypeExclusiveAccess)
	h.mustGood(h.out(port(1), saRegister, 0, basicParam(1, 2, 0)), "REGISTER new key")
	if _, reserved, key, typ := h.reservation(); !reserved || key != 2 || typ != TypeExclusiveAccess {
		t.Fatalf("reservation %v key %d type %d after key change", reserved, key, typ)
	}
	if h.conflict(port(1), AccessWrite) {
		t.Fatal("holder lost access after changing its key")
	}
}

// Registrations belong to one I_T nexus: the same initiator through
// another target port, or with another ISID, is a different nexus.
func TestRegistrationPerNexus(t *testing.T) {
	h := newHarness(t)
	a1, a2 := portOn(1, 1), portOn(1, 2)
	other := a1
	other.InitiatorPort = a1.InitiatorName + ",i,0x00023d00ffff"
	h.register(a1, 0xa)
	h.reserve(a1, 0xa, TypeExclusiveAccess)
	for _, p := range []Port{a2, other} {
		if !h.conflict(p, AccessRead) {
			t.Fatalf("%s|%s shares the holder's access", p.InitiatorPort, p.TargetPort)
		}
		wantConflict(t, h.out(p, saReserve, TypeExclusiveAccess, basicParam(0xa, 0, 0)), "RESERVE through an unregistered nexus")
	}
	// Names compare case-insensitively (iSCSI names are normalised).
	upper := a1
	upper.InitiatorPort = "IQN.2024-01.ORG.EXAMPLE:INI1,i,0x00023D000001"
	if h.conflict(upper, AccessWrite) {
		t.Fatal("case of the initiator port name changed the nexus")
	}
}

func TestReserve(t *testing.T) {
	for _, typ := range allTypes {
		t.Run(typeName(typ), func(t *testing.T) {
			other := TypeExclusiveAccess
			if typ == other {
				other = TypeWriteExclusive
			}
			steps := []struct {
				name   string
				p      Port
				key    uint64
				typ    uint8
				status uint8
			}{
				{"unregistered nexus", port(3), 0, typ, StatusReservationConflict},
				{"wrong key", port(1), 0xbad, typ, StatusReservationConflict},
				{"reserve", port(1), 0xa, typ, StatusGood},
				{"holder repeats", port(1), 0xa, typ, StatusGood},
				{"holder changes type", port(1), 0xa, other, StatusReservationConflict},
				{"other registrant, other type", port(2), 0xb, other, StatusReservationConflict},
			}
			h := newHarness(t)
			h.register(port(1), 0xa)
			h.register(port(2), 0xb)
			gen0, _ := h.keys()
			for _, s := range steps {
				o := h.out(s.p, saReserve, s.typ, basicParam(s.key, 0, 0))
				if o.Status != s.status {
					t.Fatalf("%s: status %#x, want %#x", s.name, o.Status, s.status)
				}
			}
			// Another registrant repeating the same type is a holder only for
			// the all-registrants types.
			o := h.out(port(2), saReserve, typ, basicParam(0xb, 0, 0))
			want := StatusReservationConflict
			if isAllRegistrants(typ) {
				want = StatusGood
			}
			if o.Status != want {
				t.Fatalf("second registrant RESERVE: status %#x, want %#x", o.Status, want)
			}
			if gen, _ := h.keys(); gen != gen0 {
				t.Fatalf("RESERVE moved the generation from %d to %d", gen0, gen)
			}
		})
	}
}

func TestReserveInvalidScopeOrType(t *testing.T) {
	h := newHarness(t)
	h.register(port(1), 1)
	for _, typ := range []uint8{0, 2, 4, 9, 0xf, 0x11 /* scope 1 */, 0x21} {
		for _, sa := range []uint8{saReserve, saPreempt, saPreemptAndAbort} {
			o := h.out(port(1), sa, typ, basicParam(1, 1, 0))
			wantCheck(t, o, SenseIllegalRequest, ascInvalidFieldInCDB, 0, cdbFieldScopeType, true)
		}
	}
}

func TestRelease(t *testing.T) {
	for _, typ := range allTypes {
		t.Run(typeName(typ), func(t *testing.T) {
			h := newHarness(t)
			a, b, c := port(1), port(2), port(3)
			h.register(a, 0xa)
			h.register(b, 0xb)
			h.reserve(a, 0xa, typ)

			wantConflict(t, h.out(c, saRelease, typ, basicParam(0, 0, 0)), "RELEASE unregistered")
			wantConflict(t, h.out(a, saRelease, typ, basicParam(0xbad, 0, 0)), "RELEASE wrong key")
			wrong := TypeWriteExclusive
			if typ == wrong {
				wrong = TypeExclusiveAccess
			}
			wantCheck(t, h.out(a, saRelease, wrong, basicParam(0xa, 0, 0)),
				SenseIllegalRequest, ascInvalidFieldInParam, ascqInvalidRelease, -1, false)
			wantCheck(t, h.out(a, saRelease, 0x10|typ, basicParam(0xa, 0, 0)),
				SenseIllegalRequest, ascInvalidFieldInParam, ascqInvalidRelease, -1, false)

			if !isAllRegistrants(typ) {
				// A registrant that is not the holder releases nothing.
				o := h.release(b, 0xb, typ)
				if len(o.UAs) != 0 {
					t.Fatalf("non-holder RELEASE queued %+v", o.UAs)
				}
				if _, reserved, _, _ := h.reservation(); !reserved {
					t.Fatal("non-holder RELEASE released the reservation")
				}
			}
			gen0, _ := h.keys()
			o := h.release(a, 0xa, typ)
			if _, reserved, _, _ := h.reservation(); reserved {
				t.Fatal("still reserved after RELEASE")
			}
			want := map[Port]uint8{}
			if isRegistrantsOnly(typ) || isAllRegistrants(typ) {
				want[b] = ASCQReservationsReleased
			}
			wantUAs(t, o.UAs, want)
			if gen, keys := h.keys(); gen != gen0 || len(keys) != 2 {
				t.Fatalf("RELEASE changed generation (%d->%d) or keys %x", gen0, gen, keys)
			}
			// Releasing again, or with no reservation, is GOOD.
			h.release(a, 0xa, typ)
		})
	}
}

// ProutClear.Simple and the unit attentions of CLEAR.
func TestClear(t *testing.T) {
	h := newHarness(t)
	a, b, c := port(1), port(2), port(3)
	h.register(a, 0xa)
	h.register(b, 0xb)
	h.register(c, 0xc)
	h.reserve(a, 0xa, TypeExclusiveAccess)
	gen0, _ := h.keys()

	wantConflict(t, h.out(port(4), saClear, 0, basicParam(0, 0, 0)), "CLEAR unregistered")
	wantConflict(t, h.out(b, saClear, 0, basicParam(0xa, 0, 0)), "CLEAR wrong key")

	o := h.mustGood(h.out(b, saClear, 0, basicParam(0xb, 0, 0)), "CLEAR")
	wantUAs(t, o.UAs, map[Port]uint8{a: ASCQReservationsPreempted, c: ASCQReservationsPreempted})
	gen, keys := h.keys()
	if len(keys) != 0 || gen != gen0+1 {
		t.Fatalf("after CLEAR keys %x generation %d (was %d)", keys, gen, gen0)
	}
	if _, reserved, _, _ := h.reservation(); reserved {
		t.Fatal("reserved after CLEAR")
	}
	for _, p := range []Port{a, b, c} {
		if h.conflict(p, AccessWrite) {
			t.Fatal("conflict after CLEAR")
		}
	}
}

func TestPreempt(t *testing.T) {
	a, b, c := port(1), port(2), port(3)
	type setup struct {
		keys map[Port]uint64
		typ  uint8 // 0: no reservation; else a reserves
	}
	std := map[Port]uint64{a: 0xa, b: 0xb, c: 0xc}
	tests := []struct {
		name      string
		setup     setup
		by        Port
		key, sark uint64
		typ       uint8
		status    uint8
		asc       uint8 // for CHECK CONDITION
		field     int
		keysAfter map[Port]uint64
		holder    *Port // nil: not reserved after
		typAfter  uint8
		uas       map[Port]uint8
	}{
		{
			name: "no reservation, remove registration", setup: setup{std, 0},
			by: b, key: 0xb, sark: 0xa, typ: TypeExclusiveAccess, status: StatusGood,
			keysAfter: map[Port]uint64{b: 0xb, c: 0xc},
			uas:       map[Port]uint8{a: ASCQRegistrationsPreempted},
		},
		{
			name: "no reservation, own key removes own registration too", setup: setup{map[Port]uint64{a: 0xa, b: 0xa, c: 0xc}, 0},
			by: b, key: 0xa, sark: 0xa, typ: TypeExclusiveAccess, status: StatusGood,
			keysAfter: map[Port]uint64{c: 0xc},
			uas:       map[Port]uint8{a: ASCQRegistrationsPreempted},
		},
		{
			name: "no reservation, zero key", setup: setup{std, 0},
			by: b, key: 0xb, sark: 0, typ: TypeExclusiveAccess, status: StatusCheckCondition,
			asc: ascInvalidFieldInParam, field: paramFieldSARK, keysAfter: std,
		},
		{
			name: "no reservation, unknown key", setup: setup{std, 0},
			by: b, key: 0xb, sark: 0xdead, typ: TypeExclusiveAccess, status: StatusReservationConflict, keysAfter: std,
		},
		{
			name: "unregistered issuer", setup: setup{std, TypeWriteExclusive},
			by: port(4), key: 0, sark: 0xa, typ: TypeWriteExclusive, status: StatusReservationConflict,
			keysAfter: std, holder: &a, typAfter: TypeWriteExclusive,
		},
		{
			name: "wrong key", setup: setup{std, TypeWriteExclusive},
			by: b, key: 0xc, sark: 0xa, typ: TypeWriteExclusive, status: StatusReservationConflict,
			keysAfter: std, holder: &a, typAfter: TypeWriteExclusive,
		},
		{
			name: "take over holder, same type", setup: setup{std, TypeWriteExclusive},
			by: b, key: 0xb, sark: 0xa, typ: TypeWriteExclusive, status: StatusGood,
			keysAfter: map[Port]uint64{b: 0xb, c: 0xc}, holder: &b, typAfter: TypeWriteExclusive,
			uas: map[Port]uint8{a: ASCQRegistrationsPreempted},
		},
		{
			name: "take over holder, new type", setup: setup{std, TypeWriteExclusive},
			by: b, key: 0xb, sark: 0xa, typ: TypeExclusiveAccessRegsOnly, status: StatusGood,
			keysAfter: map[Port]uint64{b: 0xb, c: 0xc}, holder: &b, typAfter: TypeExclusiveAccessRegsOnly,
			uas: map[Port]uint8{a: ASCQRegistrationsPreempted, c: ASCQReservationsReleased},
		},
		{
			name: "holder preempts itself to change type", setup: setup{std, TypeExclusiveAccess},
			by: a, key: 0xa, sark: 0xa, typ: TypeWriteExclusive, status: StatusGood,
			keysAfter: std, holder: &a, typAfter: TypeWriteExclusive,
			uas: map[Port]uint8{b: ASCQReservationsReleased, c: ASCQReservationsReleased},
		},
		{
			name: "non-holder key removes registrations only", setup: setup{std, TypeExclusiveAccess},
			by: b, key: 0xb, sark: 0xc, typ: TypeWriteExclusive, status: StatusGood,
			keysAfter: map[Port]uint64{a: 0xa, b: 0xb}, holder: &a, typAfter: TypeExclusiveAccess,
			uas: map[Port]uint8{c: ASCQRegistrationsPreempted},
		},
		{
			name: "zero key with a reservation", setup: setup{std, TypeExclusiveAccess},
			by: b, key: 0xb, sark: 0, typ: TypeExclusiveAccess, status: StatusCheckCondition,
			asc: ascInvalidFieldInParam, field: paramFieldSARK, keysAfter: std, holder: &a, typAfter: TypeExclusiveAccess,
		},
		{
			name: "all registrants, zero key takes over", setup: setup{std, TypeWriteExclusiveAllRegs},
			by: b, key: 0xb, sark: 0, typ: TypeExclusiveAccess, status: StatusGood,
			keysAfter: map[Port]uint64{b: 0xb}, holder: &b, typAfter: TypeExclusiveAccess,
			uas: map[Port]uint8{a: ASCQRegistrationsPreempted, c: ASCQRegistrationsPreempted},
		},
		{
			name: "all registrants, key removes registrations only", setup: setup{std, TypeExclusiveAccessAllRegs},
			by: b, key: 0xb, sark: 0xa, typ: TypeWriteExclusive, status: StatusGood,
			keysAfter: map[Port]uint64{b: 0xb, c: 0xc}, holder: &b, typAfter: TypeExclusiveAccessAllRegs,
			uas: map[Port]uint8{a: ASCQRegistrationsPreempted},
		},
	}
	for _, tc := range tests {
		for _, sa := range []uint8{saPreempt, saPreemptAndAbort} {
			t.Run(serviceActionName(sa)+"/"+tc.name, func(t *testing.T) {
				h := newHarness(t)
				for _, p := range []Port{a, b, c} {
					if k, ok := tc.setup.keys[p]; ok {
						h.register(p, k)
					}
				}
				if tc.setup.typ != 0 {
					h.reserve(a, tc.setup.keys[a], tc.setup.typ)
				}
				gen0, _ := h.keys()
				o := h.out(tc.by, sa, tc.typ, basicParam(tc.key, tc.sark, 0))
				if o.Status != tc.status {
					t.Fatalf("status %#x sense %#x/%#x, want %#x", o.Status, o.SenseKey, o.ASC, tc.status)
				}
				if tc.status == StatusCheckCondition {
					wantCheck(t, o, SenseIllegalRequest, tc.asc, 0, tc.field, false)
				}
				wantUAs(t, o.UAs, tc.uas)
				st := h.state()
				if len(st.Registrations) != len(tc.keysAfter) {
					t.Fatalf("registrations %+v, want %v", st.Registrations, tc.keysAfter)
				}
				for p, k := range tc.keysAfter {
					i := st.registration(p)
					if i < 0 || st.Registrations[i].Key != k {
						t.Fatalf("registration of %s missing or wrong: %+v", p.InitiatorPort, st.Registrations)
					}
				}
				switch {
				case tc.holder == nil && st.Reservation != nil:
					t.Fatalf("reserved after: %+v", st.Reservation)
				case tc.holder != nil && (st.Reservation == nil || !st.isHolder(*tc.holder) || st.Reservation.Type != tc.typAfter):
					t.Fatalf("reservation %+v, want holder %s type %d", st.Reservation, tc.holder.InitiatorPort, tc.typAfter)
				}
				wantGen := gen0
				if tc.status == StatusGood {
					wantGen++
				}
				if st.Generation != wantGen {
					t.Fatalf("generation %d, want %d", st.Generation, wantGen)
				}
				// PREEMPT AND ABORT names the preempted nexuses (never the
				// issuer) so that their tasks are aborted.
				var wantAbort []string
				if sa == saPreemptAndAbort {
					for p, ascq := range tc.uas {
						if ascq == ASCQRegistrationsPreempted {
							wantAbort = append(wantAbort, p.InitiatorPort)
						}
					}
				}
				if len(o.AbortTasksOf) != len(wantAbort) || len(o.AbortNexuses) != len(wantAbort) {
					t.Fatalf("abort %v / %+v, want %v", o.AbortTasksOf, o.AbortNexuses, wantAbort)
				}
				for _, w := range wantAbort {
					found := false
					for _, g := range o.AbortTasksOf {
						found = found || g == w
					}
					if !found {
						t.Fatalf("abort %v lacks %s", o.AbortTasksOf, w)
					}
				}
			})
		}
	}
}

// ProutPreempt.RemoveRegistration as libiscsi runs it.
func TestPreemptRemoveRegistrationFlow(t *testing.T) {
	h := newHarness(t)
	sd, sd2 := port(1), port(2)
	const k1, k2 = 0x1111, 0x2222
	h.register(sd, k1)
	h.mustGood(h.out(sd, saClear, 0, basicParam(k1, 0, 0)), "CLEAR")
	h.register(sd, k1)
	h.register(sd2, k2)
	gen0, keys := h.keys()
	if len(keys) != 2 {
		t.Fatalf("keys %x", keys)
	}
	o := h.mustGood(h.out(sd2, saPreempt, TypeExclusiveAccess, basicParam(k2, k1, 0)), "PREEMPT")
	wantUAs(t, o.UAs, map[Port]uint8{sd: ASCQRegistrationsPreempted})
	gen, keys := h.keys()
	if gen != gen0+1 || len(keys) != 1 || keys[0] != k2 {
		t.Fatalf("after PREEMPT generation %d (was %d) keys %x", gen, gen0, keys)
	}
	h.unregister(sd2, k2)
}

func TestRegisterAndMove(t *testing.T) {
	a, b := portOn(1, 1), portOn(2, 2)
	bTID := encodeTransportID(b)
	tests := []struct {
		name    string
		typ     uint8  // reservation a holds; 0 none
		byB     bool   // command sent by b (registered, not holder)
		key     uint64 // RESERVATION KEY
		sark    uint64
		flags   byte
		rel     uint16
		tid     []byte
		status  uint8
		asc     uint8
		field   int
		inCDB   bool
		unregA  bool
		holderB bool
	}{
		{name: "move", typ: TypeExclusiveAccess, key: 0xa, sark: 0xb, rel: 2, tid: bTID, status: StatusGood, holderB: true},
		{name: "move and unregister", typ: TypeWriteExclusiveRegsOnly, key: 0xa, sark: 0xb, flags: flagUnreg, rel: 2, tid: bTID, status: StatusGood, holderB: true, unregA: true},
		{name: "wrong key", typ: TypeExclusiveAccess, key: 0xbad, sark: 0xb, rel: 2, tid: bTID, status: StatusReservationConflict},
		{name: "zero sark", typ: TypeExclusiveAccess, key: 0xa, sark: 0, rel: 2, tid: bTID, status: StatusCheckCondition, asc: ascInvalidFieldInParam, field: paramFieldSARK},
		{name: "unknown target port", typ: TypeExclusiveAccess, key: 0xa, sark: 0xb, rel: 9, tid: bTID, status: StatusCheckCondition, asc: ascInvalidFieldInParam, field: moveFieldRelativePort},
		{name: "to itself", typ: TypeExclusiveAccess, key: 0xa, sark: 0xb, rel: 2, tid: encodeTransportID(a), status: StatusCheckCondition, asc: ascInvalidFieldInParam, field: moveFieldTransportID},
		{name: "no reservation", typ: 0, key: 0xa, sark: 0xb, rel: 2, tid: bTID, status: StatusCheckCondition, asc: ascInvalidFieldInCDB, field: -1, inCDB: true},
		{name: "not the holder", typ: TypeExclusiveAccess, byB: true, key: 0xb, sark: 0xc, rel: 1, tid: encodeTransportID(portOn(3, 1)), status: StatusReservationConflict},
		{name: "all registrants", typ: TypeWriteExclusiveAllRegs, key: 0xa, sark: 0xb, rel: 2, tid: bTID, status: StatusReservationConflict},
		{name: "name-only TransportID", typ: TypeExclusiveAccess, key: 0xa, sark: 0xb, rel: 2, tid: encodeTransportID(Port{InitiatorName: b.InitiatorName}), status: StatusCheckCondition, asc: ascInvalidFieldInParam, field: moveFieldTransportID},
		{name: "empty TransportID", typ: TypeExclusiveAccess, key: 0xa, sark: 0xb, rel: 2, tid: nil, status: StatusCheckCondition, asc: ascInvalidFieldInParam, field: moveFieldTransportID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.register(a, 0xa)
			if tc.byB {
				h.register(b, 0xb)
			}
			if tc.typ != 0 {
				h.reserve(a, 0xa, tc.typ)
			}
			st0 := h.state()
			by := a
			if tc.byB {
				by = b
			}
			o := h.out(by, saRegisterAndMove, 0, moveParam(tc.key, tc.sark, tc.flags, tc.rel, tc.tid))
			if o.Status != tc.status {
				t.Fatalf("status %#x sense %#x/%#x, want %#x", o.Status, o.SenseKey, o.ASC, tc.status)
			}
			if tc.status == StatusCheckCondition {
				wantCheck(t, o, SenseIllegalRequest, tc.asc, 0, tc.field, tc.inCDB)
			}
			st := h.state()
			if tc.status != StatusGood {
				if st.Generation != st0.Generation || len(st.Registrations) != len(st0.Registrations) {
					t.Fatalf("failed REGISTER AND MOVE changed the state: %+v", st)
				}
				return
			}
			if st.Generation != st0.Generation+1 {
				t.Fatalf("generation %d, want %d", st.Generation, st0.Generation+1)
			}
			if tc.holderB {
				r := st.Reservation
				if r == nil || !r.Holder.Same(b) || r.Key != 0xb || r.Type != tc.typ {
					t.Fatalf("reservation after move %+v", r)
				}
				if i := st.registration(b); i < 0 || st.Registrations[i].Port.RelativePortID != 2 {
					t.Fatalf("destination not registered on port 2: %+v", st.Registrations)
				}
				if h.conflict(b, AccessWrite) || !h.conflict(portOn(2, 1), AccessWrite) {
					t.Fatal("access does not follow the moved reservation")
				}
			}
			if st.isRegistered(a) == tc.unregA {
				t.Fatalf("source registered = %v, want %v", st.isRegistered(a), !tc.unregA)
			}
		})
	}
}

// A destination that is already registered keeps its key.
func TestRegisterAndMoveToRegistered(t *testing.T) {
	h := newHarness(t)
	a, b := portOn(1, 1), portOn(2, 1)
	h.register(a, 0xa)
	h.register(b, 0xbb)
	h.reserve(a, 0xa, TypeWriteExclusive)
	h.mustGood(h.out(a, saRegisterAndMove, 0, moveParam(0xa, 0xb, 0, 1, encodeTransportID(b))), "REGISTER AND MOVE")
	st := h.state()
	if st.Reservation.Key != 0xbb || st.Registrations[st.registration(b)].Key != 0xbb {
		t.Fatalf("destination key changed: %+v", st)
	}
}

func TestRegisterAndMoveResolver(t *testing.T) {
	ctx := t.Context()
	dest := portOn(2, 7)
	m := NewManager(NewMemoryStore(), WithLogger(quietLogger()), WithTargetPorts(func(rel uint16) (string, bool) {
		return dest.TargetPort, rel == 7
	}))
	a := portOn(1, 1)
	mustGood := func(o Outcome) {
		t.Helper()
		if !o.Good() {
			t.Fatalf("status %#x %#x/%#x", o.Status, o.ASC, o.ASCQ)
		}
	}
	mustGood(m.Out(ctx, a, proutCDB(saRegister, 0, 24), basicParam(0, 0xa, 0)))
	mustGood(m.Out(ctx, a, proutCDB(saReserve, TypeExclusiveAccess, 24), basicParam(0xa, 0, 0)))
	p := moveParam(0xa, 0xb, 0, 7, encodeTransportID(dest))
	mustGood(m.Out(ctx, a, proutCDB(saRegisterAndMove, 0, uint32(len(p))), p))
	if c, _ := m.Conflict(ctx, dest, AccessWrite); c {
		t.Fatal("destination on the resolved port is not the holder")
	}
}

func TestParameterListLength(t *testing.T) {
	sas := []uint8{saRegister, saReserve, saRelease, saClear, saPreempt, saPreemptAndAbort, saRegisterAndIgnore}
	for _, sa := range sas {
		for _, n := range []int{0, 1, 8, 23, 25, 28, 32, 4096} {
			h := newHarness(t)
			param := make([]byte, n)
			o := h.m.Out(h.ctx, port(1), proutCDB(sa, TypeWriteExclusive, uint32(n)), param)
			wantCheck(t, o, SenseIllegalRequest, ascParameterListLength, 0, -1, false)
		}
		// The CDB announces more than the initiator sent.
		h := newHarness(t)
		o := h.m.Out(h.ctx, port(1), proutCDB(sa, TypeWriteExclusive, 24), make([]byte, 16))
		wantCheck(t, o, SenseIllegalRequest, ascParameterListLength, 0, -1, false)
		// Extra Data-Out beyond the announced length is ignored.
		o = h.m.Out(h.ctx, port(1), proutCDB(saRegister, 0, 24), append(basicParam(0, 1, 0), 0xff, 0xff))
		h.mustGood(o, "REGISTER with trailing data")
	}
	for _, n := range []int{0, 23} {
		h := newHarness(t)
		o := h.m.Out(h.ctx, port(1), proutCDB(saRegisterAndMove, 0, uint32(n)), make([]byte, n))
		wantCheck(t, o, SenseIllegalRequest, ascParameterListLength, 0, -1, false)
	}
	// REGISTER AND MOVE whose TransportID length runs past the list.
	h := newHarness(t)
	p := moveParam(0, 1, 0, 1, encodeTransportID(port(2)))
	o := h.m.Out(h.ctx, port(1), proutCDB(saRegisterAndMove, 0, uint32(len(p)-4)), p)
	wantCheck(t, o, SenseIllegalRequest, ascParameterListLength, 0, -1, false)
}

func TestUnsupportedParameterFlags(t *testing.T) {
	h := newHarness(t)
	h.register(port(1), 1)
	for _, sa := range []uint8{saRegister, saReserve, saRelease, saClear, saPreempt, saPreemptAndAbort, saRegisterAndIgnore} {
		// SPEC_I_PT (not implemented, and valid only for REGISTER).
		param := basicParam(1, 1, flagSpecIPT)
		param = append(param, 0, 0, 0, 0) // an empty TransportID list
		o := h.m.Out(h.ctx, port(1), proutCDB(sa, TypeWriteExclusive, uint32(len(param))), param)
		wantCheck(t, o, SenseIllegalRequest, ascInvalidFieldInParam, 0, paramFieldFlags, false)
	}
	for _, sa := range []uint8{saRegister, saRegisterAndIgnore} {
		o := h.out(port(1), sa, 0, basicParam(1, 2, flagAllTgPt))
		wantCheck(t, o, SenseIllegalRequest, ascInvalidFieldInParam, 0, paramFieldFlags, false)
	}
	// Other service actions ignore ALL_TG_PT.
	h.mustGood(h.out(port(1), saReserve, TypeWriteExclusive, basicParam(1, 0, flagAllTgPt)), "RESERVE with ALL_TG_PT")
}

func TestUnknownProutServiceAction(t *testing.T) {
	h := newHarness(t)
	for sa := uint8(8); sa < 0x20; sa++ {
		wantCheck(t, h.out(port(1), sa, 0, basicParam(0, 1, 0)), SenseIllegalRequest, ascInvalidFieldInCDB, 0, cdbFieldServiceAction, true)
	}
	for n := 0; n < 10; n++ {
		wantCheck(t, h.m.Out(h.ctx, port(1), make([]byte, n), basicParam(0, 1, 0)), SenseIllegalRequest, ascInvalidFieldInCDB, 0, -1, true)
	}
}

// PRgeneration moves for REGISTER, REGISTER AND IGNORE, CLEAR, PREEMPT,
// PREEMPT AND ABORT and REGISTER AND MOVE, not for RESERVE, RELEASE,
// PERSISTENT RESERVE IN or failed commands, and wraps at 2^32.
func TestGeneration(t *testing.T) {
	s := NewMemoryStore()
	if err := s.Update(t.Context(), func(st *State) error { st.Generation = 0xfffffffe; return nil }); err != nil {
		t.Fatal(err)
	}
	h := newHarnessOn(t, s)
	a, b := port(1), port(2)
	steps := []struct {
		name  string
		run   func() Outcome
		delta uint32
	}{
		{"register a", func() Outcome { return h.out(a, saRegister, 0, basicParam(0, 0xa, 0)) }, 1},
		{"register b (wraps)", func() Outcome { return h.out(b, saRegisterAndIgnore, 0, basicParam(0, 0xb, 0)) }, 1},
		{"reserve", func() Outcome { return h.out(a, saReserve, TypeWriteExclusive, basicParam(0xa, 0, 0)) }, 0},
		{"read keys", func() Outcome { return h.in(a, saReadKeys) }, 0},
		{"failed reserve", func() Outcome { return h.out(b, saReserve, TypeWriteExclusive, basicParam(0xb, 0, 0)) }, 0},
		{"failed register", func() Outcome { return h.out(b, saRegister, 0, basicParam(0xbad, 1, 0)) }, 0},
		{"release", func() Outcome { return h.out(a, saRelease, TypeWriteExclusive, basicParam(0xa, 0, 0)) }, 0},
		{"reserve again", func() Outcome { return h.out(a, saReserve, TypeWriteExclusive, basicParam(0xa, 0, 0)) }, 0},
		{"move", func() Outcome {
			p := moveParam(0xa, 0xc, 0, 1, encodeTransportID(port(3)))
			return h.m.Out(h.ctx, a, proutCDB(saRegisterAndMove, 0, uint32(len(p))), p)
		}, 1},
		{"preempt", func() Outcome { return h.out(b, saPreempt, TypeExclusiveAccess, basicParam(0xb, 0xc, 0)) }, 1},
		{"preempt and abort", func() Outcome { return h.out(b, saPreemptAndAbort, TypeExclusiveAccess, basicParam(0xb, 0xa, 0)) }, 1},
		{"change key", func() Outcome { return h.out(b, saRegister, 0, basicParam(0xb, 0xbb, 0)) }, 1},
		{"clear", func() Outcome { return h.out(b, saClear, 0, basicParam(0xbb, 0, 0)) }, 1},
		{"unregistered zero register", func() Outcome { return h.out(a, saRegister, 0, basicParam(0, 0, 0)) }, 0},
	}
	gen := h.state().Generation
	for _, s := range steps {
		o := s.run()
		if s.delta > 0 && !o.Good() {
			t.Fatalf("%s: status %#x %#x/%#x", s.name, o.Status, o.ASC, o.ASCQ)
		}
		got := h.state().Generation
		if got-gen != s.delta {
			t.Fatalf("%s: generation %d -> %d, want +%d", s.name, gen, got, s.delta)
		}
		gen = got
	}
	if gen != 5 {
		t.Fatalf("final generation %d, want 5 after wrapping", gen)
	}
}

// ProutRegister.Simple and PrinReadKeys.Truncate as libiscsi runs them.
func TestRegisterSimpleFlow(t *testing.T) {
	h := newHarness(t)
	const key = 0x0123456789abcdef
	h.register(port(1), key)
	if _, keys := h.keys(); len(keys) != 1 || keys[0] != key {
		t.Fatalf("keys %x", keys)
	}
	// Truncated READ KEYS still reports the full ADDITIONAL LENGTH.
	o := h.m.In(h.ctx, port(1), prinCDB(saReadKeys, 8))
	if len(o.Data) < 8 || o.Data[7] != 8 {
		t.Fatalf("READ KEYS header %x", o.Data)
	}
	wantConflict(t, h.out(port(1), saRegister, 0, basicParam(0, key+1, 0)), "re-REGISTER with a zero key")
	h.unregister(port(1), key)
	if _, keys := h.keys(); len(keys) != 0 {
		t.Fatalf("keys %x after unregister", keys)
	}
}

// Without a target port resolver REGISTER AND MOVE can name the port the
// command came on and ports known from registrations.
func TestRegisterAndMoveDefaultResolver(t *testing.T) {
	ctx := t.Context()
	m := NewManager(checkedStore{NewMemoryStore(), t}, WithLogger(quietLogger()))
	a, b, c := portOn(1, 1), portOn(2, 2), portOn(3, 3)
	run := func(p Port, sa, typ uint8, param []byte) Outcome {
		return m.Out(ctx, p, proutCDB(sa, typ, uint32(len(param))), param)
	}
	for i, p := range []Port{a, b} {
		if o := run(p, saRegister, 0, basicParam(0, uint64(i+1), 0)); !o.Good() {
			t.Fatal("REGISTER")
		}
	}
	if o := run(a, saReserve, TypeWriteExclusive, basicParam(1, 0, 0)); !o.Good() {
		t.Fatal("RESERVE")
	}
	move := func(dest Port) Outcome {
		return run(a, saRegisterAndMove, 0, moveParam(1, 9, 0, dest.RelativePortID, encodeTransportID(dest)))
	}
	wantCheck(t, move(c), SenseIllegalRequest, ascInvalidFieldInParam, 0, moveFieldRelativePort, false)
	if o := move(portOn(3, 2)); !o.Good() { // port 2 is known from b's registration
		t.Fatalf("move to a known port: %#x %#x", o.Status, o.ASC)
	}
	if c, _ := m.Conflict(ctx, portOn(3, 2), AccessWrite); c {
		t.Fatal("moved reservation not held by the destination")
	}
}

// PREEMPT AND ABORT of one initiator registered through two target ports
// aborts both nexuses and names the initiator port once.
func TestPreemptAndAbortNamesEachInitiatorOnce(t *testing.T) {
	h := newHarness(t)
	a1, a2, b := portOn(1, 1), portOn(1, 2), portOn(2, 1)
	h.register(a1, 0xa)
	h.register(a2, 0xa)
	h.register(b, 0xb)
	h.reserve(a1, 0xa, TypeExclusiveAccess)
	o := h.mustGood(h.out(b, saPreemptAndAbort, TypeExclusiveAccess, basicParam(0xb, 0xa, 0)), "PREEMPT AND ABORT")
	if len(o.AbortTasksOf) != 1 || o.AbortTasksOf[0] != a1.InitiatorPort || len(o.AbortNexuses) != 2 {
		t.Fatalf("abort %v / %+v", o.AbortTasksOf, o.AbortNexuses)
	}
	wantUAs(t, o.UAs, map[Port]uint8{a1: ASCQRegistrationsPreempted, a2: ASCQRegistrationsPreempted})
}

func TestFailureMessages(t *testing.T) {
	for err, want := range map[error]string{
		conflict():        "reservation conflict",
		invalidCDB(1):     "check condition",
		paramListLength(): "check condition",
	} {
		if err.Error() != want {
			t.Errorf("%q, want %q", err.Error(), want)
		}
	}
}
