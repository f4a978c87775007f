package scsi

import (
	"context"
	"encoding/binary"
	"log/slog"
	"testing"

	"github.com/rbdgw/rbdgw/rbdbackend"
)

const (
	testTarget    = "iqn.2024-01.org.example:t1"
	testBlockSize = 512
	testBlocks    = 8192 // 4 MiB
)

var quietLogger = slog.New(slog.DiscardHandler)

// env is a target with one memory-backed logical unit at LUN 0 and a
// logged-in I_T nexus whose initial unit attention has been cleared.
type env struct {
	t   testing.TB
	tgt *Target
	lu  *LU
	img rbdbackend.Image
	n   *Nexus
	tag uint32
}

type envOption func(*LUConfig)

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	return newEnvWithImage(t, rbdbackend.NewMemoryImage(testBlocks*testBlockSize), opts...)
}

func newEnvWithImage(t testing.TB, img rbdbackend.Image, opts ...envOption) *env {
	t.Helper()
	cfg := LUConfig{Name: "disk1", BlockSize: testBlockSize, WWN: "0123456789abcdef", Logger: quietLogger}
	for _, o := range opts {
		o(&cfg)
	}
	lu, err := NewLU(img, cfg)
	if err != nil {
		t.Fatalf("NewLU: %v", err)
	}
	t.Cleanup(lu.Close)
	tgt := NewTarget(testTarget, TargetOptions{Logger: quietLogger})
	tgt.SetLU(0, lu)
	e := &env{t: t, tgt: tgt, lu: lu, img: img}
	e.n = e.login("iqn.2024-01.org.example:host1", 1)
	return e
}

// login logs a nexus in and consumes its POWER ON unit attention.
func (e *env) login(initiator string, isid byte) *Nexus {
	e.t.Helper()
	n := &Nexus{InitiatorName: initiator, ISID: [6]byte{0x80, 0, 0, 0, 0, isid}, TargetName: testTarget,
		TPGT: 1, RelativePortID: 1, PortGroupID: 1}
	e.tgt.NexusLogin(n)
	r := e.execOn(n, 0, cdbTUR(), nil)
	if k, c := senseCode(e.t, r); r.Status != StatusCheckCondition || k != senseUnitAttention || c != ascPowerOnReset {
		e.t.Fatalf("first TUR after login: status %#x sense %#x/%04x, want UNIT ATTENTION 29h/00h", r.Status, k, c)
	}
	return n
}

func (e *env) exec(cdb []byte, data []byte) Result {
	e.t.Helper()
	return e.execOn(e.n, 0, cdb, data)
}

func (e *env) execOn(n *Nexus, lun uint64, cdb []byte, data []byte) Result {
	e.t.Helper()
	e.tag++
	cmd := &Command{Nexus: n, LUN: lun, CDB: cdb, Attr: TaskSimple, Tag: e.tag, DataOut: data,
		ExpectedLength: uint32(len(data)), Write: data != nil, Read: data == nil}
	return e.tgt.Execute(context.Background(), cmd)
}

// good runs a command that must succeed and returns its data.
func (e *env) good(cdb []byte, data []byte) []byte {
	e.t.Helper()
	r := e.exec(cdb, data)
	if r.Status != StatusGood {
		k, c := senseCode(e.t, r)
		e.t.Fatalf("CDB % x: status %#x sense %#x %04x, want GOOD", cdb, r.Status, k, c)
	}
	return r.Data
}

// expectSense runs a command that must end with CHECK CONDITION key/code.
func (e *env) expectSense(cdb []byte, data []byte, key byte, code asc) Result {
	e.t.Helper()
	r := e.exec(cdb, data)
	if r.Status != StatusCheckCondition {
		e.t.Fatalf("CDB % x: status %#x, want CHECK CONDITION %#x/%04x", cdb, r.Status, key, code)
	}
	if k, c := senseCode(e.t, r); k != key || c != code {
		e.t.Fatalf("CDB % x: sense %#x/%04x, want %#x/%04x", cdb, k, c, key, code)
	}
	return r
}

// parsedSense is sense data decoded from either format.
type parsedSense struct {
	key      byte
	code     asc
	info     uint64
	hasInfo  bool
	sksValid bool
	inCDB    bool
	field    int
	bit      int // -1 when no bit pointer
}

