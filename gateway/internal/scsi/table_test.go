package scsi

import (
	"bytes"
	"testing"

	"github.com/rbdgw/rbdgw/rbdbackend"
)

func TestTableInvariants(t *testing.T) {
	names := map[string]bool{}
	for _, e := range opList {
		if err := e.validate(); err != nil {
			t.Error(err)
		}
		if names[e.name] {
			t.Errorf("duplicate name %q", e.name)
		}
		names[e.name] = true
		got, unknownSA := lookupOp(append([]byte{e.opcode, byte(e.sa)}, make([]byte, 14)...))
		if got != e || unknownSA {
			t.Errorf("%s: lookup returned %v", e.name, got)
		}
		if e.usage[len(e.usage)-1] != ctl {
			t.Errorf("%s: control byte usage %#x", e.name, e.usage[len(e.usage)-1])
		}
		if e.dir == dirOut && e.access == 0 && e.opcode != opPersistentOut {
			t.Errorf("%s: a Data-Out command must be classified for reservations", e.name)
		}
	}
	for op := range opTable {
		s := opTable[op]
		if s.entry != nil && s.sas != nil {
			t.Errorf("opcode %#02x has both an entry and service actions", op)
		}
	}
}

// Every bit the usage data does not cover is reserved: setting it must end
// with INVALID FIELD IN CDB pointing at that byte and bit.
func TestReservedCDBBits(t *testing.T) {
	e := newEnv(t)
	for _, op := range opList {
		for i := 1; i < op.cdbLen; i++ {
			for bit := 0; bit < 8; bit++ {
				if op.usage[i]&(1<<bit) != 0 {
					continue
				}
				cdb := make([]byte, op.cdbLen)
				cdb[0] = op.opcode
				if op.hasSA {
					cdb[saFieldByte(op.opcode)] = byte(op.sa)
				}
				cdb[i] |= 1 << bit
				r := e.exec(cdb, nil)
				if r.Status != StatusCheckCondition {
					t.Errorf("%s: byte %d bit %d: status %#x", op.name, i, bit, r.Status)
					continue
				}
				p := parseSense(t, r.Sense)
				if p.key != senseIllegalRequest || p.code != ascInvalidFieldInCDB || !p.sksValid || !p.inCDB || p.field != i || p.bit != bit {
					t.Errorf("%s: byte %d bit %d: sense %+v", op.name, i, bit, p)
				}
			}
		}
		// NACA in the CONTROL byte is refused (ACA is not supported).
		cdb := make([]byte, op.cdbLen)
		cdb[0] = op.opcode
		if op.hasSA {
			cdb[saFieldByte(op.opcode)] = byte(op.sa)
		}
		cdb[op.cdbLen-1] = 0x04
		p := parseSense(t, e.exec(cdb, nil).Sense)
		if p.code != ascInvalidFieldInCDB || p.field != op.cdbLen-1 || p.bit != 2 {
			t.Errorf("%s: NACA: sense %+v", op.name, p)
		}
	}
}

func TestUnknownOpcodeAndServiceAction(t *testing.T) {
	e := newEnv(t)
	for op := 0; op < 256; op++ {
		s := opTable[op]
		if s.entry != nil {
			continue
		}
		cdb := make([]byte, 16)
		cdb[0] = byte(op)
		if s.sas == nil {
			e.expectSense(cdb, nil, senseIllegalRequest, ascInvalidOpcode)
			continue
		}
		for sa := 0; sa < 32; sa++ {
			if s.sas[uint16(sa)] != nil {
				continue
			}
			cdb[1] = byte(sa)
			r := e.expectSense(cdb, nil, senseIllegalRequest, ascInvalidFieldInCDB)
			if p := parseSense(t, r.Sense); p.field != 1 || !p.inCDB || p.bit != 4 {
				t.Errorf("opcode %#02x SA %#02x: field pointer %+v", op, sa, p)
			}
		}
	}
	// SANITIZE is not supported.
	e.expectSense(cdb10(0x48, 0, 0), nil, senseIllegalRequest, ascInvalidOpcode)
}

// rsocAll parses the all-commands format into opcode/SA descriptors.
type rsocDesc struct {
	opcode  byte
	sa      uint16
	servAct bool
	cdbLen  int
	ctdp    bool
}

func parseRSOCAll(t *testing.T, data []byte) []rsocDesc {
	t.Helper()
	if len(data) < 4 || int(be32(data[0:4]))+4 != len(data) {
		t.Fatalf("bad COMMAND DATA LENGTH: % x", data[:min(len(data), 8)])
	}
	var out []rsocDesc
	for d := data[4:]; len(d) > 0; {
		if len(d) < 8 {
			t.Fatalf("truncated descriptor")
		}
		r := rsocDesc{opcode: d[0], sa: be16(d[2:4]), servAct: d[5]&1 != 0, cdbLen: int(be16(d[6:8])), ctdp: d[5]&2 != 0}
		n := 8
		if r.ctdp {
			if be16(d[8:10]) != 0x0a {
				t.Fatalf("timeouts descriptor length %d", be16(d[8:10]))
			}
			n += 12
		}
		out = append(out, r)
		d = d[n:]
	}
	return out
}

func rsocCDB(rctd bool, option byte, opcode byte, sa uint16, alloc uint32) []byte {
	c := cdbMaintIn(byte(saReportOpcodes), alloc)
	c[2] = option
	if rctd {
		c[2] |= 0x80
	}
	c[3] = opcode
	put16(c[4:6], sa)
	return c
}

