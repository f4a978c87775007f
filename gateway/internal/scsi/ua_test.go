package scsi

import (
	"testing"
)

func TestUnitAttentionReporting(t *testing.T) {
	e := newEnv(t)
	n := &Nexus{InitiatorName: "iqn.2024-01.org.example:late", TargetName: testTarget, TPGT: 1, RelativePortID: 1}
	e.tgt.NexusLogin(n)
	// INQUIRY and REPORT LUNS neither report nor clear the condition.
	if r := e.execOn(n, 0, cdbInquiry(false, 0, 96), nil); r.Status != StatusGood {
		t.Fatalf("INQUIRY with a pending unit attention: %#x", r.Status)
	}
	if r := e.execOn(n, 0, cdbReportLUNs(0, 64), nil); r.Status != StatusGood {
		t.Fatalf("REPORT LUNS with a pending unit attention: %#x", r.Status)
	}
	// REQUEST SENSE returns it, in the format the DESC bit asks for.
	r := e.execOn(n, 0, cdbRequestSense(true, 252), nil)
	if r.Status != StatusGood || r.Data[0] != 0x72 {
		t.Fatalf("REQUEST SENSE: %+v", r)
	}
	if p := parseSense(t, r.Data); p.key != senseUnitAttention || p.code != ascPowerOnReset {
		t.Errorf("REQUEST SENSE reported %+v", p)
	}
	r = e.execOn(n, 0, cdbRequestSense(false, 252), nil)
	if p := parseSense(t, r.Data); p.key != senseNoSense || p.code != ascNone || r.Data[0] != 0x70 {
		t.Errorf("second REQUEST SENSE: %+v", p)
	}
	if r := e.execOn(n, 0, cdbTUR(), nil); r.Status != StatusGood {
		t.Errorf("TUR after REQUEST SENSE: %#x", r.Status)
	}
}

func TestCapacityChanged(t *testing.T) {
	img := memImage(testBlocks)
	e := newEnvWithImage(t, img)
	other := e.login("iqn.2024-01.org.example:h2", 2)
	e.lu.Resized() // same size: nothing to report
	if r := e.exec(cdbTUR(), nil); r.Status != StatusGood {
		t.Fatal("Resized without a change queued a unit attention")
	}
	if err := img.Resize(2 * testBlocks * testBlockSize); err != nil {
		t.Fatal(err)
	}
	e.lu.Resized()
	for _, n := range []*Nexus{e.n, other} {
		r := e.execOn(n, 0, cdb10(opReadCapacity10, 0, 0), nil)
		if k, c := senseCode(t, r); k != senseUnitAttention || c != ascCapacityChanged {
			t.Errorf("%s: %#x/%04x, want CAPACITY DATA HAS CHANGED", n.InitiatorName, k, c)
		}
		if d := e.execOn(n, 0, cdb10(opReadCapacity10, 0, 0), nil).Data; be32(d[0:4]) != 2*testBlocks-1 {
			t.Errorf("new capacity % x", d)
		}
	}
}

func TestReportedLUNsChanged(t *testing.T) {
	e := newEnv(t)
	e.tgt.SetLU(1, newLUForTest(t, "disk2", "00000000000000bb"))
	// The new logical unit has no condition; the old one has.
	if r := e.execOn(e.n, 1, cdbTUR(), nil); r.Status != StatusGood {
		t.Errorf("new LUN: %#x", r.Status)
	}
	r := e.exec(cdbTUR(), nil)
	if k, c := senseCode(t, r); k != senseUnitAttention || c != ascReportedLUNsChanged {
		t.Fatalf("LUN 0 after a LUN was added: %#x/%04x", k, c)
	}
	// REPORT LUNS clears the condition on every logical unit.
	e.tgt.RemoveLU(1)
	e.good(cdbReportLUNs(0, 64), nil)
	if r := e.exec(cdbTUR(), nil); r.Status != StatusGood {
		t.Errorf("after REPORT LUNS: %#x", r.Status)
	}
}

func TestUnitAttentionPriority(t *testing.T) {
	var q uaQueue
	q.add(ascCapacityChanged)
	q.add(ascModeParametersChanged)
	q.add(ascAsymmetricAccessChanged)
	q.add(ascBusDeviceReset)
	q.add(ascCapacityChanged) // duplicate
	want := []asc{ascBusDeviceReset, ascAsymmetricAccessChanged, ascCapacityChanged, ascModeParametersChanged}
	for i, w := range want {
		if got, ok := q.pop(); !ok || got != w {
			t.Fatalf("pop %d: %04x, want %04x", i, got, w)
		}
	}
	if _, ok := q.pop(); ok {
		t.Fatal("queue not empty")
	}
	for i := 0; i < 3*maxPendingUAs; i++ {
		q.add(asc(0x3f00 + i))
	}
	q.add(ascPowerOnReset)
	if q.len() != maxPendingUAs {
		t.Errorf("queue length %d", q.len())
	}
	if got, _ := q.pop(); got != ascPowerOnReset {
		t.Errorf("a reset must survive a full queue: %04x", got)
	}
}

func TestAccessStateChangedUA(t *testing.T) {
	e := newEnv(t)
	e.lu.AccessStateChanged()
	r := e.exec(cdb10(opRead10, 0, 1), nil)
	if k, c := senseCode(t, r); k != senseUnitAttention || c != ascAsymmetricAccessChanged {
		t.Errorf("%#x/%04x", k, c)
	}
}