// parseSense decodes fixed or descriptor sense data and checks its
// structure.
func parseSense(t testing.TB, b []byte) parsedSense {
	t.Helper()
	if len(b) < 8 {
		t.Fatalf("sense data too short: % x", b)
	}
	p := parsedSense{field: -1, bit: -1}
	var sks []byte
	switch b[0] & 0x7f {
	case 0x70:
		if len(b) < 18 || int(b[7])+8 != len(b) {
			t.Fatalf("bad fixed sense: % x", b)
		}
		p.key, p.code = b[2]&0x0f, asc(uint16(b[12])<<8|uint16(b[13]))
		if b[0]&0x80 != 0 {
			p.info, p.hasInfo = uint64(binary.BigEndian.Uint32(b[3:7])), true
		}
		sks = b[15:18]
	case 0x72:
		if int(b[7])+8 != len(b) {
			t.Fatalf("bad descriptor sense length: % x", b)
		}
		p.key, p.code = b[1]&0x0f, asc(uint16(b[2])<<8|uint16(b[3]))
		for d := b[8:]; len(d) > 0; {
			if len(d) < 2 || int(d[1])+2 > len(d) {
				t.Fatalf("bad sense descriptor: % x", b)
			}
			switch d[0] {
			case 0x00:
				p.info, p.hasInfo = binary.BigEndian.Uint64(d[4:12]), d[2]&0x80 != 0
			case 0x02:
				sks = d[4:7]
			}
			d = d[int(d[1])+2:]
		}
	default:
		t.Fatalf("unknown sense response code: % x", b)
	}
	if sks != nil && sks[0]&0x80 != 0 {
		p.sksValid = true
		p.inCDB = sks[0]&0x40 != 0
		p.field = int(binary.BigEndian.Uint16(sks[1:3]))
		if sks[0]&0x08 != 0 {
			p.bit = int(sks[0] & 0x07)
		}
	}
	return p
}

func senseCode(t testing.TB, r Result) (byte, asc) {
	t.Helper()
	if r.Status != StatusCheckCondition {
		return 0, 0
	}
	p := parseSense(t, r.Sense)
	return p.key, p.code
}

// CDB builders.

func cdbTUR() []byte { return []byte{opTestUnitReady, 0, 0, 0, 0, 0} }

func cdbInquiry(evpd bool, page byte, alloc uint16) []byte {
	c := []byte{opInquiry, 0, page, 0, 0, 0}
	if evpd {
		c[1] = 1
	}
	put16(c[3:5], alloc)
	return c
}

func cdb10(op byte, lba uint32, n uint16) []byte {
	c := make([]byte, 10)
	c[0] = op
	put32(c[2:6], lba)
	put16(c[7:9], n)
	return c
}

func cdb12(op byte, lba, n uint32) []byte {
	c := make([]byte, 12)
	c[0] = op
	put32(c[2:6], lba)
	put32(c[6:10], n)
	return c
}

func cdb16(op byte, lba uint64, n uint32) []byte {
	c := make([]byte, 16)
	c[0] = op
	put64(c[2:10], lba)
	put32(c[10:14], n)
	return c
}

func cdbRead6(lba uint32, n byte) []byte {
	return []byte{opRead6, byte(lba>>16) & 0x1f, byte(lba >> 8), byte(lba), n, 0}
}

func cdbSA16(sa byte, lba uint64, alloc uint32) []byte {
	c := cdb16(opServiceActionIn16, lba, alloc)
	c[1] = sa
	return c
}

func cdbMaintIn(sa byte, alloc uint32) []byte {
	c := make([]byte, 12)
	c[0], c[1] = opMaintenanceIn, sa
	put32(c[6:10], alloc)
	return c
}

func cdbReportLUNs(sel byte, alloc uint32) []byte {
	c := make([]byte, 12)
	c[0], c[2] = opReportLUNs, sel
	put32(c[6:10], alloc)
	return c
}

func cdbModeSense6(dbd bool, pc, page, sub, alloc byte) []byte {
	c := []byte{opModeSense6, 0, pc<<6 | page, sub, alloc, 0}
	if dbd {
		c[1] = 0x08
	}
	return c
}

func cdbRequestSense(desc bool, alloc byte) []byte {
	c := []byte{opRequestSense, 0, 0, 0, alloc, 0}
	if desc {
		c[1] = 1
	}
	return c
}

func fill(n int, b byte) []byte {
	d := make([]byte, n)
	for i := range d {
		d[i] = b
	}
	return d
}

// unmapList builds an UNMAP parameter list.
func unmapList(descs ...[2]uint64) []byte {
	p := make([]byte, 8+16*len(descs))
	put16(p[0:2], uint16(len(p)-2))
	put16(p[2:4], uint16(16*len(descs)))
	for i, d := range descs {
		put64(p[8+16*i:], d[0])
		put32(p[16+16*i:], uint32(d[1]))
	}
	return p
}

func cdbUnmap(plen uint16) []byte {
	c := make([]byte, 10)
	c[0] = opUnmap
	put16(c[7:9], plen)
	return c
}

func memImage(blocks int) *rbdbackend.MemoryImage {
	return rbdbackend.NewMemoryImage(int64(blocks) * testBlockSize)
}

func cawCDB(lba uint64, n byte) []byte {
	c := make([]byte, 16)
	c[0] = opCompareAndWrite
	put64(c[2:10], lba)
	c[13] = n
	return c
}
