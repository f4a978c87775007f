package pr

import (
	"encoding/binary"
	"testing"
)

// PrinServiceactionRange: service actions 0-3 succeed, 4-1Fh fail with
// INVALID FIELD IN CDB pointing at byte 1.
func TestPrinServiceActionRange(t *testing.T) {
	h := newHarness(t)
	for sa := uint8(0); sa < 0x20; sa++ {
		o := h.in(port(1), sa)
		if sa <= saReadFullStatus {
			h.mustGood(o, "PRIN")
			continue
		}
		wantCheck(t, o, SenseIllegalRequest, ascInvalidFieldInCDB, 0, cdbFieldServiceAction, true)
	}
}

func TestPrinShortCDB(t *testing.T) {
	h := newHarness(t)
	for n := 0; n < 10; n++ {
		o := h.m.In(h.ctx, port(1), make([]byte, n))
		wantCheck(t, o, SenseIllegalRequest, ascInvalidFieldInCDB, 0, -1, true)
	}
}

// PrinReadKeys.Simple and .Truncate: ADDITIONAL LENGTH always describes the
// whole key list, whatever the allocation length (the caller cuts Data).
func TestReadKeys(t *testing.T) {
	tests := []struct {
		name string
		keys []uint64
	}{
		{"none", nil},
		{"one", []uint64{0xabcdef}},
		{"three", []uint64{1, 0xffffffffffffffff, 1}}, // keys may repeat across nexuses
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			for i, k := range tc.keys {
				h.register(port(i+1), k)
			}
			o := h.m.In(h.ctx, port(1), prinCDB(saReadKeys, 8))
			h.mustGood(o, "READ KEYS")
			if want := 8 + 8*len(tc.keys); len(o.Data) != want {
				t.Fatalf("data %d bytes, want %d", len(o.Data), want)
			}
			gen, keys := parseReadKeys(t, o.Data)
			if gen != uint32(len(tc.keys)) {
				t.Fatalf("generation %d, want %d", gen, len(tc.keys))
			}
			if len(keys) != len(tc.keys) {
				t.Fatalf("keys %x, want %x", keys, tc.keys)
			}
			for i := range keys {
				if keys[i] != tc.keys[i] {
					t.Fatalf("keys %x, want %x", keys, tc.keys)
				}
			}
		})
	}
}

func TestReadReservationPerType(t *testing.T) {
	for _, typ := range allTypes {
		t.Run(typeName(typ), func(t *testing.T) {
			h := newHarness(t)
			if _, reserved, _, _ := h.reservation(); reserved {
				t.Fatal("reserved before RESERVE")
			}
			h.register(port(1), 0x1111)
			h.reserve(port(1), 0x1111, typ)
			_, reserved, key, got := h.reservation()
			wantKey := uint64(0x1111)
			if isAllRegistrants(typ) {
				wantKey = 0 // all-registrants reservations report key zero
			}
			if !reserved || key != wantKey || got != typ {
				t.Fatalf("reservation %v key %#x type %d, want key %#x type %d", reserved, key, got, wantKey, typ)
			}
		})
	}
}

