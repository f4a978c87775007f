package iscsi

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
	"github.com/rbdgw/rbdgw/gateway/internal/login"
	"github.com/rbdgw/rbdgw/gateway/internal/pdu"
	"github.com/rbdgw/rbdgw/rbdbackend"
)

func TestLogout(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name   string
		reason uint8
		cid    uint16
		want   uint8
		closes bool
	}{
		{"close session", pdu.LogoutCloseSession, 1, pdu.LogoutRespSuccess, true},
		{"close connection", pdu.LogoutCloseConnection, 1, pdu.LogoutRespSuccess, true},
		{"close another connection", pdu.LogoutCloseConnection, 2, pdu.LogoutRespCIDNotFound, false},
		{"remove for recovery", pdu.LogoutRemoveForRecovery, 1, pdu.LogoutRespNoRecovery, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := e.login()
			saved := in.CID
			in.CID = tc.cid
			code, err := in.Logout(tc.reason)
			in.CID = saved
			if err != nil || code != tc.want {
				t.Fatalf("response %d %v, want %d", code, err, tc.want)
			}
			if !tc.closes {
				stillServes(t, in)
				return
			}
			if _, err := in.ExpectClosed(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "session end", func() bool { return e.sessionCount() == 0 })
		})
	}
}

func TestLogoutWaitsForRunningCommands(t *testing.T) {
	e := newEnv(t)
	in := e.login()
	e.fault.SetLatency(rbdbackend.OpWrite, 200*time.Millisecond)
	w := &iscsitest.Cmd{CDB: cdbWrite10(0, 1), EDTL: 512, Data: pattern(512, 4)}
	if err := in.Submit(w); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	code, err := in.Logout(pdu.LogoutCloseSession)
	if err != nil || code != 0 {
		t.Fatalf("logout %d %v", code, err)
	}
	if !w.Done() || w.Result.Status != 0 {
		t.Fatal("the write did not answer before the Logout Response")
	}
	equalBytes(t, "written", e.imageBytes(0, 512), w.Data)
}

func TestDiscovery(t *testing.T) {
	e := newEnv(t, withAccess(func(ini string) (bool, *login.Credentials) { return ini == testInitiator, nil }))
	second := e.spec
	second.IQN = "iqn.2024-01.org.example:disk2"
	second.TPGT = 7
	second.Portals = []string{"192.0.2.1:3260", "[2001:db8::1]:3260"}
	second.Access = func(ini string) (bool, *login.Credentials) { return ini == "iqn.2024-01.org.example:other", nil }
	if err := e.srv.SetTarget(second); err != nil {
		t.Fatal(err)
	}

	in := e.dial()
	if err := in.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, Discovery: true}); err != nil {
		t.Fatal(err)
	}
	got, err := in.SendTargets("All")
	if err != nil {
		t.Fatal(err)
	}
	want := []login.KV{kv("TargetName", testIQN), kv("TargetAddress", e.addr+",1")}
	if !kvEqual(got, want) {
		t.Fatalf("SendTargets=All: %v, want %v", got, want)
	}
	// The other initiator sees only the second target, every portal.
	in2 := e.dial()
	in2.ISID[5] = 2
	if err := in2.Login(iscsitest.LoginOptions{InitiatorName: "iqn.2024-01.org.example:other", Discovery: true}); err != nil {
		t.Fatal(err)
	}
	got, err = in2.SendTargets("All")
	if err != nil {
		t.Fatal(err)
	}
	want = []login.KV{kv("TargetName", second.IQN), kv("TargetAddress", "192.0.2.1:3260,7"),
		kv("TargetAddress", "[2001:db8::1]:3260,7")}
	if !kvEqual(got, want) {
		t.Fatalf("SendTargets=All: %v, want %v", got, want)
	}
	for _, tc := range []struct {
		value string
		want  []login.KV
	}{
		{testIQN, []login.KV{kv("TargetName", testIQN), kv("TargetAddress", e.addr+",1")}},
		{second.IQN, nil}, // not allowed for this initiator
		{"Alle", []login.KV{kv("SendTargets", "Reject")}},
		{"", []login.KV{kv("SendTargets", "Reject")}}, // no "current target" in discovery
	} {
		got, err := in.SendTargets(tc.value)
		if err != nil {
			t.Fatal(err)
		}
		if !kvEqual(got, tc.want) {
			t.Fatalf("SendTargets=%q: %v, want %v", tc.value, got, tc.want)
		}
	}
	if got, err := in.Text([]login.KV{kv("sENDtARGETS", "aLL")}); err != nil || !kvEqual(got, []login.KV{kv("sENDtARGETS", "NotUnderstood")}) {
		t.Fatalf("unknown key: %v %v", got, err)
	}
	// Only Text and Logout belong to a discovery session.
	if err := in.Submit(&iscsitest.Cmd{CDB: cdbTUR()}); err != nil {
		t.Fatal(err)
	}
	expectReject(t, in, pdu.RejectProtocolError)
	if code, err := in.Logout(pdu.LogoutCloseSession); err != nil || code != 0 {
		t.Fatalf("logout: %d %v", code, err)
	}
}

func TestSendTargetsContinuation(t *testing.T) {
	e := newEnv(t)
	spec := e.spec
	spec.Portals = nil
	for i := range 300 {
		spec.Portals = append(spec.Portals, "198.51.100."+itoa(i%250)+":"+itoa(3260+i))
	}
	if err := e.srv.SetTarget(spec); err != nil {
		t.Fatal(err)
	}
	in := e.dial()
	if err := in.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, Discovery: true,
		Keys: []login.KV{kv("MaxRecvDataSegmentLength", "512")}}); err != nil {
		t.Fatal(err)
	}
	got, err := in.SendTargets("All")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 301 || got[300].Value != spec.Portals[299]+",1" {
		t.Fatalf("got %d keys", len(got))
	}
}

func TestSendTargetsInNormalSession(t *testing.T) {
	e := newEnv(t)
	in := e.login()
	for _, v := range []string{"", "All"} {
		got, err := in.SendTargets(v)
		if err != nil {
			t.Fatal(err)
		}
		if want := []login.KV{kv("TargetName", testIQN), kv("TargetAddress", e.addr+",1")}; !kvEqual(got, want) {
			t.Fatalf("SendTargets=%q: %v", v, got)
		}
	}
	stillServes(t, in)
}

func TestDiscoveryCHAP(t *testing.T) {
	e := newEnv(t)
	creds := &login.Credentials{User: "disc", Secret: "discovery-secret"}
	e.srv.SetDiscoveryAuth(creds)
	in := e.dial()
	if err := in.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, Discovery: true}); err == nil {
		t.Fatal("discovery without CHAP accepted")
	}
	in = e.dial()
	if err := in.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, Discovery: true, CHAP: creds}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.SendTargets("All"); err != nil {
		t.Fatal(err)
	}
}

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

func kvEqual(a, b []login.KV) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func itoa(i int) string { return strconv.Itoa(i) }
