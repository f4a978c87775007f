package iscsi

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
	"github.com/rbdgw/rbdgw/gateway/internal/login"
	"github.com/rbdgw/rbdgw/gateway/internal/pdu"
)

const otherInitiator = "iqn.2024-01.org.example:b"

// bindAddresses binds initiators to the prefixes given (none listed: any
// address).
func bindAddresses(bound map[string][]string) func(string) []netip.Prefix {
	m := map[string][]netip.Prefix{}
	for ini, list := range bound {
		for _, s := range list {
			m[ini] = append(m[ini], netip.MustParsePrefix(s))
		}
	}
	return func(ini string) []netip.Prefix { return m[ini] }
}

// countLogs counts the records containing every one of parts.
func (r *logRecorder) count(parts ...string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
next:
	for _, rec := range r.records {
		for _, p := range parts {
			if !strings.Contains(rec, p) {
				continue next
			}
		}
		n++
	}
	return n
}

// dialFrom connects to the test portal from a given local address.
func (e *testEnv) dialFrom(local string) *iscsitest.Initiator {
	e.t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	nc, err := d.Dial("tcp", e.addr)
	if err != nil {
		e.t.Skipf("cannot connect from %s: %v", local, err)
	}
	in := iscsitest.New(nc)
	in.Timeout = 5 * time.Second
	e.t.Cleanup(func() { in.Close() })
	return in
}

// TestLoginSourceAddress: an initiator whose entry lists addresses logs in
// only from one of them; the refusal is an authorization failure (0x0202)
// and logs why, once per attempt and at most once a minute.
func TestLoginSourceAddress(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name  string
		bound []string // testInitiator's list; connections come from 127.0.0.1
		ok    bool
	}{
		{"no list", nil, true},
		{"loopback network", []string{"127.0.0.0/8"}, true},
		{"the address itself", []string{"127.0.0.1/32"}, true},
		{"one of several", []string{"10.0.0.0/8", "::1/128", "127.0.0.0/8"}, true},
		{"another loopback address", []string{"127.0.0.2/32"}, false},
		{"other networks", []string{"10.0.0.0/8", "192.0.2.0/24"}, false},
		{"ipv6 only", []string{"::/0"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := e.spec
			spec.Addresses = bindAddresses(map[string][]string{testInitiator: tc.bound, otherInitiator: {"10.9.9.9/32"}})
			if err := e.srv.SetTarget(spec); err != nil {
				t.Fatal(err)
			}
			before := e.logs.count("login refused", "reason=source address 127.0.0.1")
			in := e.dial()
			err := in.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, TargetName: testIQN})
			if tc.ok {
				if err != nil {
					t.Fatalf("login: %v", err)
				}
				clearUnitAttention(t, in)
				if code, err := in.Logout(pdu.LogoutCloseSession); err != nil || code != 0 {
					t.Fatalf("logout %d %v", code, err)
				}
				return
			}
			var le *iscsitest.LoginError
			if !errors.As(err, &le) || le.Status != 0x0202 { // authorization failure
				t.Fatalf("login error %v, want status 0x0202", err)
			}
			if _, err := in.ExpectClosed(); err != nil {
				t.Fatal(err)
			}
			// One line saying why, for this attempt, unless one was
			// written in the last minute for the same initiator, address
			// and target.
			after := e.logs.count("login refused", "reason=source address 127.0.0.1", "initiator="+testInitiator, "target="+testIQN)
			if before == 0 && after != 1 || before > 0 && after != before {
				t.Fatalf("%d lines of address refusals, then %d", before, after)
			}
		})
	}
	if n := e.logs.count("login refused", "reason=source address"); n != 1 {
		t.Errorf("%d lines for three refusals in a minute, want 1", n)
	}
	// Initiators without a list are not affected; neither is the name
	// check: an initiator Access refuses is refused from any address.
	spec := e.spec
	spec.Access = func(ini string) (bool, *login.Credentials) { return ini == testInitiator, nil }
	spec.Addresses = bindAddresses(map[string][]string{otherInitiator: {"127.0.0.0/8"}})
	if err := e.srv.SetTarget(spec); err != nil {
		t.Fatal(err)
	}
	e.login()
	in := e.dial()
	in.ISID[5] = 9
	err := in.Login(iscsitest.LoginOptions{InitiatorName: otherInitiator, TargetName: testIQN})
	if le, ok := err.(*iscsitest.LoginError); !ok || le.Status != login.StatusForbidden {
		t.Fatalf("login of an initiator Access refuses: %v", err)
	}
	if e.logs.count("login refused", "initiator="+otherInitiator, "reason=") != 0 {
		t.Error("a refusal by name logged as one by address")
	}
}

// TestLoginSourceAddressOtherLoopback: the source address, not the
// portal's, decides: from 127.0.0.2 a list of 127.0.0.2/32 admits and one
// of 127.0.0.1/32 refuses.
func TestLoginSourceAddressOtherLoopback(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		bound string
		ok    bool
	}{{"127.0.0.2/32", true}, {"127.0.0.1/32", false}} {
		spec := e.spec
		spec.Addresses = bindAddresses(map[string][]string{testInitiator: {tc.bound}})
		if err := e.srv.SetTarget(spec); err != nil {
			t.Fatal(err)
		}
		in := e.dialFrom("127.0.0.2")
		err := in.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, TargetName: testIQN})
		if tc.ok && err != nil {
			t.Fatalf("login from 127.0.0.2 bound to %s: %v", tc.bound, err)
		}
		if !tc.ok {
			if le, ok := err.(*iscsitest.LoginError); !ok || le.Status != login.StatusForbidden {
				t.Fatalf("login from 127.0.0.2 bound to %s: %v, want an authorization failure", tc.bound, err)
			}
			if !e.logs.contains("source address 127.0.0.2 is not among the initiator's allowed addresses 127.0.0.1") {
				t.Error("the refusal does not say why")
			}
			continue
		}
		clearUnitAttention(t, in)
		if code, err := in.Logout(pdu.LogoutCloseSession); err != nil || code != 0 {
			t.Fatalf("logout %d %v", code, err)
		}
	}
}