// REPORT SUPPORTED OPERATION CODES reports exactly the dispatch table, and
// its one-command form returns each entry's usage data.
func TestReportSupportedOpcodesMatchesTable(t *testing.T) {
	e := newEnv(t)
	for _, rctd := range []bool{false, true} {
		descs := parseRSOCAll(t, e.good(rsocCDB(rctd, rsocAll, 0, 0, 65535), nil))
		if len(descs) != len(opList) {
			t.Fatalf("reported %d commands, table has %d", len(descs), len(opList))
		}
		for i, d := range descs {
			want := opList[i]
			if d.opcode != want.opcode || d.sa != want.sa || d.servAct != want.hasSA || d.cdbLen != want.cdbLen || d.ctdp != rctd {
				t.Errorf("descriptor %d: %+v, want %s", i, d, want.name)
			}
			// The reported command runs (its opcode is dispatched).
			cdb := make([]byte, 16)
			cdb[0] = d.opcode
			if d.servAct {
				cdb[saFieldByte(d.opcode)] = byte(d.sa)
			}
			if got, unknown := lookupOp(cdb); got != want || unknown {
				t.Errorf("%s reported but not dispatched", want.name)
			}
		}
	}
	for _, op := range opList {
		option := byte(rsocOpcode)
		if op.hasSA {
			option = rsocOpcodeSA
		}
		one := e.good(rsocCDB(true, option, op.opcode, op.sa, 65535), nil)
		if one[1]&0x07 != supportStandard || one[1]&0x80 == 0 || int(be16(one[2:4])) != op.cdbLen {
			t.Errorf("%s: one-command header % x", op.name, one[:4])
			continue
		}
		if !bytes.Equal(one[4:4+op.cdbLen], op.usage) {
			t.Errorf("%s: usage % x, want % x", op.name, one[4:4+op.cdbLen], op.usage)
		}
		// The other reporting option is refused for this opcode.
		wrong := byte(rsocOpcodeSA)
		if op.hasSA {
			wrong = rsocOpcode
		}
		r := e.expectSense(rsocCDB(false, wrong, op.opcode, op.sa, 65535), nil, senseIllegalRequest, ascInvalidFieldInCDB)
		if p := parseSense(t, r.Sense); p.field == 1 {
			t.Errorf("%s: field pointer 1 would read as 'not implemented'", op.name)
		}
	}
	// Unsupported opcodes and service actions: SUPPORT 001b.
	if got := e.good(rsocCDB(false, rsocOpcode, 0x48, 0, 64), nil); !bytes.Equal(got, []byte{0, supportNone, 0, 0}) {
		t.Errorf("SANITIZE: % x", got)
	}
	if got := e.good(rsocCDB(false, rsocOpcodeSA, opServiceActionIn16, 0x1f, 64), nil); got[1]&7 != supportNone {
		t.Errorf("unknown SA: % x", got)
	}
	e.expectSense(rsocCDB(false, 4, 0, 0, 64), nil, senseIllegalRequest, ascInvalidFieldInCDB)
}

// A logical unit without discard does not offer UNMAP, nor one without
// atomic writes WRITE ATOMIC(16), in RSOC as in dispatch; with the
// capabilities both are offered.
func TestCapabilityGatedCommands(t *testing.T) {
	gated := []struct {
		opcode byte
		cdb    []byte
		data   []byte
	}{
		{opUnmap, cdbUnmap(24), unmapList([2]uint64{0, 1})},
		{opWriteAtomic16, cdbWriteAtomic16(0, 1), fill(testBlockSize, 1)},
	}
	plain := newEnvWithImage(t, plainImage{rbdbackend.NewMemoryImage(testBlocks * testBlockSize)})
	full := newEnv(t)
	for _, g := range gated {
		if reportsOpcode(t, plain, g.opcode) {
			t.Errorf("opcode %#02x reported without the capability", g.opcode)
		}
		plain.expectSense(g.cdb, g.data, senseIllegalRequest, ascInvalidOpcode)
		if got := plain.good(rsocCDB(false, rsocOpcode, g.opcode, 0, 64), nil); got[1]&7 != supportNone {
			t.Errorf("opcode %#02x one-command without the capability: % x", g.opcode, got)
		}
		if !reportsOpcode(t, full, g.opcode) {
			t.Errorf("opcode %#02x not reported with the capability", g.opcode)
		}
		full.good(g.cdb, g.data)
		if got := full.good(rsocCDB(false, rsocOpcode, g.opcode, 0, 64), nil); got[1]&7 != supportStandard {
			t.Errorf("opcode %#02x one-command with the capability: % x", g.opcode, got)
		}
	}
}

func reportsOpcode(t *testing.T, e *env, opcode byte) bool {
	t.Helper()
	for _, d := range parseRSOCAll(t, e.good(rsocCDB(false, rsocAll, 0, 0, 65535), nil)) {
		if d.opcode == opcode {
			return true
		}
	}
	return false
}

// plainImage hides every optional capability of the image it wraps.
type plainImage struct{ inner rbdbackend.Image }

func (p plainImage) ReadAt(b []byte, off int64) (int, error)  { return p.inner.ReadAt(b, off) }
func (p plainImage) WriteAt(b []byte, off int64) (int, error) { return p.inner.WriteAt(b, off) }
func (p plainImage) Size() int64                              { return p.inner.Size() }
func (p plainImage) Close() error                             { return p.inner.Close() }
