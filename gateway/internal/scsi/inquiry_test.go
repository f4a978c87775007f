package scsi

import (
	"bytes"
	"testing"
)

func TestStandardInquiry(t *testing.T) {
	e := newEnv(t, func(c *LUConfig) { c.Revision = "1.2" })
	d := e.good(cdbInquiry(false, 0, 260), nil)
	checks := []struct {
		name string
		ok   bool
	}{
		{"length 96", len(d) == 96},
		{"qualifier 0, direct access", d[0] == 0x00},
		{"SPC-4", d[2] == 0x06},
		{"response data format 2", d[3]&0x0f == 2},
		{"additional length", int(d[4]) == len(d)-5},
		{"TPGS implicit and 3PC", d[5] == 0x18},
		{"CMDQUE", d[7]&0x02 != 0},
		{"vendor", string(d[8:16]) == "RBDGW   "},
		{"product", string(d[16:32]) == "RBD disk        "},
		{"revision", string(d[32:36]) == "1.2 "},
		{"SBC-3 descriptor", bytes.Contains(d[58:74], []byte{0x04, 0xc0})},
		{"SPC-4 descriptor", bytes.Contains(d[58:74], []byte{0x04, 0x60})},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("standard INQUIRY: %s: % x", c.name, d[:40])
		}
	}
	// Allocation lengths cut the same data.
	for alloc := 0; alloc < 300; alloc++ {
		got := e.good(cdbInquiry(false, 0, uint16(alloc)), nil)
		if !bytes.Equal(got, d[:min(alloc, len(d))]) {
			t.Fatalf("alloc %d: % x", alloc, got)
		}
	}
	r := e.expectSense(cdbInquiry(false, 0x80, 255), nil, senseIllegalRequest, ascInvalidFieldInCDB)
	if p := parseSense(t, r.Sense); p.field != 2 || !p.inCDB {
		t.Errorf("EVPD=0 with a page code: %+v", p)
	}
	e.expectSense(cdbInquiry(true, 0x55, 255), nil, senseIllegalRequest, ascInvalidFieldInCDB)
}

func TestVPDPages(t *testing.T) {
	e := newEnv(t)
	sup := e.good(cdbInquiry(true, vpdSupportedPages, 255), nil)
	pages := sup[4 : 4+be16(sup[2:4])]
	want := []byte{0x00, 0x80, 0x83, 0x86, 0x8f, 0xb0, 0xb1, 0xb2}
	if !bytes.Equal(pages, want) {
		t.Fatalf("supported pages % x, want % x", pages, want)
	}
	for _, p := range pages {
		d := e.good(cdbInquiry(true, p, 1024), nil)
		if d[0] != 0 || d[1] != p || int(be16(d[2:4]))+4 != len(d) {
			t.Errorf("page %#02x: header % x, length %d", p, d[:4], len(d))
		}
	}
	if got := e.good(cdbInquiry(true, vpdUnitSerial, 255), nil); string(got[4:]) != "0123456789abcdef" {
		t.Errorf("serial %q", got[4:])
	}

	limits := e.good(cdbInquiry(true, vpdBlockLimits, 255), nil)
	l := e.lu.cfg.Limits
	if len(limits) != 64 || limits[3] != 0x3c || limits[4]&0x01 != 0 ||
		limits[5] != l.MaxCompareAndWriteBlocks ||
		be32(limits[8:12]) != l.MaxTransferBytes/testBlockSize ||
		be32(limits[20:24]) != l.MaxUnmapBlocks || be32(limits[24:28]) != l.MaxUnmapDescriptors ||
		be64(limits[36:44]) != uint64(l.MaxWriteSameBlocks) {
		t.Errorf("block limits % x", limits)
	}
	if got := e.good(cdbInquiry(true, vpdBlockCharacteristics, 255), nil); be16(got[4:6]) != 1 {
		t.Errorf("rotation rate % x", got[4:6])
	}
	if got := e.good(cdbInquiry(true, vpdLogicalProvisioning, 255), nil); got[5] != 0xe4 || got[6]&0x07 != 2 {
		t.Errorf("logical block provisioning % x", got)
	}
}

// designators parses the Device Identification page.
func designators(t *testing.T, page []byte) map[[2]byte][]byte {
	t.Helper()
	out := map[[2]byte][]byte{}
	for d := page[4:]; len(d) > 0; {
		if len(d) < 4 || 4+int(d[3]) > len(d) {
			t.Fatalf("truncated designator % x", d)
		}
		key := [2]byte{d[1] >> 4 & 0x3, d[1] & 0x0f} // association, type
		out[key] = d[4 : 4+d[3]]
		if d[1]>>4&0x3 != 0 && (d[1]&0x80 == 0 || d[0]>>4 != 5) {
			t.Errorf("port designator without PIV/iSCSI protocol: % x", d[:4])
		}
		d = d[4+d[3]:]
	}
	return out
}

