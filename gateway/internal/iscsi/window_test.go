package iscsi

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
	"github.com/rbdgw/rbdgw/rbdbackend"
)

// expectSilence checks that nothing arrives for a while.
func expectSilence(t *testing.T, in *iscsitest.Initiator, d time.Duration) {
	t.Helper()
	saved := in.Timeout
	in.Timeout = d
	defer func() { in.Timeout = saved }()
	p, err := in.Recv()
	var ne net.Error
	if err == nil {
		t.Fatalf("unexpected %v PDU", p.BHS.Opcode())
	}
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("connection failed: %v", err)
	}
}

func TestCommandsRunInCmdSNOrder(t *testing.T) {
	e := newEnv(t)
	in := e.login()
	base := in.CmdSN
	second := &iscsitest.Cmd{CDB: cdbTUR()}
	first := &iscsitest.Cmd{CDB: cdbTUR()}
	in.CmdSN = base + 1
	if err := in.Submit(second); err != nil {
		t.Fatal(err)
	}
	expectSilence(t, in, 200*time.Millisecond) // waits for CmdSN base
	in.CmdSN = base
	if err := in.Submit(first); err != nil {
		t.Fatal(err)
	}
	in.CmdSN = base + 2
	for !first.Done() || !second.Done() {
		if _, err := in.Poll(); err != nil {
			t.Fatal(err)
		}
	}
	// The window moved past both.
	read10(t, in, 0, 512)
}

func TestImmediateCommandBypassesOrdering(t *testing.T) {
	e := newEnv(t)
	in := e.login()
	base := in.CmdSN
	parked := &iscsitest.Cmd{CDB: cdbTUR()}
	in.CmdSN = base + 1
	if err := in.Submit(parked); err != nil {
		t.Fatal(err)
	}
	in.CmdSN = base
	imm := &iscsitest.Cmd{CDB: cdbTUR(), Immediate: true}
	if _, err := in.Do(imm); err != nil {
		t.Fatal(err)
	}
	if parked.Done() {
		t.Fatal("out-of-order command ran before its turn")
	}
	filler := &iscsitest.Cmd{CDB: cdbTUR()}
	if _, err := in.Do(filler); err != nil { // CmdSN base releases the parked one
		t.Fatal(err)
	}
	for !parked.Done() {
		if _, err := in.Poll(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCmdSNOutsideWindowIgnored(t *testing.T) {
	e := newEnv(t, withTuning(func(o *Options) { o.Tuning.QueueDepth = 8 }))
	in := e.login()
	n, err := in.Ping(nil)
	if err != nil {
		t.Fatal(err)
	}
	base := in.CmdSN
	for _, sn := range []uint32{n.MaxCmdSN + 1, base - 1} {
		in.CmdSN = sn
		if err := in.Submit(&iscsitest.Cmd{CDB: cdbTUR()}); err != nil {
			t.Fatal(err)
		}
		expectSilence(t, in, 200*time.Millisecond)
	}
	in.CmdSN = base
	if res, err := in.Do(&iscsitest.Cmd{CDB: cdbTUR()}); err != nil || res.Status != 0 {
		t.Fatalf("command in the window: %v %+v", err, res)
	}
}

func TestWindowTracksInflight(t *testing.T) {
	e := newEnv(t, withTuning(func(o *Options) { o.Tuning.QueueDepth = 4 }))
	in := e.login()
	e.fault.SetLatency(rbdbackend.OpWrite, 300*time.Millisecond)
	defer e.fault.SetLatency(rbdbackend.OpWrite, 0)
	var cmds []*iscsitest.Cmd
	for i := range 3 {
		c := &iscsitest.Cmd{CDB: cdbWrite10(uint32(i), 1), EDTL: 512, Data: pattern(512, byte(i))}
		if err := in.Submit(c); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	// A ping answered while three writes run shows MaxCmdSN held back.
	time.Sleep(50 * time.Millisecond)
	n, err := in.Ping(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := n.MaxCmdSN - n.ExpCmdSN + 1; got != 1 {
		t.Fatalf("window %d while 3 of 4 slots are in use, want 1", got)
	}
	for _, c := range cmds {
		for !c.Done() {
			if _, err := in.Poll(); err != nil {
				t.Fatal(err)
			}
		}
	}
	n, err = in.Ping(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := n.MaxCmdSN - n.ExpCmdSN + 1; got != 4 {
		t.Fatalf("window %d after completion, want 4", got)
	}
}
