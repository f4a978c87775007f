package scsi

import (
	"bytes"
	"testing"
)

// modePagesOf splits MODE SENSE(6) data into pages keyed by page/subpage.
func modePagesOf(t *testing.T, data []byte) map[[2]byte][]byte {
	t.Helper()
	if int(data[0])+1 != len(data) {
		t.Fatalf("MODE DATA LENGTH %d for %d bytes", data[0], len(data))
	}
	out := map[[2]byte][]byte{}
	for p := data[4+int(data[3]):]; len(p) > 0; {
		n := int(p[1]) + 2
		key := [2]byte{p[0] & 0x3f, 0}
		if p[0]&0x40 != 0 {
			n = int(be16(p[2:4])) + 4
			key[1] = p[1]
		}
		out[key] = p[:n]
		p = p[n:]
	}
	return out
}

func TestModeSense(t *testing.T) {
	e := newEnv(t)
	all := e.good(cdbModeSense6(false, pcCurrent, pageAll, 0, 255), nil)
	if all[2] != 0x10 || all[3] != 8 {
		t.Errorf("header % x: want DPOFUA and an 8-byte block descriptor", all[:4])
	}
	if be32(all[4:8]) != testBlocks || be24(all[9:12]) != testBlockSize {
		t.Errorf("block descriptor % x", all[4:12])
	}
	pages := modePagesOf(t, all)
	for _, k := range [][2]byte{{0x01, 0}, {0x08, 0}, {0x0a, 0}, {0x1c, 0}} {
		if pages[k] == nil {
			t.Errorf("page %02x missing from all pages", k[0])
		}
	}
	if pages[[2]byte{0x0a, 1}] != nil {
		t.Error("subpage 0Ah/01h returned for subpage 00h")
	}
	if len(modePagesOf(t, e.good(cdbModeSense6(true, pcCurrent, pageAll, subpageAll, 255), nil))) != 5 {
		t.Error("all pages and subpages: want 5")
	}
	ctl := modePagesOf(t, e.good(cdbModeSense6(true, pcCurrent, pageControl, 0, 255), nil))[[2]byte{0x0a, 0}]
	if !bytes.Equal(ctl, pages[[2]byte{0x0a, 0}]) {
		t.Error("control page differs between all pages and the single page")
	}
	if ctl[5]&0x40 == 0 || ctl[2]&0x04 != 0 || be16(ctl[8:10]) != 0xffff {
		t.Errorf("control page % x", ctl)
	}
	chg := modePagesOf(t, e.good(cdbModeSense6(true, pcChangeable, pageControl, 0, 255), nil))[[2]byte{0x0a, 0}]
	if chg[2] != 0x04 || chg[4] != 0x08 || chg[5] != 0x40 {
		t.Errorf("changeable control page % x", chg)
	}
	if cache := modePagesOf(t, e.good(cdbModeSense6(true, pcDefault, pageCaching, 0, 255), nil))[[2]byte{0x08, 0}]; cache[2]&0x04 == 0 {
		t.Error("default caching page: WCE clear")
	}
	r := e.expectSense(cdbModeSense6(true, pcSaved, pageAll, 0, 255), nil, senseIllegalRequest, ascSavingNotSupported)
	if p := parseSense(t, r.Sense); p.field != 2 || p.bit != 7 {
		t.Errorf("saved values: %+v", p)
	}
	e.expectSense(cdbModeSense6(true, pcCurrent, 0x19, 0, 255), nil, senseIllegalRequest, ascInvalidFieldInCDB)
	e.expectSense(cdbModeSense6(true, pcCurrent, pageCaching, 5, 255), nil, senseIllegalRequest, ascInvalidFieldInCDB)
	if got := e.good(cdbModeSense6(false, pcCurrent, pageAll, 0, 4), nil); len(got) != 4 || int(got[0])+1 != len(all) {
		t.Errorf("allocation length 4: % x", got)
	}

	// MODE SENSE(10) with LLBAA returns the long block descriptor.
	c := []byte{opModeSense10, 0x10, pageCaching, 0, 0, 0, 0, 0, 255, 0}
	d := e.good(c, nil)
	if d[4]&1 == 0 || be16(d[6:8]) != 16 || be64(d[8:16]) != testBlocks || be32(d[20:24]) != testBlockSize ||
		int(be16(d[0:2]))+2 != len(d) {
		t.Errorf("MODE SENSE(10) LLBAA % x", d[:24])
	}
}

func modeSelect6(page []byte) ([]byte, []byte) {
	param := append(make([]byte, 4), page...)
	return []byte{opModeSelect6, 0x10, 0, 0, byte(len(param)), 0}, param
}

