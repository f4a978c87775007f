package iscsi

import (
	"github.com/rbdgw/rbdgw/gateway/config"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
	"github.com/rbdgw/rbdgw/gateway/internal/pdu"
	"github.com/rbdgw/rbdgw/rbdbackend"
)

func TestAbortTaskWaitingForData(t *testing.T) {
	e := newEnv(t)
	in := e.login(kv("InitialR2T", "Yes"), kv("ImmediateData", "No"))
	w := &iscsitest.Cmd{CDB: cdbWrite10(0, 8), EDTL: 4096, Data: pattern(4096, 1)}
	if err := in.Submit(w); err != nil {
		t.Fatal(err)
	}
	p, err := in.RecvOpcode(pdu.OpR2T)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := pdu.ParseR2T(p)
	code, err := in.TaskMgmt(pdu.TMFAbortTask, 0, w.ITT, w.CmdSN)
	if err != nil || code != pdu.TMFRespComplete {
		t.Fatalf("ABORT TASK: %d %v", code, err)
	}
	// Data-Out still in flight for the aborted task is dropped silently.
	if err := in.Send((&pdu.DataOut{Final: true, ITT: w.ITT, TTT: r.TTT, Data: w.Data}).Encode()); err != nil {
		t.Fatal(err)
	}
	stillServes(t, in)
	if w.Done() || len(in.Unexpected) != 0 {
		t.Fatalf("aborted write answered (%v) or unexpected PDUs (%d)", w.Done(), len(in.Unexpected))
	}
	if code, err := in.TaskMgmt(pdu.TMFAbortTask, 0, w.ITT, w.CmdSN); err != nil || code != pdu.TMFRespNoTask {
		t.Fatalf("second ABORT TASK: %d %v", code, err)
	}
}

func TestAbortTaskRunning(t *testing.T) {
	e := newEnv(t)
	in := e.login()
	e.fault.SetLatency(rbdbackend.OpWrite, 300*time.Millisecond)
	w := &iscsitest.Cmd{CDB: cdbWrite10(0, 8), EDTL: 4096, Data: pattern(4096, 1)}
	if err := in.Submit(w); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the write is in the backend
	code, err := in.TaskMgmt(pdu.TMFAbortTask, 0, w.ITT, w.CmdSN)
	if err != nil {
		t.Fatal(err)
	}
	switch code {
	case pdu.TMFRespComplete:
		if w.Done() {
			t.Fatal("aborted write answered")
		}
	case pdu.TMFRespNoTask:
		if !w.Done() {
			t.Fatal("task does not exist, but its response did not come first")
		}
	default:
		t.Fatalf("ABORT TASK response %d", code)
	}
	e.fault.SetLatency(rbdbackend.OpWrite, 0)
	stillServes(t, in)
}

func TestAbortTaskNotYetArrived(t *testing.T) {
	e := newEnv(t)
	in := e.login()
	lost := in.CmdSN
	in.CmdSN++ // a command with CmdSN lost never reaches the target
	code, err := in.TaskMgmt(pdu.TMFAbortTask, 0, 0x5555, lost)
	if err != nil || code != pdu.TMFRespComplete {
		t.Fatalf("ABORT TASK: %d %v", code, err)
	}
	// Its CmdSN counts as consumed: the window is not stuck behind it.
	stillServes(t, in)
	if code, err := in.TaskMgmt(pdu.TMFAbortTask, 0, 0x6666, in.CmdSN+1000); err != nil || code != pdu.TMFRespNoTask {
		t.Fatalf("ABORT TASK outside the window: %d %v", code, err)
	}
}