// TestDiscoverySourceAddress: discovery logs in from anywhere (it names no
// target), but SendTargets lists a target only to initiators its address
// list admits.
func TestDiscoverySourceAddress(t *testing.T) {
	e := newEnv(t)
	sendTargets := func(isid byte) []login.KV {
		t.Helper()
		in := e.dial()
		in.ISID[5] = isid
		if err := in.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, Discovery: true}); err != nil {
			t.Fatalf("discovery login: %v", err)
		}
		var out []login.KV
		for _, v := range []string{"All", testIQN} {
			got, err := in.SendTargets(v)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, got...)
		}
		if code, err := in.Logout(pdu.LogoutCloseSession); err != nil || code != 0 {
			t.Fatalf("logout %d %v", code, err)
		}
		return out
	}
	listed := []login.KV{kv("TargetName", testIQN), kv("TargetAddress", e.addr+",1")}
	listed = append(listed, listed...)

	spec := e.spec
	spec.Addresses = bindAddresses(map[string][]string{testInitiator: {"127.0.0.2/32", "2001:db8::/32"}})
	if err := e.srv.SetTarget(spec); err != nil {
		t.Fatal(err)
	}
	if got := sendTargets(1); len(got) != 0 {
		t.Fatalf("SendTargets from an address not in the list: %v", got)
	}
	if !e.logs.contains("SendTargets: target not listed") {
		t.Error("no line says why the target was not listed")
	}
	spec.Addresses = bindAddresses(map[string][]string{testInitiator: {"127.0.0.0/8"}})
	if err := e.srv.SetTarget(spec); err != nil {
		t.Fatal(err)
	}
	if got := sendTargets(2); !kvEqual(got, listed) {
		t.Fatalf("SendTargets from an address in the list: %v, want %v", got, listed)
	}
}

// TestAddressChangeLogsOut: a live change of an initiator's list applies
// to its sessions as an ACL removal does: a session from an address no
// longer allowed is asked to log out (and dropped after the grace), others
// keep running, and the next login is refused.
func TestAddressChangeLogsOut(t *testing.T) {
	e := newEnv(t)
	spec := e.spec
	spec.Addresses = bindAddresses(map[string][]string{testInitiator: {"127.0.0.0/8"}, otherInitiator: {"127.0.0.1/32"}})
	if err := e.srv.SetTarget(spec); err != nil {
		t.Fatal(err)
	}
	a := e.login()
	b := e.dial()
	b.ISID[5] = 5
	if err := b.Login(iscsitest.LoginOptions{InitiatorName: otherInitiator, TargetName: testIQN}); err != nil {
		t.Fatal(err)
	}
	clearUnitAttention(t, b)

	spec.Addresses = bindAddresses(map[string][]string{testInitiator: {"127.0.0.0/8"}, otherInitiator: {"10.0.0.0/8"}})
	if err := e.srv.SetTarget(spec); err != nil {
		t.Fatal(err)
	}
	p, err := b.RecvOpcode(pdu.OpAsyncMsg)
	if err != nil {
		t.Fatal(err)
	}
	if am, _ := pdu.ParseAsyncMsg(p); am.AsyncEvent != pdu.AsyncEventLogoutRequest {
		t.Fatalf("async event %d, want a logout request", am.AsyncEvent)
	}
	if !e.logs.contains("source address no longer allowed") {
		t.Error("no line says why the session is asked to log out")
	}
	stillServes(t, a)
	// Not logging out, b is dropped after the grace (1 s here).
	if _, err := b.ExpectClosed(); err != nil {
		t.Fatal(err)
	}
	stillServes(t, a)
	waitFor(t, "b's session to end", func() bool { return e.sessionCount() == 1 })

	again := e.dial()
	again.ISID[5] = 6
	err = again.Login(iscsitest.LoginOptions{InitiatorName: otherInitiator, TargetName: testIQN})
	if le, ok := err.(*iscsitest.LoginError); !ok || le.Status != login.StatusForbidden {
		t.Fatalf("login after the change: %v, want an authorization failure", err)
	}
}

func TestRefusalLogRateLimit(t *testing.T) {
	var r refusalLog
	t0 := time.Unix(1000, 0)
	for i, tc := range []struct {
		key        string
		at         time.Duration
		ok         bool
		suppressed int
	}{
		{"a", 0, true, 0},
		{"a", time.Second, false, 0},
		{"b", time.Second, true, 0}, // another key has its own budget
		{"a", 30 * time.Second, false, 0},
		{"a", refusalLogInterval, true, 2},
		{"a", refusalLogInterval + time.Second, false, 0},
		{"a", 3 * refusalLogInterval, true, 1},
	} {
		ok, n := r.allow(tc.key, t0.Add(tc.at))
		if ok != tc.ok || n != tc.suppressed {
			t.Fatalf("step %d: allow(%s) = %v, %d; want %v, %d", i, tc.key, ok, n, tc.ok, tc.suppressed)
		}
	}
	// The table stays bounded under a flood of distinct keys.
	for i := range 3 * maxRefusalKeys {
		r.allow(strings.Repeat("k", i%7)+string(rune(i)), t0)
	}
	if len(r.last) > maxRefusalKeys {
		t.Fatalf("%d keys kept", len(r.last))
	}
}
