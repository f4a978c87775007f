package pr

import (
	"testing"
)

// seedState gives the fuzzers a logical unit worth attacking: three
// registrants with keys 1-3 and, depending on setup, a reservation of some
// type held by port 1, or an SPC-2 reservation.
func seedState(h *harness, setup uint8) {
	if setup&0x80 != 0 {
		h.mustGood(h.reserve6(port(1)), "RESERVE(6)")
		return
	}
	for i := 1; i <= 3; i++ {
		h.register(port(i), uint64(i))
	}
	if t := setup % 7; t > 0 {
		h.reserve(port(1), 1, allTypes[t-1])
	}
}

// checkOutcome asserts what every outcome must look like.
func checkOutcome(t *testing.T, o Outcome) {
	t.Helper()
	switch o.Status {
	case StatusGood:
		if o.SenseKey != 0 {
			t.Fatalf("GOOD with sense key %#x", o.SenseKey)
		}
	case StatusReservationConflict:
	case StatusCheckCondition:
		if o.SenseKey == 0 || o.ASC == 0 {
			t.Fatalf("CHECK CONDITION without sense: %+v", o)
		}
	default:
		t.Fatalf("status %#x", o.Status)
	}
	for _, u := range o.UAs {
		if u.InitiatorPort == "" || u.TargetPort == "" || u.ASC != ASCReservations {
			t.Fatalf("bad unit attention %+v", u)
		}
	}
}

// checkReadable reads every PERSISTENT RESERVE IN page back and decodes it.
func checkReadable(t *testing.T, h *harness) {
	t.Helper()
	if h.state().Legacy != nil {
		return
	}
	parseReadKeys(t, h.mustGood(h.in(port(1), saReadKeys), "READ KEYS").Data)
	parseReadReservation(t, h.mustGood(h.in(port(1), saReadReservation), "READ RESERVATION").Data)
	parseFullStatus(t, h.mustGood(h.in(port(1), saReadFullStatus), "READ FULL STATUS").Data)
}

// checkHolderAccess: a reservation holder never conflicts.
func checkHolderAccess(t *testing.T, h *harness) {
	t.Helper()
	st := h.state()
	for i := 1; i <= 4; i++ {
		p := port(i)
		if !st.isHolder(p) {
			continue
		}
		for _, a := range []Access{AccessRead, AccessWrite, AccessOther, AccessSPC2Only} {
			if h.conflict(p, a) {
				t.Fatalf("holder %d conflicts for %s", i, a)
			}
		}
	}
}

func FuzzOut(f *testing.F) {
	reg := basicParam(0, 9, 0)
	f.Add(uint8(0), uint8(0), proutCDB(saRegister, 0, 24), reg)
	f.Add(uint8(1), uint8(1), proutCDB(saReserve, TypeExclusiveAccess, 24), basicParam(2, 0, 0))
	f.Add(uint8(3), uint8(0), proutCDB(saRelease, TypeExclusiveAccess, 24), basicParam(1, 0, 0))
	f.Add(uint8(2), uint8(2), proutCDB(saClear, 0, 24), basicParam(3, 0, 0))
	f.Add(uint8(5), uint8(1), proutCDB(saPreempt, TypeWriteExclusive, 24), basicParam(2, 1, 0))
	f.Add(uint8(6), uint8(2), proutCDB(saPreemptAndAbort, TypeExclusiveAccessAllRegs, 24), basicParam(3, 0, 0))
	f.Add(uint8(4), uint8(3), proutCDB(saRegisterAndIgnore, 0, 24), basicParam(0, 7, flagAPTPL))
	mv := moveParam(1, 5, flagUnreg, 2, encodeTransportID(portOn(3, 2)))
	f.Add(uint8(2), uint8(0), proutCDB(saRegisterAndMove, 0, uint32(len(mv))), mv)
	f.Add(uint8(0x80), uint8(0), proutCDB(saRegister, 0, 24), reg)
	f.Add(uint8(0), uint8(0), proutCDB(saRegister, 0, 0xffffffff), reg)
	f.Add(uint8(0), uint8(0), []byte{0x5f}, []byte{})
	f.Add(uint8(0), uint8(0), proutCDB(saRegister, 0, 28), append(basicParam(0, 9, flagSpecIPT), 0, 0, 0, 0))

	f.Fuzz(func(t *testing.T, setup, who uint8, cdb, param []byte) {
		h := newHarness(t) // every committed state is checked against the invariants
		seedState(h, setup)
		before := h.state()
		o := h.m.Out(h.ctx, port(int(who%4)+1), cdb, param)
		checkOutcome(t, o)
		after := h.state()
		if !o.Good() && after != before {
			t.Fatalf("failed command %#x/%#x changed the state", o.Status, o.ASC)
		}
		checkReadable(t, h)
		checkHolderAccess(t, h)
	})
}

