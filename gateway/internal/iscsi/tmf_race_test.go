package iscsi

import (
	"testing"

	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
	"github.com/rbdgw/rbdgw/gateway/internal/pdu"
)

// TestLUResetRacingWrite sends a WRITE and, right behind it, a LOGICAL UNIT
// RESET, many times. Whatever the timing, the write either completes GOOD
// before the reset's response or is aborted without any response; it must
// never run after the reset (it would then fail with the reset's unit
// attention, which is what an initiator must not see for a command it
// issued before the reset).
func TestLUResetRacingWrite(t *testing.T) {
	e := newEnv(t)
	in := e.login()
	for i := range 200 {
		w := &iscsitest.Cmd{CDB: cdbWrite10(uint32(i), 1), EDTL: 512, Data: pattern(512, byte(i))}
		if err := in.Submit(w); err != nil {
			t.Fatal(err)
		}
		code, err := in.TaskMgmt(pdu.TMFLogicalUnitReset, 0, iscsitest.ReservedTag, 0)
		if err != nil || code != pdu.TMFRespComplete {
			t.Fatalf("round %d: LU RESET response %d, %v", i, code, err)
		}
		doneBeforeReset := w.Done()
		if doneBeforeReset && w.Result.Status != 0 {
			t.Fatalf("round %d: write ended with status %#x sense % x", i, w.Result.Status, w.Result.Sense)
		}
		// Consume the reset's unit attention; an aborted write must stay
		// silent meanwhile.
		for range 3 {
			if res, err := in.Do(&iscsitest.Cmd{CDB: cdbTUR()}); err != nil {
				t.Fatal(err)
			} else if res.Status == 0 {
				break
			}
		}
		if !doneBeforeReset && w.Done() {
			t.Fatalf("round %d: the write answered (status %#x) after the LU RESET response", i, w.Result.Status)
		}
	}
}
