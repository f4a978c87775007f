package scsi

import (
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/scsi/pr"
)

func prOutCDB(sa, typ byte) []byte {
	c := []byte{opPersistentOut, sa, typ, 0, 0, 0, 0, 0, 24, 0}
	return c
}

func prOutParam(key, sakey uint64) []byte {
	p := make([]byte, 24)
	put64(p[0:8], key)
	put64(p[8:16], sakey)
	return p
}

func prInCDB(sa byte, alloc uint16) []byte {
	c := []byte{opPersistentIn, sa, 0, 0, 0, 0, 0, 0, 0, 0}
	put16(c[7:9], alloc)
	return c
}

func TestPersistentReservations(t *testing.T) {
	e := newEnv(t)
	other := e.login("iqn.2024-01.org.example:h2", 2)
	e.good(prOutCDB(0x06, 0), prOutParam(0, 0xaa))             // REGISTER AND IGNORE EXISTING KEY
	e.execOn(other, 0, prOutCDB(0x06, 0), prOutParam(0, 0xbb)) // second registrant
	keys := e.good(prInCDB(0x00, 64), nil)
	if be32(keys[4:8]) != 16 {
		t.Fatalf("READ KEYS % x", keys)
	}
	if got := e.good(prInCDB(0x00, 6), nil); len(got) != 6 {
		t.Errorf("READ KEYS not cut to the allocation length: %d bytes", len(got))
	}
	// Write Exclusive: the other nexus may read but not write.
	e.good(prOutCDB(0x01, 0x01), prOutParam(0xaa, 0))
	if r := e.execOn(other, 0, cdb10(opRead10, 0, 1), nil); r.Status != StatusGood {
		t.Errorf("READ through Write Exclusive: %#x", r.Status)
	}
	if r := e.execOn(other, 0, cdb10(opWrite10, 0, 1), fill(testBlockSize, 0)); r.Status != StatusReservationConflict || r.Sense != nil {
		t.Errorf("WRITE through Write Exclusive: %+v", r)
	}
	if r := e.execOn(other, 0, cdbTUR(), nil); r.Status != StatusGood {
		t.Errorf("TEST UNIT READY through a persistent reservation: %#x", r.Status)
	}
	e.good(cdb10(opWrite10, 0, 1), fill(testBlockSize, 0))
	// PREEMPT by the other registrant: the holder gets REGISTRATIONS
	// PREEMPTED.
	if r := e.execOn(other, 0, prOutCDB(0x04, 0x01), prOutParam(0xbb, 0xaa)); r.Status != StatusGood {
		t.Fatalf("PREEMPT: %+v", r)
	}
	r := e.exec(cdbTUR(), nil)
	if k, c := senseCode(t, r); k != senseUnitAttention || c != asc(0x2a05) {
		t.Errorf("preempted nexus: %#x/%04x, want REGISTRATIONS PREEMPTED", k, c)
	}
	// A malformed PERSISTENT RESERVE OUT is refused by the state machine.
	e.expectSense(prOutCDB(0x01, 0x02), prOutParam(0xaa, 0), senseIllegalRequest, ascInvalidFieldInCDB)
	// Parameter data shorter than the CDB says.
	e.expectSense(prOutCDB(0x00, 0), make([]byte, 8), senseIllegalRequest, ascInvalidFieldInIU)
}

func TestReserveRelease(t *testing.T) {
	e := newEnv(t)
	other := e.login("iqn.2024-01.org.example:h2", 2)
	e.good([]byte{opReserve6, 0, 0, 0, 0, 0}, nil)
	e.good([]byte{opReserve6, 0, 0, 0, 0, 0}, nil)
	for _, c := range [][]byte{
		{opReserve6, 0, 0, 0, 0, 0},
		cdbModeSense6(false, pcCurrent, pageAll, 0, 255),
		cdbTUR(),
		cdb10(opRead10, 0, 1),
	} {
		if r := e.execOn(other, 0, c, nil); r.Status != StatusReservationConflict {
			t.Errorf("op %#02x through RESERVE: %#x", c[0], r.Status)
		}
	}
	for _, c := range [][]byte{cdbInquiry(false, 0, 96), cdbReportLUNs(0, 64), cdbRequestSense(false, 18), cdb10(opReadCapacity10, 0, 0)} {
		if r := e.execOn(other, 0, c, nil); r.Status != StatusGood {
			t.Errorf("op %#02x through RESERVE: %#x", c[0], r.Status)
		}
	}
	// RELEASE from a non-holder is a no-op.
	if r := e.execOn(other, 0, []byte{opRelease6, 0, 0, 0, 0, 0}, nil); r.Status != StatusGood {
		t.Errorf("RELEASE by another nexus: %#x", r.Status)
	}
	e.good(cdbModeSense6(false, pcCurrent, pageAll, 0, 255), nil)
	e.good(cdb10(opRelease10, 0, 0), nil)
	if r := e.execOn(other, 0, cdb10(opReserve10, 0, 0), nil); r.Status != StatusGood {
		t.Errorf("RESERVE(10) after RELEASE(10): %#x", r.Status)
	}
}

