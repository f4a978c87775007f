package iscsi

import (
	"context"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
	"github.com/rbdgw/rbdgw/gateway/internal/login"
	"github.com/rbdgw/rbdgw/gateway/internal/pdu"
)

func TestReconfiguration(t *testing.T) {
	allowed := map[string]bool{testInitiator: true, "iqn.2024-01.org.example:b": true}
	e := newEnv(t)
	access := func(m map[string]bool) func(string) (bool, *login.Credentials) {
		return func(ini string) (bool, *login.Credentials) { return m[ini], nil }
	}
	spec := e.spec
	spec.Access = access(allowed)
	if err := e.srv.SetTarget(spec); err != nil {
		t.Fatal(err)
	}
	a := e.login()
	b := e.dial()
	b.ISID[5] = 5
	if err := b.Login(iscsitest.LoginOptions{InitiatorName: "iqn.2024-01.org.example:b", TargetName: testIQN}); err != nil {
		t.Fatal(err)
	}
	clearUnitAttention(t, b)

	// b is no longer allowed: it is asked to log out; a keeps working.
	spec.Access = access(map[string]bool{testInitiator: true})
	if err := e.srv.SetTarget(spec); err != nil {
		t.Fatal(err)
	}
	p, err := b.RecvOpcode(pdu.OpAsyncMsg)
	if err != nil {
		t.Fatal(err)
	}
	am, _ := pdu.ParseAsyncMsg(p)
	if am.AsyncEvent != pdu.AsyncEventLogoutRequest || am.Parameter3 == 0 {
		t.Fatalf("async event %d parameter3 %d", am.AsyncEvent, am.Parameter3)
	}
	if code, err := b.Logout(pdu.LogoutCloseSession); err != nil || code != 0 {
		t.Fatalf("logout %d %v", code, err)
	}
	stillServes(t, a)

	// Removing the target drops a's session and waits for it.
	e.srv.RemoveTarget(testIQN)
	if e.sessionCount() != 0 {
		t.Fatalf("%d sessions after RemoveTarget", e.sessionCount())
	}
	got, err := a.ExpectClosed()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || got[0].BHS.Opcode() != pdu.OpAsyncMsg {
		t.Fatal("no Async Message before the drop")
	}
	in := e.dial()
	err = in.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, TargetName: testIQN})
	if le, ok := err.(*iscsitest.LoginError); !ok || le.Status != login.StatusNotFound {
		t.Fatalf("login to removed target: %v", err)
	}
}

func TestShutdownAsksForLogout(t *testing.T) {
	e := newEnv(t)
	in := e.login()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		done <- e.srv.Shutdown(ctx)
	}()
	p, err := in.RecvOpcode(pdu.OpAsyncMsg)
	if err != nil {
		t.Fatal(err)
	}
	if am, _ := pdu.ParseAsyncMsg(p); am.AsyncEvent != pdu.AsyncEventLogoutRequest {
		t.Fatalf("async event %d", am.AsyncEvent)
	}
	if code, err := in.Logout(pdu.LogoutCloseSession); err != nil || code != 0 {
		t.Fatalf("logout %d %v", code, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, err := iscsitest.Dial(e.addr); err == nil {
		t.Fatal("still accepting after Shutdown")
	}
}

func TestShutdownDeadline(t *testing.T) {
	e := newEnv(t, withTuning(func(o *Options) { o.LogoutGrace = time.Minute }))
	in := e.login()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != context.DeadlineExceeded {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, err := in.ExpectClosed(); err != nil {
		t.Fatal(err)
	}
}

func TestSessionsList(t *testing.T) {
	e := newEnv(t)
	in := e.login()
	d := e.dial()
	d.ISID[5] = 4
	if err := d.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, Discovery: true}); err != nil {
		t.Fatal(err)
	}
	list := e.srv.Sessions()
	if len(list) != 2 {
		t.Fatalf("%d sessions", len(list))
	}
	normal, disc := list[0], list[1]
	if normal.TSIH != in.TSIH || normal.Target != testIQN || normal.Initiator != testInitiator ||
		normal.ISID != "801234560001" || normal.State != SessionLoggedIn || normal.Remote != in.Conn.LocalAddr().String() {
		t.Fatalf("normal session %+v", normal)
	}
	if !disc.Discovery || disc.Target != "" || disc.TSIH != d.TSIH {
		t.Fatalf("discovery session %+v", disc)
	}
}

func TestPanicClosesOnlyTheConnection(t *testing.T) {
	e := newEnv(t, withAccess(func(ini string) (bool, *login.Credentials) {
		if ini == "iqn.2024-01.org.example:boom" {
			panic("access rule bug")
		}
		return true, nil
	}))
	in := e.dial()
	if err := in.Login(iscsitest.LoginOptions{InitiatorName: "iqn.2024-01.org.example:boom", TargetName: testIQN}); err == nil {
		t.Fatal("login survived a panic")
	}
	waitFor(t, "cleanup", func() bool { return e.connCount() == 0 })
	if e.logs.panicCount() != 1 || !e.logs.contains("access rule bug") {
		t.Fatalf("panic not logged once (%d)", e.logs.panicCount())
	}
	stillServes(t, e.login())
	e.logs.resetPanics()
}