func TestModeSelect(t *testing.T) {
	e := newEnv(t)
	other := e.login("iqn.2024-01.org.example:host2", 2)
	ctl := bytes.Clone(e.good(cdbModeSense6(true, pcCurrent, pageControl, 0, 255), nil)[4:])

	// D_SENSE switches sense data to the descriptor format.
	ctl[2] |= 0x04
	e.good(modeSelect6(ctl))
	r := e.expectSense(cdb16(opRead16, ^uint64(0), 1), nil, senseIllegalRequest, ascLBAOutOfRange)
	if r.Sense[0] != 0x72 {
		t.Errorf("D_SENSE=1: sense format %#x", r.Sense[0])
	}
	// The other nexus learns about it.
	r = e.execOn(other, 0, cdbTUR(), nil)
	if k, c := senseCode(t, r); k != senseUnitAttention || c != ascModeParametersChanged {
		t.Errorf("other nexus: %#x/%04x, want MODE PARAMETERS CHANGED", k, c)
	}
	if r := e.exec(cdbTUR(), nil); r.Status != StatusGood {
		t.Error("the nexus that changed the parameters got a unit attention")
	}
	ctl[2] &^= 0x04
	e.good(modeSelect6(ctl))
	if r := e.exec(cdb16(opRead16, ^uint64(0), 1), nil); r.Sense[0] != 0x70 {
		t.Errorf("D_SENSE=0: sense format %#x", r.Sense[0])
	}

	// SWP makes the logical unit write protected.
	ctl[4] |= 0x08
	e.good(modeSelect6(ctl))
	e.expectSense(cdb10(opWrite10, 0, 1), fill(testBlockSize, 0), senseDataProtect, ascSoftwareWriteProtected)
	ctl[4] &^= 0x08
	e.good(modeSelect6(ctl))
	e.good(cdb10(opWrite10, 0, 1), fill(testBlockSize, 0))

	// A bit that is not changeable is refused with a field pointer into
	// the parameter list, and nothing changes.
	bad := bytes.Clone(ctl)
	bad[2] |= 0x04 // changeable
	bad[3] ^= 0x10 // QUEUE ALGORITHM MODIFIER: not changeable
	cdb, param := modeSelect6(bad)
	r = e.expectSense(cdb, param, senseIllegalRequest, ascInvalidFieldInParam)
	if p := parseSense(t, r.Sense); p.inCDB || p.field != 4+3 || p.bit != 4 {
		t.Errorf("field pointer %+v, want parameter byte 7 bit 4", p)
	}
	if e.lu.descriptorSense() {
		t.Error("a refused MODE SELECT changed D_SENSE")
	}

	for _, c := range []struct {
		name  string
		cdb   []byte
		param []byte
		code  asc
	}{
		{"SP", []byte{opModeSelect6, 0x11, 0, 0, 16, 0}, param, ascInvalidFieldInCDB},
		{"PF=0", []byte{opModeSelect6, 0x00, 0, 0, 16, 0}, param, ascInvalidFieldInCDB},
		{"unknown page", []byte{opModeSelect6, 0x10, 0, 0, 8, 0}, []byte{0, 0, 0, 0, 0x19, 2, 0, 0}, ascInvalidFieldInParam},
		{"wrong page length", []byte{opModeSelect6, 0x10, 0, 0, 8, 0}, []byte{0, 0, 0, 0, 0x0a, 2, 0, 0}, ascInvalidFieldInParam},
		{"truncated page", []byte{opModeSelect6, 0x10, 0, 0, 8, 0}, []byte{0, 0, 0, 0, 0x0a, 0x0a, 0, 0}, ascParameterListLength},
		{"PS set", []byte{opModeSelect6, 0x10, 0, 0, 16, 0}, append([]byte{0, 0, 0, 0, 0x8a}, ctl[1:]...), ascInvalidFieldInParam},
		{"block length change", []byte{opModeSelect6, 0x10, 0, 0, 12, 0}, []byte{0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0x10, 0}, ascInvalidFieldInParam},
	} {
		r := e.exec(c.cdb, c.param)
		if k, code := senseCode(t, r); k != senseIllegalRequest || code != c.code {
			t.Errorf("%s: %#x/%04x, want %04x", c.name, k, code, c.code)
		}
	}
	// A block descriptor with the current block length is accepted.
	withDesc := append([]byte{0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0x02, 0}, ctl...)
	e.good([]byte{opModeSelect6, 0x10, 0, 0, byte(len(withDesc)), 0}, withDesc)
	e.good([]byte{opModeSelect6, 0x10, 0, 0, 0, 0}, nil)
}
