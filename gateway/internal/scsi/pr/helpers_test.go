package pr

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"testing"
)

const testTarget = "iqn.2024-01.org.example:t1"

// port returns I_T nexus n: initiator n through target port 1.
func port(n int) Port { return portOn(n, 1) }

// portOn returns initiator n through relative target port rel.
func portOn(n int, rel uint16) Port {
	name := fmt.Sprintf("iqn.2024-01.org.example:ini%d", n)
	return Port{
		InitiatorPort:  fmt.Sprintf("%s,i,0x%012x", name, 0x23d000000+n),
		InitiatorName:  name,
		TargetPort:     fmt.Sprintf("%s,t,0x%04x", testTarget, rel),
		RelativePortID: rel,
	}
}

var allTypes = []uint8{
	TypeWriteExclusive, TypeExclusiveAccess,
	TypeWriteExclusiveRegsOnly, TypeExclusiveAccessRegsOnly,
	TypeWriteExclusiveAllRegs, TypeExclusiveAccessAllRegs,
}

func typeName(t uint8) string {
	switch t {
	case TypeWriteExclusive:
		return "WE"
	case TypeExclusiveAccess:
		return "EA"
	case TypeWriteExclusiveRegsOnly:
		return "WERO"
	case TypeExclusiveAccessRegsOnly:
		return "EARO"
	case TypeWriteExclusiveAllRegs:
		return "WEAR"
	case TypeExclusiveAccessAllRegs:
		return "EAAR"
	}
	return fmt.Sprintf("type%#x", t)
}

func prinCDB(sa uint8, alloc uint16) []byte {
	cdb := make([]byte, 10)
	cdb[0] = 0x5e
	cdb[1] = sa
	binary.BigEndian.PutUint16(cdb[7:], alloc)
	return cdb
}

func proutCDB(sa, typ uint8, listLen uint32) []byte {
	cdb := make([]byte, 10)
	cdb[0] = 0x5f
	cdb[1] = sa
	cdb[2] = typ
	binary.BigEndian.PutUint32(cdb[5:], listLen)
	return cdb
}

func basicParam(key, sark uint64, flags byte) []byte {
	b := make([]byte, 24)
	binary.BigEndian.PutUint64(b[0:], key)
	binary.BigEndian.PutUint64(b[8:], sark)
	b[20] = flags
	return b
}

func moveParam(key, sark uint64, flags byte, rel uint16, tid []byte) []byte {
	b := make([]byte, 24, 24+len(tid))
	binary.BigEndian.PutUint64(b[0:], key)
	binary.BigEndian.PutUint64(b[8:], sark)
	b[17] = flags
	binary.BigEndian.PutUint16(b[18:], rel)
	binary.BigEndian.PutUint32(b[20:], uint32(len(tid)))
	return append(b, tid...)
}

// checkedStore validates the invariants of every state a transition
// commits.
type checkedStore struct {
	Store
	t testing.TB
}

func (s checkedStore) Update(ctx context.Context, fn func(*State) error) error {
	return s.Store.Update(ctx, func(st *State) error {
		if err := fn(st); err != nil {
			return err
		}
		if err := st.validate(); err != nil {
			s.t.Errorf("transition broke an invariant: %v (state %+v)", err, st)
		}
		return nil
	})
}

