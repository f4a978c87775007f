package iscsi

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"slices"
	"testing"

	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
	"github.com/rbdgw/rbdgw/gateway/internal/scsi"
	"github.com/rbdgw/rbdgw/rbdbackend"
)

// LUN masking through the iSCSI layer: every path a command takes to a LUN
// (SCSI commands, Data-Out, task management, REPORT LUNS, EXTENDED COPY)
// ends in the same view of the session's initiator.

const (
	hostA   = "iqn.2024-01.org.example:host-a" // sees LUNs 0 and 2
	hostB   = "iqn.2024-01.org.example:host-b" // sees LUN 1
	hostAny = "iqn.2024-01.org.example:other"  // not listed: sees every LUN
)

type maskEnv struct {
	*testEnv
	imgs [3]*rbdbackend.MemoryImage // images of LUNs 0, 1 and 2
}

func newMaskEnv(t *testing.T) *maskEnv {
	t.Helper()
	e := &maskEnv{testEnv: newEnv(t)}
	e.imgs[0] = e.img
	for lun := uint64(1); lun <= 2; lun++ {
		img := rbdbackend.NewMemoryImage(4 << 20)
		lu, err := scsi.NewLU(img, scsi.LUConfig{Name: "disk" + string(rune('0'+lun)), BlockSize: testBlockSize,
			WWN: "00000000000000a" + string(rune('0'+lun)), Logger: slog.New(e.logs)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(lu.Close)
		e.device.SetLU(lun, lu)
		e.imgs[lun] = img
	}
	e.device.SetMasking(scsi.Masking{hostA: {0, 2}, hostB: {1}})
	return e
}

// loginAs logs initiator in and consumes the unit attentions of the LUNs
// it sees.
func (e *maskEnv) loginAs(initiator string) *iscsitest.Initiator {
	e.t.Helper()
	in := e.dial()
	if err := in.Login(iscsitest.LoginOptions{InitiatorName: initiator, TargetName: testIQN}); err != nil {
		e.t.Fatalf("login %s: %v", initiator, err)
	}
	for _, lun := range reportLUNs(e.t, in) {
		drainUA(e.t, in, lun)
	}
	return in
}

// drainUA runs TEST UNIT READY on lun until no unit attention is left.
func drainUA(t testing.TB, in *iscsitest.Initiator, lun uint64) {
	t.Helper()
	for range 8 {
		res, err := in.Do(&iscsitest.Cmd{LUN: lun, CDB: cdbTUR()})
		if err != nil {
			t.Fatal(err)
		}
		if res.Status == 0 || len(res.Sense) < 3 || res.Sense[2]&0x0f != 0x06 {
			return
		}
	}
	t.Fatalf("unit attentions on LUN %d do not clear", lun)
}

func reportLUNs(t testing.TB, in *iscsitest.Initiator) []uint64 {
	t.Helper()
	cdb := make([]byte, 12)
	cdb[0] = 0xa0
	binary.BigEndian.PutUint32(cdb[6:], 4096)
	res, err := in.Do(&iscsitest.Cmd{CDB: cdb, Read: true, EDTL: 4096})
	if err != nil || res.Status != 0 {
		t.Fatalf("REPORT LUNS: %v %+v", err, res)
	}
	n := binary.BigEndian.Uint32(res.Data[0:4])
	var luns []uint64
	for i := 8; i < 8+int(n); i += 8 {
		luns = append(luns, uint64(res.Data[i+1]))
	}
	return luns
}

// senseOf returns the sense key, ASC and ASCQ of fixed-format sense data.
func senseOf(t testing.TB, res *iscsitest.Result) (key, asc, ascq byte) {
	t.Helper()
	if res.Status != 0x02 || len(res.Sense) < 14 {
		t.Fatalf("status %#x sense % x, want CHECK CONDITION", res.Status, res.Sense)
	}
	return res.Sense[2] & 0x0f, res.Sense[12], res.Sense[13]
}

func inquiry(t testing.TB, in *iscsitest.Initiator, lun uint64, evpd bool, page byte) *iscsitest.Result {
	t.Helper()
	cdb := []byte{0x12, 0, page, 0, 255, 0}
	if evpd {
		cdb[1] = 1
	}
	res, err := in.Do(&iscsitest.Cmd{LUN: lun, CDB: cdb, Read: true, EDTL: 255})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestMaskingReportLUNsPerInitiator(t *testing.T) {
	e := newMaskEnv(t)
	for _, tt := range []struct {
		initiator string
		want      []uint64
	}{
		{hostA, []uint64{0, 2}},
		{hostB, []uint64{1}},
		{hostAny, []uint64{0, 1, 2}},
	} {
		in := e.loginAs(tt.initiator)
		if got := reportLUNs(t, in); !slices.Equal(got, tt.want) {
			t.Errorf("%s: REPORT LUNS %v, want %v", tt.initiator, got, tt.want)
		}
	}
	// The sessions report their initiators' views too.
	for _, s := range e.srv.Sessions() {
		want := map[string][]uint64{hostA: {0, 2}, hostB: {1}, hostAny: {0, 1, 2}}[s.Initiator]
		if !slices.Equal(s.LUNs, want) {
			t.Errorf("session of %s lists LUNs %v, want %v", s.Initiator, s.LUNs, want)
		}
	}
}

func TestMaskingCommandRouting(t *testing.T) {
	e := newMaskEnv(t)
	in := e.loginAs(hostB)
	const masked = 0
	// Every command to a masked LUN fails as to an absent LUN: LOGICAL
	// UNIT NOT SUPPORTED, and the data of a write never lands.
	data := pattern(4*testBlockSize, 0x5a)
	for _, c := range []*iscsitest.Cmd{
		{LUN: masked, CDB: cdbTUR()},
		{LUN: masked, CDB: cdbRead10(0, 4), Read: true, EDTL: uint32(len(data))},
		{LUN: masked, CDB: cdbWrite10(0, 4), EDTL: uint32(len(data)), Data: data},
		{LUN: 7, CDB: cdbWrite10(0, 4), EDTL: uint32(len(data)), Data: data},
	} {
		res, err := in.Do(c)
		if err != nil {
			t.Fatal(err)
		}
		if k, asc, ascq := senseOf(t, res); k != 0x05 || asc != 0x25 || ascq != 0 {
			t.Errorf("CDB % x to LUN %d: sense %#x %#x/%#x, want ILLEGAL REQUEST 25h/00h", c.CDB, c.LUN, k, asc, ascq)
		}
	}
	if bytes.Equal(e.imageBytes(0, len(data)), data) {
		t.Fatal("a write to a masked LUN reached its image")
	}
	// INQUIRY answers "no logical unit here" (peripheral qualifier 011b,
	// device type 1Fh), byte for byte as for an absent LUN.
	if a, b := inquiry(t, in, masked, false, 0), inquiry(t, in, 9, false, 0); a.Status != 0 || a.Data[0] != 0x7f || !bytes.Equal(a.Data, b.Data) {
		t.Errorf("INQUIRY to a masked LUN: %#x % x", a.Status, a.Data[:8])
	}
	if a, b := inquiry(t, in, masked, true, 0x83), inquiry(t, in, 9, true, 0x83); !bytes.Equal(a.Sense, b.Sense) {
		t.Errorf("INQUIRY VPD 83h to a masked LUN differs from an absent one: % x vs % x", a.Sense, b.Sense)
	}
	// The visible LUN works.
	res, err := in.Do(&iscsitest.Cmd{LUN: 1, CDB: cdbWrite10(0, 4), EDTL: uint32(len(data)), Data: data})
	if err != nil || res.Status != 0 {
		t.Fatalf("WRITE to the visible LUN: %v %+v", err, res)
	}
	got := make([]byte, len(data))
	if _, err := e.imgs[1].ReadAt(got, 0); err != nil || !bytes.Equal(got, data) {
		t.Errorf("the visible LUN was not written: %v", err)
	}
}

func TestMaskingTaskManagement(t *testing.T) {
	e := newMaskEnv(t)
	in := e.loginAs(hostB)
	const (
		abortTaskSet = 2
		luReset      = 5
		lunNotExist  = 2
	)
	for _, fn := range []uint8{abortTaskSet, luReset} {
		for _, lun := range []uint64{0, 9} {
			resp, err := in.TaskMgmt(fn, lun, 0xffffffff, 0)
			if err != nil {
				t.Fatal(err)
			}
			if resp != lunNotExist {
				t.Errorf("function %d to LUN %d: response %d, want %d (LUN does not exist)", fn, lun, resp, lunNotExist)
			}
		}
	}
	// The refused reset did not reach LUN 0: another initiator finds no
	// reset condition there.
	other := e.loginAs(hostA)
	if res, err := other.Do(&iscsitest.Cmd{LUN: 0, CDB: cdbTUR()}); err != nil || res.Status != 0 {
		t.Errorf("LUN 0 after a masked LOGICAL UNIT RESET: %v %+v", err, res)
	}
	if resp, err := in.TaskMgmt(luReset, 1, 0xffffffff, 0); err != nil || resp != 0 {
		t.Errorf("LOGICAL UNIT RESET of a visible LUN: %v %d", err, resp)
	}
}

// naaOf reads the NAA designator of lun from VPD page 83h.
func naaOf(t testing.TB, in *iscsitest.Initiator, lun uint64) []byte {
	t.Helper()
	res := inquiry(t, in, lun, true, 0x83)
	if res.Status != 0 {
		t.Fatalf("VPD 83h of LUN %d: %#x", lun, res.Status)
	}
	d := res.Data[4:]
	for len(d) >= 4 {
		n := int(d[3])
		if d[1]&0x0f == 3 && d[1]&0x30 == 0 && n == 16 {
			return d[4 : 4+n]
		}
		d = d[4+n:]
	}
	t.Fatalf("LUN %d has no NAA designator", lun)
	return nil
}

// xcopy copies 8 blocks from LBA 0 of the logical unit src names to LBA 64
// of the one dst names (LID1, identification target descriptors).
func xcopy(t testing.TB, in *iscsitest.Initiator, lun uint64, src, dst []byte) *iscsitest.Result {
	t.Helper()
	target := func(naa []byte) []byte {
		d := make([]byte, 32)
		d[0], d[4], d[5], d[7] = 0xe4, 1, 3, 16
		copy(d[8:24], naa)
		d[30] = testBlockSize >> 8
		return d
	}
	seg := make([]byte, 28)
	seg[0] = 0x02
	binary.BigEndian.PutUint16(seg[2:], 0x18)
	binary.BigEndian.PutUint16(seg[6:], 1)
	binary.BigEndian.PutUint16(seg[10:], 8)
	binary.BigEndian.PutUint64(seg[20:], 64)
	p := make([]byte, 16)
	p[1] = 3 << 3 // list identifier not used
	binary.BigEndian.PutUint16(p[2:], 64)
	binary.BigEndian.PutUint32(p[8:], 28)
	p = append(append(append(p, target(src)...), target(dst)...), seg...)
	cdb := make([]byte, 16)
	cdb[0] = 0x83
	binary.BigEndian.PutUint32(cdb[10:], uint32(len(p)))
	res, err := in.Do(&iscsitest.Cmd{LUN: lun, CDB: cdb, EDTL: uint32(len(p)), Data: p})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestMaskingExtendedCopy(t *testing.T) {
	e := newMaskEnv(t)
	// Any initiator can learn a device's designator; knowing it must not
	// be enough to reach the device.
	naa := make([][]byte, 3)
	spy := e.loginAs(hostAny)
	for lun := range naa {
		naa[lun] = naaOf(t, spy, uint64(lun))
	}
	in := e.loginAs(hostA) // sees LUNs 0 and 2
	secret := pattern(8*testBlockSize, 0x33)
	if _, err := e.imgs[1].WriteAt(secret, 0); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		src, dst int
		ok       bool
	}{
		{"between visible LUNs", 0, 2, true},
		{"from a masked LUN", 1, 2, false},
		{"to a masked LUN", 0, 1, false},
	} {
		res := xcopy(t, in, 0, naa[tt.src], naa[tt.dst])
		if tt.ok {
			if res.Status != 0 {
				t.Errorf("%s: status %#x sense % x", tt.name, res.Status, res.Sense)
			}
			continue
		}
		// COPY ABORTED, COPY TARGET DEVICE NOT REACHABLE: what an
		// unknown designator gets.
		if k, asc, ascq := senseOf(t, res); k != 0x0a || asc != 0x0d || ascq != 0x02 {
			t.Errorf("%s: sense %#x %#x/%#x, want COPY ABORTED 0Dh/02h", tt.name, k, asc, ascq)
		}
	}
	unknown := bytes.Clone(naa[2])
	unknown[15] ^= 0xff
	if k, asc, ascq := senseOf(t, xcopy(t, in, 0, naa[0], unknown)); k != 0x0a || asc != 0x0d || ascq != 0x02 {
		t.Errorf("unknown designator: sense %#x %#x/%#x", k, asc, ascq)
	}
	got := make([]byte, len(secret))
	if _, err := e.imgs[2].ReadAt(got, 64*testBlockSize); err != nil || bytes.Equal(got, secret) {
		t.Error("a masked LUN's data was copied into a visible one")
	}
	if _, err := e.imgs[1].ReadAt(got, 64*testBlockSize); err != nil || !bytes.Equal(got, make([]byte, len(got))) {
		t.Error("a copy wrote into a masked LUN")
	}
}

// A live change of the views: sessions stay, the nexuses whose view
// changed get REPORTED LUNS DATA HAS CHANGED, the others nothing.
func TestMaskingLiveChange(t *testing.T) {
	e := newMaskEnv(t)
	a, b, c := e.loginAs(hostA), e.loginAs(hostB), e.loginAs(hostAny)
	sessions := e.sessionCount()
	e.device.SetMasking(scsi.Masking{hostA: {2}, hostB: {1}})
	if e.sessionCount() != sessions {
		t.Fatalf("sessions %d, was %d", e.sessionCount(), sessions)
	}
	ua := func(in *iscsitest.Initiator, lun uint64) bool {
		t.Helper()
		res, err := in.Do(&iscsitest.Cmd{LUN: lun, CDB: cdbTUR()})
		if err != nil {
			t.Fatal(err)
		}
		if res.Status == 0 {
			return false
		}
		k, asc, ascq := senseOf(t, res)
		if k != 0x06 || asc != 0x3f || ascq != 0x0e {
			t.Fatalf("LUN %d: sense %#x %#x/%#x, want UNIT ATTENTION 3Fh/0Eh", lun, k, asc, ascq)
		}
		return true
	}
	if !ua(a, 2) {
		t.Error("host A's view changed, but no REPORTED LUNS DATA HAS CHANGED")
	}
	if ua(b, 1) || ua(c, 0) {
		t.Error("a session whose view did not change got the unit attention")
	}
	if got := reportLUNs(t, a); !slices.Equal(got, []uint64{2}) {
		t.Errorf("host A after the change: REPORT LUNS %v", got)
	}
	if res, err := a.Do(&iscsitest.Cmd{LUN: 0, CDB: cdbTUR()}); err != nil || res.Status == 0 {
		t.Errorf("host A still reaches LUN 0: %v %+v", err, res)
	}
	// Host B now sees LUN 0 too: it learns of it on the LUN it already had.
	e.device.SetMasking(scsi.Masking{hostA: {2}, hostB: {0, 1}})
	if !ua(b, 1) {
		t.Error("host B was not told about LUN 0")
	}
	if got := reportLUNs(t, b); !slices.Equal(got, []uint64{0, 1}) {
		t.Errorf("host B after the change: REPORT LUNS %v", got)
	}
	if e.sessionCount() != sessions {
		t.Fatalf("sessions %d, was %d", e.sessionCount(), sessions)
	}
}