func TestTaskSetManagement(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		fn   uint8
		lun  uint64
		want uint8
	}{
		{pdu.TMFAbortTaskSet, 0, pdu.TMFRespComplete},
		{pdu.TMFClearTaskSet, 0, pdu.TMFRespComplete},
		{pdu.TMFLogicalUnitReset, 0, pdu.TMFRespComplete},
		{pdu.TMFLogicalUnitReset, 9, pdu.TMFRespNoLUN},
		{pdu.TMFTargetWarmReset, 0, pdu.TMFRespComplete},
		{pdu.TMFTaskReassign, 0, pdu.TMFRespNoReassignment},
		{0x42, 0, pdu.TMFRespRejected},
	} {
		in := e.login()
		e.fault.SetLatency(rbdbackend.OpWrite, 200*time.Millisecond)
		w := &iscsitest.Cmd{CDB: cdbWrite10(0, 1), EDTL: 512, Data: pattern(512, 1)}
		if err := in.Submit(w); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		code, err := in.TaskMgmt(tc.fn, tc.lun, iscsitest.ReservedTag, 0)
		if err != nil || code != tc.want {
			t.Fatalf("function %d: response %d %v, want %d", tc.fn, code, err, tc.want)
		}
		e.fault.SetLatency(rbdbackend.OpWrite, 0)
		// The write either answered before the TMF response or never will;
		// with a reset that aborted it, no response follows.
		if !w.Done() && (tc.want != pdu.TMFRespComplete || tc.fn == pdu.TMFTaskReassign) {
			for !w.Done() {
				if _, err := in.Poll(); err != nil {
					t.Fatal(err)
				}
			}
		}
		for range 3 { // unit attentions from the resets
			if res, err := in.Do(&iscsitest.Cmd{CDB: cdbTUR()}); err == nil && res.Status == 0 {
				break
			}
		}
		if w.Done() && tc.want == pdu.TMFRespComplete && tc.fn != pdu.TMFTaskReassign {
			t.Logf("function %d: the write finished first", tc.fn)
		}
	}
}

// What a TARGET COLD RESET (and WARM RESET) from an initiator does depends
// on target_reset (docs/adr/0006-target-resets.md): by default it ends the
// issuing session only; "target" ends every session of the target (RFC
// 7143 section 11.5.1); "refuse" answers FUNCTION AUTHORIZATION FAILED.
func TestTargetColdResetDropsSessions(t *testing.T) {
	for _, policy := range []string{"", config.TargetResetSession, config.TargetResetTarget, config.TargetResetRefuse} {
		t.Run("target_reset="+policy, func(t *testing.T) {
			e := newEnv(t, withTuning(func(o *Options) { o.Tuning.TargetReset = policy }))
			other := e.dial()
			if err := other.Login(iscsitest.LoginOptions{InitiatorName: "iqn.2024-01.org.example:tenant2", TargetName: testIQN}); err != nil {
				t.Fatal(err)
			}
			clearUnitAttention(t, other)
			in := e.dial()
			in.ISID[5] = 3
			if err := in.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, TargetName: testIQN}); err != nil {
				t.Fatal(err)
			}
			want := uint8(pdu.TMFRespComplete)
			if policy == config.TargetResetRefuse {
				want = pdu.TMFRespAuthFailed
			}
			for _, fn := range []uint8{pdu.TMFTargetWarmReset, pdu.TMFTargetColdReset} {
				code, err := in.TaskMgmt(fn, 0, iscsitest.ReservedTag, 0)
				if err != nil || code != want {
					t.Fatalf("function %d: response %d %v, want %d", fn, code, err, want)
				}
			}
			switch policy {
			case config.TargetResetRefuse:
				clearUnitAttention(t, in) // nothing was reset: no unit attention waits
				if res, err := in.Do(&iscsitest.Cmd{CDB: cdbTUR()}); err != nil || res.Status != 0 {
					t.Fatalf("issuing session after a refused reset: %v %+v", err, res)
				}
			case config.TargetResetTarget:
				for _, c := range []*iscsitest.Initiator{in, other} {
					if _, err := c.ExpectClosed(); err != nil {
						t.Fatal(err)
					}
				}
				waitFor(t, "sessions dropped", func() bool { return e.sessionCount() == 0 })
				return
			default:
				if _, err := in.ExpectClosed(); err != nil {
					t.Fatal(err)
				}
				waitFor(t, "issuing session dropped", func() bool { return e.sessionCount() == 1 })
			}
			// The other tenant's session lives on (it shares the logical
			// unit, so it hears of the reset as a unit attention).
			clearUnitAttention(t, other)
			read10(t, other, 0, testBlockSize)
		})
	}
}