// harness drives a Manager the way the SCSI device server does.
type harness struct {
	t     testing.TB
	ctx   context.Context
	m     *Manager
	store Store
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newHarness(t testing.TB) *harness {
	return newHarnessOn(t, NewMemoryStore())
}

func newHarnessOn(t testing.TB, s Store) *harness {
	cs := checkedStore{Store: s, t: t}
	m := NewManager(cs, WithLogger(quietLogger()), WithTargetPorts(testTargetPorts))
	return &harness{t: t, ctx: context.Background(), m: m, store: cs}
}

// testTargetPorts knows target ports 1 to 8, as a target with eight portal
// groups would.
func testTargetPorts(rel uint16) (string, bool) {
	if rel < 1 || rel > 8 {
		return "", false
	}
	return portOn(0, rel).TargetPort, true
}

func (h *harness) state() *State {
	h.t.Helper()
	st, err := h.store.Get(h.ctx)
	if err != nil {
		h.t.Fatalf("Get: %v", err)
	}
	return st
}

func (h *harness) out(p Port, sa, typ uint8, param []byte) Outcome {
	return h.m.Out(h.ctx, p, proutCDB(sa, typ, uint32(len(param))), param)
}

func (h *harness) in(p Port, sa uint8) Outcome {
	return h.m.In(h.ctx, p, prinCDB(sa, 0xffff))
}

func (h *harness) mustGood(o Outcome, what string) Outcome {
	h.t.Helper()
	if o.Status != StatusGood {
		h.t.Fatalf("%s: status %#x sense %#x/%#x/%#x, want GOOD", what, o.Status, o.SenseKey, o.ASC, o.ASCQ)
	}
	return o
}

func (h *harness) register(p Port, key uint64) {
	h.t.Helper()
	h.mustGood(h.out(p, saRegisterAndIgnore, 0, basicParam(0, key, 0)), "REGISTER AND IGNORE EXISTING KEY")
}

func (h *harness) unregister(p Port, key uint64) Outcome {
	h.t.Helper()
	return h.mustGood(h.out(p, saRegister, 0, basicParam(key, 0, 0)), "REGISTER (unregister)")
}

func (h *harness) reserve(p Port, key uint64, typ uint8) {
	h.t.Helper()
	h.mustGood(h.out(p, saReserve, typ, basicParam(key, 0, 0)), "RESERVE "+typeName(typ))
}

func (h *harness) release(p Port, key uint64, typ uint8) Outcome {
	h.t.Helper()
	return h.mustGood(h.out(p, saRelease, typ, basicParam(key, 0, 0)), "RELEASE "+typeName(typ))
}

func (h *harness) keys() (uint32, []uint64) {
	h.t.Helper()
	o := h.mustGood(h.in(port(0), saReadKeys), "READ KEYS")
	return parseReadKeys(h.t, o.Data)
}

func (h *harness) reservation() (gen uint32, reserved bool, key uint64, typ uint8) {
	h.t.Helper()
	o := h.mustGood(h.in(port(0), saReadReservation), "READ RESERVATION")
	return parseReadReservation(h.t, o.Data)
}

func (h *harness) conflict(p Port, a Access) bool {
	h.t.Helper()
	c, err := h.m.Conflict(h.ctx, p, a)
	if err != nil {
		h.t.Fatalf("Conflict: %v", err)
	}
	return c
}

func parseReadKeys(t testing.TB, b []byte) (uint32, []uint64) {
	t.Helper()
	if len(b) < 8 {
		t.Fatalf("READ KEYS data %d bytes", len(b))
	}
	n := binary.BigEndian.Uint32(b[4:])
	if int(n) != len(b)-8 || n%8 != 0 {
		t.Fatalf("READ KEYS ADDITIONAL LENGTH %d for %d bytes", n, len(b))
	}
	var keys []uint64
	for off := 8; off < len(b); off += 8 {
		keys = append(keys, binary.BigEndian.Uint64(b[off:]))
	}
	return binary.BigEndian.Uint32(b), keys
}

func parseReadReservation(t testing.TB, b []byte) (gen uint32, reserved bool, key uint64, typ uint8) {
	t.Helper()
	if len(b) < 8 {
		t.Fatalf("READ RESERVATION data %d bytes", len(b))
	}
	gen = binary.BigEndian.Uint32(b)
	switch n := binary.BigEndian.Uint32(b[4:]); {
	case n == 0 && len(b) == 8:
		return gen, false, 0, 0
	case n == 16 && len(b) == 24:
		if b[21]>>4 != 0 {
			t.Fatalf("READ RESERVATION scope %d", b[21]>>4)
		}
		return gen, true, binary.BigEndian.Uint64(b[8:]), b[21] & 0x0f
	default:
		t.Fatalf("READ RESERVATION ADDITIONAL LENGTH %d for %d bytes", n, len(b))
	}
	return
}

// wantUAs checks the unit attentions of an outcome as a set of (nexus,
// ASCQ) pairs.
func wantUAs(t testing.TB, got []UnitAttention, want map[Port]uint8) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("unit attentions %+v, want %d", got, len(want))
	}
	for p, ascq := range want {
		found := false
		for _, u := range got {
			if u.InitiatorPort == p.InitiatorPort && u.TargetPort == p.TargetPort && u.ASC == ASCReservations && u.ASCQ == ascq {
				found = true
			}
		}
		if !found {
			t.Fatalf("unit attentions %+v lack 2Ah/%02xh for %s", got, ascq, p.InitiatorPort)
		}
	}
}

func wantCheck(t testing.TB, o Outcome, key, asc, ascq uint8, field int, inCDB bool) {
	t.Helper()
	if o.Status != StatusCheckCondition || o.SenseKey != key || o.ASC != asc || o.ASCQ != ascq {
		t.Fatalf("outcome %#x %#x/%#x/%#x, want CHECK CONDITION %#x/%#x/%#x", o.Status, o.SenseKey, o.ASC, o.ASCQ, key, asc, ascq)
	}
	if o.FieldPointer != field || (field >= 0 && o.InCDB != inCDB) {
		t.Fatalf("field pointer %d (in CDB %v), want %d (in CDB %v)", o.FieldPointer, o.InCDB, field, inCDB)
	}
}

func wantConflict(t testing.TB, o Outcome, what string) {
	t.Helper()
	if o.Status != StatusReservationConflict {
		t.Fatalf("%s: status %#x sense %#x/%#x/%#x, want RESERVATION CONFLICT", what, o.Status, o.SenseKey, o.ASC, o.ASCQ)
	}
}