func FuzzIn(f *testing.F) {
	for sa := uint8(0); sa < 5; sa++ {
		f.Add(uint8(sa), prinCDB(sa, 0xffff))
	}
	f.Add(uint8(0x80), prinCDB(0, 8))
	f.Add(uint8(0), []byte{0x5e, 1})
	f.Fuzz(func(t *testing.T, setup uint8, cdb []byte) {
		h := newHarness(t)
		seedState(h, setup)
		o := h.m.In(h.ctx, port(1), cdb)
		checkOutcome(t, o)
		if o.Good() && len(o.Data) < 8 {
			t.Fatalf("PERSISTENT RESERVE IN returned %d bytes", len(o.Data))
		}
	})
}

// FuzzSequence runs random sequences of reservation commands from four
// I_T nexuses with a small key space, so that keys collide and every
// transition is reachable; the checked store validates each committed
// state.
func FuzzSequence(f *testing.F) {
	f.Add([]byte{
		0, 0, 0, 0, 1, // register port 1 key 1
		0, 1, 0, 0, 2, // register port 2 key 2
		1, 0, 3, 1, 0, // reserve EA
		4, 1, 1, 2, 1, // preempt
		3, 1, 0, 2, 0, // clear
	})
	f.Add([]byte{8, 0, 0, 0, 0, 8, 1, 0, 0, 0, 10, 0, 0, 0, 0, 9, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		h := newHarness(t)
		for len(ops) >= 5 {
			op, who, typ, key, sark := ops[0]%12, port(int(ops[1]%4)+1), ops[2], uint64(ops[3]%5), uint64(ops[4]%5)
			ops = ops[5:]
			var o Outcome
			switch {
			case op <= saRegisterAndIgnore:
				o = h.out(who, op, typ, basicParam(key, sark, typ&flagAPTPL))
			case op == saRegisterAndMove:
				dest := portOn(int(sark%4)+1, uint16(key%3)+1)
				p := moveParam(key, sark, typ&(flagUnreg|flagAPTPL), dest.RelativePortID, encodeTransportID(dest))
				o = h.m.Out(h.ctx, who, proutCDB(op, typ, uint32(len(p))), p)
			case op == 8:
				o = h.reserve6(who)
			case op == 9:
				o = h.release6(who)
			case op == 10:
				h.m.NexusLoss(h.ctx, who)
				continue
			default:
				h.m.Reset(h.ctx)
				continue
			}
			checkOutcome(t, o)
			checkHolderAccess(t, h)
		}
		checkReadable(t, h)
	})
}

func FuzzTransportID(f *testing.F) {
	f.Add(encodeTransportID(port(1)))
	f.Add(encodeRaw("iqn.x:y,i,0x00023d000001"))
	f.Add([]byte{0x45, 0, 0, 20})
	// Lowering this string changes its length; offsets must not move.
	f.Add([]byte("E0\x00\x1c0\xa4000000,i,0X\x0000000000000000"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, name, err := decodeTransportID(b)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to the same port.
		q, name2, err := decodeTransportID(encodeTransportID(Port{InitiatorPort: p, InitiatorName: name}))
		if err != nil || q != p || name2 != name {
			t.Fatalf("re-decode %q %q %v, want %q %q", q, name2, err, p, name)
		}
	})
}
