package scsi

import (
	"bytes"
	"sync"
	"testing"
)

// fixedALUA reports configurable states for two port groups.
type fixedALUA struct {
	mu    sync.Mutex
	state map[uint16]AccessState
}

func (f *fixedALUA) AccessState(_ *LU, n *Nexus) AccessState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state[n.PortGroupID]
}

func (f *fixedALUA) TargetPortGroups(*LU, *Nexus) []TargetPortGroup {
	f.mu.Lock()
	defer f.mu.Unlock()
	return []TargetPortGroup{
		{ID: 1, State: f.state[1], Preferred: true, Ports: []uint16{1}},
		{ID: 2, State: f.state[2], StatusCode: 2, Ports: []uint16{2, 3}},
	}
}

func (f *fixedALUA) set(group uint16, s AccessState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state[group] = s
}

func TestReportTargetPortGroups(t *testing.T) {
	e := newEnv(t)
	d := e.good(cdbMaintIn(byte(saReportTPG), 1024), nil)
	want := []byte{0, 0, 0, 12, 0x80, supportedStatesMask, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1}
	if !bytes.Equal(d, want) {
		t.Errorf("default provider: % x, want % x", d, want)
	}

	a := &fixedALUA{state: map[uint16]AccessState{1: ActiveOptimized, 2: Standby}}
	e.tgt = NewTarget(testTarget, TargetOptions{ALUA: a, ImplicitTransitionSeconds: 30})
	e.tgt.SetLU(0, e.lu)
	ext := cdbMaintIn(byte(saReportTPG)|0x20, 1024)
	d = e.good(ext, nil)
	if int(be32(d[0:4]))+4 != len(d) || d[4] != 0x10 || d[5] != 30 {
		t.Fatalf("extended header % x", d[:8])
	}
	g2 := d[8+12:]
	if g2[0] != byte(Standby) || be16(g2[2:4]) != 2 || g2[5] != 2 || g2[7] != 2 || be16(g2[10:12]) != 2 || be16(g2[14:16]) != 3 {
		t.Errorf("second group % x", g2)
	}
	// Truncation keeps the header counts.
	if got := e.good(cdbMaintIn(byte(saReportTPG), 4), nil); !bytes.Equal(got, []byte{0, 0, 0, 28}) {
		t.Errorf("allocation length 4: % x", got)
	}
	e.expectSense(cdbMaintIn(byte(saReportTPG)|0x40, 1024), nil, senseIllegalRequest, ascInvalidFieldInCDB)
}

func TestAccessStatesGateCommands(t *testing.T) {
	a := &fixedALUA{state: map[uint16]AccessState{1: ActiveOptimized, 2: ActiveOptimized}}
	lu, err := NewLU(memImage(testBlocks), LUConfig{Name: "x", Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	defer lu.Close()
	tgt := NewTarget(testTarget, TargetOptions{ALUA: a, Logger: quietLogger})
	tgt.SetLU(0, lu)
	e := &env{t: t, tgt: tgt, lu: lu}
	n := &Nexus{InitiatorName: "i", TargetName: testTarget, PortGroupID: 2, RelativePortID: 2}
	for _, c := range []struct {
		state   AccessState
		cdb     []byte
		allowed bool
		code    asc
	}{
		{ActiveNonOptimized, cdb10(opRead10, 0, 1), true, 0},
		{LBADependent, cdb10(opRead10, 0, 1), true, 0},
		{Standby, cdb10(opRead10, 0, 1), false, ascNotReadyStandby},
		{Standby, cdbTUR(), false, ascNotReadyStandby},
		{Standby, cdb10(opReadCapacity10, 0, 0), true, 0},
		{Standby, cdbModeSense6(true, pcCurrent, pageAll, 0, 255), true, 0},
		{Standby, cdbInquiry(false, 0, 96), true, 0},
		{Unavailable, cdb10(opReadCapacity10, 0, 0), false, ascNotReadyUnavailable},
		{Unavailable, cdbMaintIn(byte(saReportTPG), 64), true, 0},
		{Transitioning, cdb10(opWrite10, 0, 1), false, ascNotReadyTransition},
		{Transitioning, cdbReportLUNs(0, 64), true, 0},
		{Offline, cdb10(opRead10, 0, 1), false, ascNotReadyOffline},
		{Offline, cdbRequestSense(false, 64), true, 0},
	} {
		a.set(2, c.state)
		r := e.execOn(n, 0, c.cdb, fill(testBlockSize, 0))
		if c.allowed {
			if r.Status != StatusGood {
				t.Errorf("state %#x op %#02x: refused %+v", c.state, c.cdb[0], r)
			}
			continue
		}
		if k, code := senseCode(t, r); k != senseNotReady || code != c.code {
			t.Errorf("state %#x op %#02x: %#x/%04x, want NOT READY %04x", c.state, c.cdb[0], k, code, c.code)
		}
	}
}

// resetRecorder is an ALUA provider that wants to hear about resets.
type resetRecorder struct {
	localALUA
	mu    sync.Mutex
	reset []*LU
}

func (r *resetRecorder) LogicalUnitReset(lu *LU) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reset = append(r.reset, lu)
}

func TestResetNotifier(t *testing.T) {
	e := newEnv(t)
	rec := &resetRecorder{}
	e.tgt = NewTarget(testTarget, TargetOptions{ALUA: rec, Logger: quietLogger})
	e.tgt.SetLU(0, e.lu)
	if got := e.tgt.TaskManagement(e.n, TMFLUReset, 0, 0); got != TMFComplete {
		t.Fatal(got)
	}
	e.tgt.TaskManagement(e.n, TMFTargetWarmReset, 0, 0)
	if len(rec.reset) != 2 || rec.reset[0] != e.lu || rec.reset[1] != e.lu {
		t.Errorf("provider heard about %d resets", len(rec.reset))
	}
	// A reset reported by another gateway reaches this gateway's nexuses.
	e.lu.PeerReset()
	r := e.exec(cdbTUR(), nil)
	if k, c := senseCode(t, r); k != senseUnitAttention || c != ascBusDeviceReset {
		t.Errorf("after PeerReset: %#x/%04x", k, c)
	}
}