func TestStartStopAndPreventAllow(t *testing.T) {
	e := newEnv(t)
	other := e.login("iqn.2024-01.org.example:h2", 2)
	ssu := func(immed bool, pc byte, noFlush, loej, start bool) []byte {
		c := []byte{opStartStopUnit, 0, 0, 0, pc << 4, 0}
		if immed {
			c[1] = 1
		}
		if noFlush {
			c[4] |= 0x04
		}
		if loej {
			c[4] |= 0x02
		}
		if start {
			c[4] |= 0x01
		}
		return c
	}
	e.good(ssu(false, 0, false, false, true), nil)
	e.good(ssu(true, 0, true, false, false), nil)
	e.good(ssu(false, 0, false, true, false), nil) // eject: nothing to eject
	e.good(ssu(false, 3, false, false, false), nil)
	e.expectSense(ssu(false, 5, false, false, false), nil, senseIllegalRequest, ascInvalidFieldInCDB)
	e.good(cdbTUR(), nil)

	e.good([]byte{opPreventAllow, 0, 0, 0, 1, 0}, nil)
	r := e.execOn(other, 0, ssu(false, 0, false, true, false), nil)
	if k, c := senseCode(t, r); k != senseIllegalRequest || c != ascMediumRemovalPrevented {
		t.Errorf("eject while prevented: %#x/%04x", k, c)
	}
	e.good(ssu(false, 0, false, true, true), nil) // load is fine
	e.good([]byte{opPreventAllow, 0, 0, 0, 0, 0}, nil)
	e.good(ssu(false, 0, false, true, false), nil)
	e.expectSense([]byte{opPreventAllow, 0, 0, 0, 2, 0}, nil, senseIllegalRequest, ascInvalidFieldInCDB)
}

func TestReportTMFs(t *testing.T) {
	e := newEnv(t)
	if d := e.good(cdbMaintIn(byte(saReportTMFs), 4), nil); len(d) != 4 || d[0] != supportedTMFs {
		t.Errorf("REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS % x", d)
	}
	c := cdbMaintIn(byte(saReportTMFs), 16)
	c[2] = 0x80
	if d := e.good(c, nil); len(d) != 16 || d[3] != 0x0c {
		t.Errorf("REPD % x", d)
	}
	e.expectSense(cdbMaintIn(byte(saReportTMFs), 3), nil, senseIllegalRequest, ascInvalidFieldInCDB)
}

// A PREEMPT AND ABORT made through another gateway: the preempted nexus's
// write, held in the backend, is aborted, and PeerReservation returns only
// once it can no longer touch the medium; the nexus then sees REGISTRATIONS
// PREEMPTED. Another nexus keeps its task and gets nothing.
func TestPeerReservationAbortsAndReports(t *testing.T) {
	g := newGatedImage()
	e := newEnvWithImage(t, g)
	other := e.login("iqn.2024-01.org.example:h2", 2)
	g.close()
	victim := e.async(e.n, 1000, TaskSimple, cdb10(opWrite10, 0, 1), fill(testBlockSize, 7))
	bystander := e.async(other, 1001, TaskSimple, cdb10(opWrite10, 8, 1), fill(testBlockSize, 8))
	e.waitTask(e.n, 1000)
	e.waitTask(other, 1001)
	p := portOf(e.n)
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.lu.PeerReservation(pr.Effects{
			UAs:          []pr.UnitAttention{{InitiatorPort: p.InitiatorPort, TargetPort: p.TargetPort, ASC: 0x2a, ASCQ: 0x05}},
			AbortNexuses: []pr.Port{p},
			AbortTasksOf: []string{p.InitiatorPort},
		})
	}()
	select {
	case <-done:
		t.Fatal("PeerReservation returned while the aborted write is still in the backend")
	case <-time.After(100 * time.Millisecond):
	}
	g.open()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("PeerReservation did not return once the write left the backend")
	}
	if r := recv(t, victim, "preempted WRITE"); !r.Aborted {
		t.Errorf("preempted WRITE: %+v, want aborted", r)
	}
	if r := recv(t, bystander, "other nexus's WRITE"); r.Aborted || r.Status != StatusGood {
		t.Errorf("other nexus's WRITE: %+v", r)
	}
	r := e.exec(cdbTUR(), nil)
	if k, c := senseCode(t, r); k != senseUnitAttention || c != asc(0x2a05) {
		t.Errorf("preempted nexus: %#x/%04x, want REGISTRATIONS PREEMPTED", k, c)
	}
	if r := e.execOn(other, 0, cdbTUR(), nil); r.Status != StatusGood {
		t.Errorf("other nexus: %+v", r)
	}
}
