package pr

import "testing"

func (h *harness) reserve6(p Port) Outcome { return h.m.Reserve(h.ctx, p) }
func (h *harness) release6(p Port) Outcome { return h.m.Release(h.ctx, p) }

// Reserve6.Simple.
func TestReserve6Simple(t *testing.T) {
	h := newHarness(t)
	h.mustGood(h.reserve6(port(1)), "RESERVE(6)")
	h.mustGood(h.release6(port(1)), "RELEASE(6)")
	if h.state().Legacy != nil {
		t.Fatal("still reserved")
	}
}

// Reserve6.2Initiators.
func TestReserve6TwoInitiators(t *testing.T) {
	h := newHarness(t)
	sd, sd2 := port(1), port(2)
	h.mustGood(h.reserve6(sd), "RESERVE(6)")
	h.mustGood(h.reserve6(sd), "RESERVE(6) again by the holder")
	wantConflict(t, h.reserve6(sd2), "RESERVE(6) by another initiator")
	h.mustGood(h.release6(sd2), "RELEASE(6) by a non-holder is a no-op")
	// MODE SENSE (a read of device state) works for the holder only.
	if h.conflict(sd, AccessRead) {
		t.Fatal("holder conflicts")
	}
	for _, a := range []Access{AccessRead, AccessWrite, AccessOther, AccessSPC2Only} {
		if !h.conflict(sd2, a) {
			t.Fatalf("%s from another initiator does not conflict", a)
		}
	}
	if h.conflict(sd2, AccessAllowed) {
		t.Fatal("INQUIRY-class command conflicts")
	}
	wantConflict(t, h.reserve6(sd2), "RESERVE(6) by another initiator, still")
	h.mustGood(h.release6(sd), "RELEASE(6)")
	h.mustGood(h.reserve6(sd2), "RESERVE(6) by the second initiator")
	h.mustGood(h.release6(sd2), "RELEASE(6) by the second initiator")
}

// Reserve6.Logout, Reserve6.ITNexusLoss, Reserve6.LUNReset and the target
// resets: the SPC-2 reservation does not outlive them.
func TestReserve6Release(t *testing.T) {
	tests := []struct {
		name string
		drop func(h *harness, holder Port)
	}{
		{"logout", func(h *harness, p Port) { h.m.NexusLoss(h.ctx, p) }},
		{"it nexus loss", func(h *harness, p Port) { h.m.NexusLoss(h.ctx, p) }},
		{"lun reset", func(h *harness, _ Port) { h.m.Reset(h.ctx) }},
		{"target warm reset", func(h *harness, _ Port) { h.m.Reset(h.ctx) }},
		{"target cold reset", func(h *harness, _ Port) { h.m.Reset(h.ctx) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			sd, sd2 := port(1), port(2)
			h.mustGood(h.reserve6(sd), "RESERVE(6)")
			wantConflict(t, h.reserve6(sd2), "RESERVE(6) by another initiator")
			tc.drop(h, sd)
			h.mustGood(h.reserve6(sd2), "RESERVE(6) after the holder went")
			h.mustGood(h.release6(sd2), "RELEASE(6)")
		})
	}
}

// The loss of another nexus, or of the same initiator through another
// target port, leaves the reservation alone.
func TestReserve6NexusLossOfOthers(t *testing.T) {
	h := newHarness(t)
	h.mustGood(h.reserve6(portOn(1, 1)), "RESERVE(6)")
	h.m.NexusLoss(h.ctx, port(2))
	h.m.NexusLoss(h.ctx, portOn(1, 2))
	if h.state().Legacy == nil {
		t.Fatal("reservation lost with another nexus")
	}
	if !h.conflict(portOn(1, 2), AccessWrite) {
		t.Fatal("the same initiator through another target port is another nexus")
	}
}

// SPC-2: while RESERVE holds the unit every PERSISTENT RESERVE IN and OUT
// conflicts, whoever sends it.
func TestReserve6BlocksPersistentReservations(t *testing.T) {
	h := newHarness(t)
	h.mustGood(h.reserve6(port(1)), "RESERVE(6)")
	for _, p := range []Port{port(1), port(2)} {
		wantConflict(t, h.in(p, saReadKeys), "PERSISTENT RESERVE IN")
		wantConflict(t, h.out(p, saRegister, 0, basicParam(0, 1, 0)), "PERSISTENT RESERVE OUT")
		wantConflict(t, h.out(p, 0x1f, 0, nil), "PERSISTENT RESERVE OUT with a bad CDB")
	}
	h.mustGood(h.release6(port(1)), "RELEASE(6)")
	h.register(port(1), 1)
}

// CRH=1 (SPC-4 5.13.3): RESERVE and RELEASE against persistent
// reservation state.
func TestReserve6WithPersistentReservations(t *testing.T) {
	a, b, c := port(1), port(2), port(3)
	tests := []struct {
		name   string
		typ    uint8 // reservation a holds; 0 for registrations only
		by     Port
		status uint8
	}{
		{"registrations, unregistered nexus", 0, c, StatusReservationConflict},
		{"registrations, registered nexus", 0, a, StatusReservationConflict},
		{"holder", TypeExclusiveAccess, a, StatusGood},
		{"registrant under exclusive access", TypeExclusiveAccess, b, StatusReservationConflict},
		{"registrant under registrants only", TypeWriteExclusiveRegsOnly, b, StatusGood},
		{"registrant under all registrants", TypeExclusiveAccessAllRegs, b, StatusGood},
		{"unregistered under registrants only", TypeWriteExclusiveRegsOnly, c, StatusReservationConflict},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.register(a, 0xa)
			h.register(b, 0xb)
			if tc.typ != 0 {
				h.reserve(a, 0xa, tc.typ)
			}
			before := h.state()
			for _, o := range []Outcome{h.reserve6(tc.by), h.release6(tc.by)} {
				if o.Status != tc.status {
					t.Fatalf("status %#x, want %#x", o.Status, tc.status)
				}
			}
			after := h.state()
			if after.Legacy != nil || len(after.Registrations) != len(before.Registrations) ||
				(before.Reservation == nil) != (after.Reservation == nil) {
				t.Fatalf("RESERVE/RELEASE changed persistent reservation state: %+v", after)
			}
		})
	}
}
