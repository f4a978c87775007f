package iscsi

import (
	"strconv"
	"testing"

	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
	"github.com/rbdgw/rbdgw/gateway/internal/login"
	"github.com/rbdgw/rbdgw/gateway/internal/pdu"
)

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
