package iscsi

import "testing"

func TestSerialArithmetic(t *testing.T) {
	for _, tc := range []struct {
		a, b uint32
		less bool
	}{
		{1, 2, true}, {2, 1, false}, {5, 5, false},
		{0xffffffff, 0, true}, {0, 0xffffffff, false},
		{0xfffffff0, 0x10, true}, {0x10, 0xfffffff0, false},
	} {
		if got := snLess(tc.a, tc.b); got != tc.less {
			t.Errorf("snLess(%#x, %#x) = %v, want %v", tc.a, tc.b, got, tc.less)
		}
		if got := snLessEq(tc.a, tc.b); got != (tc.less || tc.a == tc.b) {
			t.Errorf("snLessEq(%#x, %#x) = %v", tc.a, tc.b, got)
		}
	}
}

func TestCmdWindow(t *testing.T) {
	w := newCmdWindow(0xfffffffe, 4) // wraps around
	if w.maxCmdSN != 0x1 {
		t.Fatalf("MaxCmdSN = %#x, want 0x1", w.maxCmdSN)
	}
	for _, tc := range []struct {
		sn uint32
		in bool
	}{{0xfffffffd, false}, {0xfffffffe, true}, {0xffffffff, true}, {0, true}, {1, true}, {2, false}} {
		if got := w.inWindow(tc.sn); got != tc.in {
			t.Errorf("inWindow(%#x) = %v, want %v", tc.sn, got, tc.in)
		}
	}
	// Two commands admitted: the window keeps its right edge until they
	// complete.
	w.admit()
	w.admit()
	if w.expCmdSN != 0 || w.maxCmdSN != 1 {
		t.Fatalf("after 2 admits: exp %#x max %#x, want 0 and 1", w.expCmdSN, w.maxCmdSN)
	}
	w.completed()
	if w.maxCmdSN != 2 {
		t.Fatalf("after completion MaxCmdSN = %#x, want 2", w.maxCmdSN)
	}
	// A request ahead of its turn waits; a duplicate is refused.
	if !w.park(1, orderedReq{}) || w.park(1, orderedReq{}) {
		t.Fatal("park: want first accepted, duplicate refused")
	}
	if _, ok := w.next(); ok {
		t.Fatal("next returned a request before its turn")
	}
	w.advance() // CmdSN 0 handled directly
	if _, ok := w.next(); !ok {
		t.Fatal("next did not return the request whose turn came")
	}
	w.advance()
	if w.expCmdSN != 2 {
		t.Fatalf("ExpCmdSN = %d, want 2", w.expCmdSN)
	}
	// MaxCmdSN never moves back, even when the window is full.
	before := w.maxCmdSN
	w.admit()
	w.admit()
	w.admit()
	if snLess(w.maxCmdSN, before) {
		t.Fatalf("MaxCmdSN went back from %d to %d", before, w.maxCmdSN)
	}
	if w.inWindow(w.maxCmdSN + 1) {
		t.Fatal("CmdSN beyond MaxCmdSN accepted")
	}
}

func TestCmdWindowResume(t *testing.T) {
	w := newCmdWindow(10, 8)
	w.admit()
	w.park(13, orderedReq{})
	w.resume(12) // the initiator went on to 12; 11 never arrived
	if w.expCmdSN != 12 || w.inflight != 0 || len(w.pending) != 0 {
		t.Fatalf("resume: exp %d inflight %d pending %d", w.expCmdSN, w.inflight, len(w.pending))
	}
	if w.maxCmdSN != 19 {
		t.Fatalf("MaxCmdSN = %d, want 19", w.maxCmdSN)
	}
	w.resume(5) // older CmdSN: the window does not go back
	if w.expCmdSN != 12 {
		t.Fatalf("ExpCmdSN went back to %d", w.expCmdSN)
	}
}
