package pr

import "testing"

// ProutReserve.Access*: what a second initiator may do, registered and
// then unregistered, while the first holds each reservation type
// (verify_read_works/verify_read_fails and verify_write_* in libiscsi).
func TestAccessPerType(t *testing.T) {
	tests := []struct {
		typ                    uint8
		regRead, regWrite      bool
		unregRead, unregWrite  bool
		thirdRead, thirdWrite  bool // never-registered third nexus
		regOther, unregOtherOK bool // AccessOther
	}{
		{TypeExclusiveAccess, false, false, false, false, false, false, false, false},
		{TypeWriteExclusive, true, false, true, false, true, false, false, false},
		{TypeExclusiveAccessRegsOnly, true, true, false, false, false, false, true, false},
		{TypeWriteExclusiveRegsOnly, true, true, true, false, true, false, true, false},
		{TypeExclusiveAccessAllRegs, true, true, false, false, false, false, true, false},
		{TypeWriteExclusiveAllRegs, true, true, true, false, true, false, true, false},
	}
	for _, tc := range tests {
		t.Run(typeName(tc.typ), func(t *testing.T) {
			h := newHarness(t)
			sd1, sd2, sd3 := port(1), port(2), port(3)
			const key, key2 = 0x1234, 0x5678
			h.register(sd1, key)
			h.register(sd2, key2)
			h.reserve(sd1, key, tc.typ)

			allowed := func(p Port, a Access) bool { return !h.conflict(p, a) }
			check := func(who string, p Port, a Access, want bool) {
				t.Helper()
				if got := allowed(p, a); got != want {
					t.Errorf("%s %s allowed = %v, want %v", who, a, got, want)
				}
			}
			for _, a := range []Access{AccessRead, AccessWrite, AccessOther, AccessAllowed, AccessSPC2Only} {
				check("holder", sd1, a, true)
			}
			check("registered", sd2, AccessRead, tc.regRead)
			check("registered", sd2, AccessWrite, tc.regWrite)
			check("registered", sd2, AccessOther, tc.regOther)
			check("unregistered", sd3, AccessRead, tc.thirdRead)
			check("unregistered", sd3, AccessWrite, tc.thirdWrite)
			check("unregistered", sd3, AccessOther, tc.unregOtherOK)
			for _, p := range []Port{sd2, sd3} {
				// Always allowed under a persistent reservation.
				check("any", p, AccessAllowed, true)
				check("any", p, AccessSPC2Only, true)
			}

			h.unregister(sd2, key2)
			check("unregistered", sd2, AccessRead, tc.unregRead)
			check("unregistered", sd2, AccessWrite, tc.unregWrite)

			h.release(sd1, key, tc.typ)
			h.unregister(sd1, key)
			for _, p := range []Port{sd1, sd2, sd3} {
				check("after release", p, AccessWrite, true)
			}
		})
	}
}

// ProutReserve.Ownership*: when the holder unregisters, a registrants-only
// or exclusive reservation goes away; an all-registrants one stays with
// the remaining registrant, which may release it.
func TestOwnershipWhenHolderUnregisters(t *testing.T) {
	for _, typ := range allTypes {
		t.Run(typeName(typ), func(t *testing.T) {
			h := newHarness(t)
			sd1, sd2 := port(1), port(2)
			const key1, key2 = 0xaaaa, 0xbbbb
			h.register(sd1, key1)
			h.register(sd2, key2)
			h.reserve(sd1, key1, typ)
			o := h.unregister(sd1, key1)

			_, reserved, key, got := h.reservation()
			if isAllRegistrants(typ) {
				if !reserved || key != 0 || got != typ {
					t.Fatalf("all-registrants reservation after holder left: %v %#x %d", reserved, key, got)
				}
				wantUAs(t, o.UAs, nil)
				if h.conflict(sd2, AccessWrite) {
					t.Fatal("remaining registrant is not a holder")
				}
				r := h.release(sd2, key2, typ)
				wantUAs(t, r.UAs, nil) // nobody else is registered
			} else {
				if reserved {
					t.Fatalf("reservation %d survived its holder", got)
				}
				want := map[Port]uint8{}
				if isRegistrantsOnly(typ) {
					want[sd2] = ASCQReservationsReleased
				}
				wantUAs(t, o.UAs, want)
			}
			h.unregister(sd2, key2)
			if _, keys := h.keys(); len(keys) != 0 {
				t.Fatalf("keys left %x", keys)
			}
			if _, reserved, _, _ := h.reservation(); reserved {
				t.Fatal("reserved with no registrants")
			}
		})
	}
}

// The last registrant of an all-registrants reservation ends it.
func TestAllRegistrantsEndsWithLastRegistrant(t *testing.T) {
	h := newHarness(t)
	for i := 1; i <= 3; i++ {
		h.register(port(i), uint64(i))
	}
	h.reserve(port(2), 2, TypeExclusiveAccessAllRegs)
	for i := 1; i <= 3; i++ {
		if _, reserved, _, _ := h.reservation(); !reserved {
			t.Fatalf("reservation gone with %d registrants left", 4-i)
		}
		h.unregister(port(i), uint64(i))
	}
	if _, reserved, _, _ := h.reservation(); reserved {
		t.Fatal("reservation outlived every registrant")
	}
}

// ProutReserve.Simple: one initiator reserves and releases every type.
func TestReserveSimpleFlow(t *testing.T) {
	h := newHarness(t)
	const key = 0x77
	h.register(port(1), key)
	for _, typ := range allTypes {
		h.reserve(port(1), key, typ)
		_, reserved, k, got := h.reservation()
		want := uint64(key)
		if isAllRegistrants(typ) {
			want = 0
		}
		if !reserved || k != want || got != typ {
			t.Fatalf("%s: %v %#x %d", typeName(typ), reserved, k, got)
		}
		h.release(port(1), key, typ)
	}
	h.unregister(port(1), key)
}

func TestNoReservationNoConflict(t *testing.T) {
	h := newHarness(t)
	h.register(port(1), 1)
	for _, a := range []Access{AccessAllowed, AccessRead, AccessWrite, AccessOther, AccessSPC2Only} {
		for _, p := range []Port{port(1), port(2)} {
			if h.conflict(p, a) {
				t.Fatalf("%s conflicts without a reservation", a)
			}
		}
	}
}

func TestAccessString(t *testing.T) {
	for a, want := range map[Access]string{
		AccessAllowed: "allowed", AccessRead: "read", AccessWrite: "write",
		AccessOther: "other", AccessSPC2Only: "spc2-only", Access(99): "unknown",
	} {
		if a.String() != want {
			t.Errorf("%d.String() = %q", a, a.String())
		}
	}
}
