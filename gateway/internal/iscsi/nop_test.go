package iscsi

import (
	"bytes"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
	"github.com/rbdgw/rbdgw/gateway/internal/pdu"
)

func TestNOPOutEcho(t *testing.T) {
	e := newEnv(t)
	in := e.login()
	for _, data := range [][]byte{nil, []byte("nopping\x00"), pattern(8192, 3)} {
		n, err := in.Ping(data)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(n.Data, data) || n.TTT != iscsitest.ReservedTag {
			t.Fatalf("echo %d bytes (TTT %#x), sent %d", len(n.Data), n.TTT, len(data))
		}
	}
	// ITT 0xffffffff asks for no answer.
	if err := in.Send((&pdu.NOPOut{Immediate: true, ITT: iscsitest.ReservedTag, TTT: iscsitest.ReservedTag, CmdSN: in.CmdSN}).Encode()); err != nil {
		t.Fatal(err)
	}
	expectSilence(t, in, 150*time.Millisecond)
	// A non-immediate ping takes a CmdSN and is answered in order.
	if err := in.Send((&pdu.NOPOut{ITT: 77, TTT: iscsitest.ReservedTag, CmdSN: in.CmdSN}).Encode()); err != nil {
		t.Fatal(err)
	}
	in.CmdSN++
	p, err := in.RecvOpcode(pdu.OpNOPIn)
	if err != nil || p.BHS.ITT() != 77 {
		t.Fatalf("non-immediate ping: %v", err)
	}
	stillServes(t, in)
}

func TestNOPInKeepalive(t *testing.T) {
	e := newEnv(t, withTuning(func(o *Options) {
		o.NopInInterval = 40 * time.Millisecond
		o.NopInTimeout = 150 * time.Millisecond
	}))

	// An initiator that answers stays connected.
	alive := e.login()
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if _, err := alive.Ping(nil); err != nil { // answers NOP-In pings on the way
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	alive.Close()

	// One that does not is dropped.
	silent := e.login()
	start := time.Now()
	got, err := silent.ExpectClosed()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || got[0].BHS.Opcode() != pdu.OpNOPIn || got[0].BHS.ITT() != iscsitest.ReservedTag {
		t.Fatalf("no NOP-In ping before the drop (%d PDUs)", len(got))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("dropped after %v", d)
	}
}