func TestDeviceIdentification(t *testing.T) {
	e := newEnv(t, func(c *LUConfig) { c.CompanyID = 0x123456 })
	n := &Nexus{InitiatorName: "iqn.2024-01.org.example:h2", TargetName: testTarget, TPGT: 3, RelativePortID: 7, PortGroupID: 9}
	e.tgt.NexusLogin(n)
	ds := designators(t, e.execOn(n, 0, cdbInquiry(true, vpdDeviceIdentification, 512), nil).Data)
	naa := []byte{0x61, 0x23, 0x45, 0x60, 0, 0, 0, 0, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}
	if got := ds[[2]byte{0, desigNAA}]; !bytes.Equal(got, naa) {
		t.Errorf("NAA % x, want % x", got, naa)
	}
	if got := ds[[2]byte{0, desigT10Vendor}]; string(got) != "RBDGW   0123456789abcdef" {
		t.Errorf("T10 vendor %q", got)
	}
	if got := ds[[2]byte{1, desigRelPort}]; !bytes.Equal(got, []byte{0, 0, 0, 7}) {
		t.Errorf("relative port % x", got)
	}
	if got := ds[[2]byte{1, desigTPG}]; !bytes.Equal(got, []byte{0, 0, 0, 9}) {
		t.Errorf("port group % x", got)
	}
	name := ds[[2]byte{1, desigSCSIName}]
	if string(bytes.TrimRight(name, "\x00")) != testTarget+",t,0x0003" || len(name)%4 != 0 {
		t.Errorf("SCSI name %q", name)
	}
	if got := ds[[2]byte{2, desigSCSIName}]; string(bytes.TrimRight(got, "\x00")) != testTarget {
		t.Errorf("target name %q", got)
	}
}

// A LUN without a logical unit answers INQUIRY with peripheral qualifier
// 011b, REQUEST SENSE with LOGICAL UNIT NOT SUPPORTED, and rejects the rest.
func TestLUNWithoutLogicalUnit(t *testing.T) {
	e := newEnv(t)
	d := e.execOn(e.n, 5, cdbInquiry(false, 0, 96), nil)
	if d.Status != StatusGood || d.Data[0] != 0x7f {
		t.Fatalf("INQUIRY: %+v", d)
	}
	if r := e.execOn(e.n, 5, cdbInquiry(true, 0, 96), nil); r.Status != StatusGood || !bytes.Equal(r.Data, []byte{0x7f, 0, 0, 1, 0}) {
		t.Errorf("VPD 00h: %+v", r)
	}
	r := e.execOn(e.n, 5, cdbRequestSense(false, 252), nil)
	if p := parseSense(t, r.Data); r.Status != StatusGood || p.code != ascLUNotSupported {
		t.Errorf("REQUEST SENSE: %+v", r)
	}
	r = e.execOn(e.n, 5, cdbTUR(), nil)
	if k, c := senseCode(t, r); k != senseIllegalRequest || c != ascLUNotSupported {
		t.Errorf("TEST UNIT READY: %#x/%04x", k, c)
	}
	// Unknown opcodes too: the LUN check comes first.
	r = e.execOn(e.n, 5, []byte{0xff, 0, 0, 0, 0, 0}, nil)
	if _, c := senseCode(t, r); c != ascLUNotSupported {
		t.Errorf("unknown opcode: %04x", c)
	}
	if r := e.execOn(e.n, 5, cdbReportLUNs(0, 64), nil); r.Status != StatusGood {
		t.Errorf("REPORT LUNS: %+v", r)
	}
}

func TestReportLUNs(t *testing.T) {
	e := newEnv(t)
	lu2 := newLUForTest(t, "disk2", "00000000000000aa")
	e.tgt.SetLU(300, lu2)
	d := e.good(cdbReportLUNs(0, 512), nil)
	want := []byte{0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x41, 0x2c, 0, 0, 0, 0, 0, 0}
	if !bytes.Equal(d, want) {
		t.Errorf("REPORT LUNS % x", d)
	}
	if d := e.good(cdbReportLUNs(1, 512), nil); !bytes.Equal(d, make([]byte, 8)) {
		t.Errorf("well-known only: % x", d)
	}
	e.expectSense(cdbReportLUNs(3, 512), nil, senseIllegalRequest, ascInvalidFieldInCDB)
	e.expectSense(cdbReportLUNs(0, 15), nil, senseIllegalRequest, ascInvalidFieldInCDB)

	empty := NewTarget("iqn.2024-01.org.example:empty", TargetOptions{})
	n := &Nexus{InitiatorName: "i", TargetName: "iqn.2024-01.org.example:empty"}
	r := empty.Execute(t.Context(), &Command{Nexus: n, CDB: cdbReportLUNs(2, 64)})
	if r.Status != StatusGood || !bytes.Equal(r.Data, []byte{0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}) {
		t.Errorf("no logical units: LUN 0 must be reported: %+v", r)
	}
}

func newLUForTest(t *testing.T, name, wwn string) *LU {
	t.Helper()
	lu, err := NewLU(memImage(testBlocks), LUConfig{Name: name, WWN: wwn, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lu.Close)
	return lu
}

func TestEncodeLUN(t *testing.T) {
	for _, c := range []struct {
		lun  uint64
		want []byte
	}{
		{0, []byte{0, 0, 0, 0, 0, 0, 0, 0}},
		{255, []byte{0, 0xff, 0, 0, 0, 0, 0, 0}},
		{256, []byte{0x41, 0x00, 0, 0, 0, 0, 0, 0}},
		{16383, []byte{0x7f, 0xff, 0, 0, 0, 0, 0, 0}},
		{16384, []byte{0xd2, 0x00, 0x40, 0x00, 0, 0, 0, 0}},
	} {
		got := make([]byte, 8)
		encodeLUN(got, c.lun)
		if !bytes.Equal(got, c.want) {
			t.Errorf("LUN %d: % x, want % x", c.lun, got, c.want)
		}
	}
}