// PrinReportCapabilities: LENGTH 8, ALLOW COMMANDS <= 5, only defined type
// mask bits, every type usable, PTPL_A follows APTPL.
func TestReportCapabilities(t *testing.T) {
	h := newHarness(t)
	o := h.mustGood(h.in(port(1), saReportCapabilities), "REPORT CAPABILITIES")
	b := o.Data
	if len(b) != 8 || binary.BigEndian.Uint16(b) != 8 {
		t.Fatalf("REPORT CAPABILITIES %x", b)
	}
	checks := []struct {
		name string
		got  bool
		want bool
	}{
		{"CRH", b[2]&0x10 != 0, true},
		{"SIP_C", b[2]&0x08 != 0, false},
		{"ATP_C", b[2]&0x04 != 0, false},
		{"PTPL_C", b[2]&0x01 != 0, true},
		{"TMV", b[3]&0x80 != 0, true},
		{"PTPL_A", b[3]&0x01 != 0, false},
		{"ALLOW COMMANDS <= 5", (b[3]>>4)&0x7 <= 5, true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	mask := binary.BigEndian.Uint16(b[4:])
	const all = 0x8000 | 0x4000 | 0x2000 | 0x0800 | 0x0200 | 0x0001
	if mask != all {
		t.Errorf("type mask %#04x, want %#04x", mask, all)
	}

	h.mustGood(h.out(port(1), saRegister, 0, basicParam(0, 7, flagAPTPL)), "REGISTER APTPL")
	o = h.mustGood(h.in(port(1), saReportCapabilities), "REPORT CAPABILITIES")
	if o.Data[3]&0x01 == 0 {
		t.Error("PTPL_A not set after REGISTER with APTPL=1")
	}
}

// PrinReportCapabilities.Simple flow: for every advertised type, reserve,
// verify, release.
func TestReportCapabilitiesFlow(t *testing.T) {
	h := newHarness(t)
	const key = 0x5eed
	h.register(port(1), key)
	caps := h.mustGood(h.in(port(1), saReportCapabilities), "REPORT CAPABILITIES").Data
	mask := binary.BigEndian.Uint16(caps[4:])
	bit := map[uint8]uint16{
		TypeWriteExclusiveAllRegs: 0x8000, TypeExclusiveAccessRegsOnly: 0x4000,
		TypeWriteExclusiveRegsOnly: 0x2000, TypeExclusiveAccess: 0x0800,
		TypeWriteExclusive: 0x0200, TypeExclusiveAccessAllRegs: 0x0001,
	}
	for _, typ := range allTypes {
		if mask&bit[typ] == 0 {
			t.Fatalf("type %s not advertised", typeName(typ))
		}
		h.reserve(port(1), key, typ)
		_, reserved, k, got := h.reservation()
		want := uint64(key)
		if isAllRegistrants(typ) {
			want = 0
		}
		if !reserved || k != want || got != typ {
			t.Fatalf("%s: reservation %v %#x %d", typeName(typ), reserved, k, got)
		}
		h.release(port(1), key, typ)
	}
	h.unregister(port(1), key)
	if _, keys := h.keys(); len(keys) != 0 {
		t.Fatalf("keys left: %x", keys)
	}
}

type fullStatusDesc struct {
	key     uint64
	holder  bool
	allTgPt bool
	typ     uint8
	relPort uint16
	tid     []byte
}

func parseFullStatus(t *testing.T, b []byte) (uint32, []fullStatusDesc) {
	t.Helper()
	if len(b) < 8 || int(binary.BigEndian.Uint32(b[4:])) != len(b)-8 {
		t.Fatalf("READ FULL STATUS header %x", b)
	}
	var out []fullStatusDesc
	for off := 8; off < len(b); {
		if len(b)-off < 24 {
			t.Fatalf("truncated descriptor at %d", off)
		}
		d := b[off:]
		n := int(binary.BigEndian.Uint32(d[20:]))
		if 24+n > len(d) {
			t.Fatalf("descriptor length %d past the end", n)
		}
		out = append(out, fullStatusDesc{
			key: binary.BigEndian.Uint64(d), holder: d[12]&1 != 0, allTgPt: d[12]&2 != 0,
			typ: d[13] & 0x0f, relPort: binary.BigEndian.Uint16(d[18:]), tid: d[24 : 24+n],
		})
		off += 24 + n
	}
	return binary.BigEndian.Uint32(b), out
}

func TestReadFullStatus(t *testing.T) {
	for _, typ := range allTypes {
		t.Run(typeName(typ), func(t *testing.T) {
			h := newHarness(t)
			a, b := portOn(1, 1), portOn(2, 2)
			h.register(a, 0xa)
			h.register(b, 0xb)
			h.reserve(a, 0xa, typ)
			o := h.mustGood(h.in(a, saReadFullStatus), "READ FULL STATUS")
			gen, descs := parseFullStatus(t, o.Data)
			if gen != 2 || len(descs) != 2 {
				t.Fatalf("generation %d, %d descriptors", gen, len(descs))
			}
			for i, p := range []Port{a, b} {
				d := descs[i]
				wantHolder := i == 0 || isAllRegistrants(typ)
				if d.key != uint64(0xa+i) || d.holder != wantHolder || d.allTgPt || d.relPort != p.RelativePortID {
					t.Fatalf("descriptor %d = %+v", i, d)
				}
				if wantHolder && d.typ != typ {
					t.Fatalf("holder descriptor type %d, want %d", d.typ, typ)
				}
				if !wantHolder && d.typ != 0 {
					t.Fatalf("non-holder descriptor type %d", d.typ)
				}
				got, name, err := decodeTransportID(d.tid)
				if err != nil || got != p.InitiatorPort || name != p.InitiatorName {
					t.Fatalf("TransportID %q %q %v, want %q", got, name, err, p.InitiatorPort)
				}
			}
		})
	}
}
