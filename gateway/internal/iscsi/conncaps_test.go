package iscsi

import (
	"errors"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
	"github.com/rbdgw/rbdgw/gateway/internal/login"
)

// Connections that never log in, caps and TSIHs (issue 11, item 6).

// memInuse is the heap and the goroutine stacks in use.
func memInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// dialIdle opens n TCP connections from the loopback address src that send
// nothing; the caller closes them.
func dialIdle(t testing.TB, addr, src string, n int) []net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %d: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	return conns
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

// settleConns waits until the server's connection count stops changing.
func settleConns(t testing.TB, e *testEnv) int {
	t.Helper()
	last, since := -1, time.Now()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if n := e.connCount(); n != last {
			last, since = n, time.Now()
		} else if time.Since(since) > 300*time.Millisecond {
			return n
		}
	}
	t.Fatal("connection count does not settle")
	return 0
}

// ioWorks logs a fresh initiator in from 127.0.0.1 and writes and reads.
func ioWorks(t testing.TB, e *testEnv, isid byte) {
	t.Helper()
	in := e.dial()
	in.ISID[5] = isid
	if err := in.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, TargetName: testIQN}); err != nil {
		t.Fatalf("login while flooded: %v", err)
	}
	clearUnitAttention(t, in)
	data := pattern(64<<10, isid)
	write10(t, in, 2048, data)
	equalBytes(t, "read back while flooded", read10(t, in, 2048, len(data)).Data, data)
	in.Close()
}

// 5000 connections from one address that never log in: the default cap
// per address holds 256 of them, memory stays bounded, and an initiator
// from another address logs in and does I/O meanwhile.
func TestIdleConnectionFlood(t *testing.T) {
	e := newEnv(t, withTuning(func(o *Options) { o.LoginTimeout = time.Minute }))
	idle := memInuse()
	flood := dialIdle(t, e.addr, "127.0.0.2", 5000)
	defer closeAll(flood)
	held := settleConns(t, e)
	grown := int64(memInuse()) - int64(idle)
	t.Logf("5000 idle connections from one address: %d held, heap+stacks %+.1f MiB", held, float64(grown)/(1<<20))
	if held != e.srv.cfg.perAddressLimit {
		t.Errorf("%d connections held, want connections_per_address %d", held, e.srv.cfg.perAddressLimit)
	}
	if grown > 16<<20 {
		t.Errorf("memory grew %d MiB", grown>>20)
	}
	if !e.logs.containsAll("connection refused", "remote=127.0.0.2", "limit=connections_per_address", "value=256") {
		t.Error("no log line for the cap")
	}
	ioWorks(t, e, 1)
}

// With the caps raised, 5000 connections that never log in are all held:
// what each costs before its first byte.
func TestIdleConnectionCost(t *testing.T) {
	e := newEnv(t, withTuning(func(o *Options) {
		o.LoginTimeout = time.Minute
		o.Tuning.ConnectionLimit = 6000
		o.Tuning.ConnectionsPerAddress = 6000
	}))
	idle := memInuse()
	flood := dialIdle(t, e.addr, "127.0.0.2", 5000)
	defer closeAll(flood)
	waitFor(t, "5000 connections", func() bool { return e.connCount() == 5000 })
	grown := int64(memInuse()) - int64(idle)
	t.Logf("5000 idle connections held: heap+stacks %+.1f MiB, %.1f KiB each", float64(grown)/(1<<20), float64(grown)/5000/1024)
	if grown > 64<<20 {
		t.Errorf("memory grew %d MiB", grown>>20)
	}
	ioWorks(t, e, 2)
}

func TestConnectionLimit(t *testing.T) {
	e := newEnv(t, withTuning(func(o *Options) { o.Tuning.ConnectionLimit = 3 }))
	flood := dialIdle(t, e.addr, "127.0.0.3", 10)
	defer closeAll(flood)
	if n := settleConns(t, e); n != 3 {
		t.Fatalf("%d connections held, want 3", n)
	}
	if !e.logs.containsAll("connection refused", "limit=connection_limit", "value=3") {
		t.Error("no log line")
	}
	e.logs.mu.Lock()
	lines := 0
	for _, r := range e.logs.records {
		if len(r) >= 18 && r[:18] == "connection refused" {
			lines++
		}
	}
	e.logs.mu.Unlock()
	if lines != 1 {
		t.Errorf("%d log lines for 7 refusals, want 1 (rate limited)", lines)
	}
	closeAll(flood)
	waitFor(t, "connections gone", func() bool { return e.connCount() == 0 })
	ioWorks(t, e, 3)
}

func TestSessionsPerInitiator(t *testing.T) {
	e := newEnv(t, withTuning(func(o *Options) { o.Tuning.SessionsPerInitiator = 2 }))
	var ins []*iscsitest.Initiator
	for i := range 2 {
		in := e.dial()
		in.ISID[5] = byte(i + 1)
		if err := in.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, TargetName: testIQN}); err != nil {
			t.Fatal(err)
		}
		ins = append(ins, in)
	}
	in := e.dial()
	in.ISID[5] = 9
	err := in.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, TargetName: testIQN})
	var le *iscsitest.LoginError
	if !errors.As(err, &le) || le.Status != login.StatusOutOfResources {
		t.Fatalf("third session: %v, want out of resources (0x0302)", err)
	}
	if !e.logs.containsAll("login refused: out of resources", "limit=sessions_per_initiator", "value=2") {
		t.Error("no log line")
	}
	// Another initiator is not affected; a reinstatement is not a new
	// session; a logout makes room.
	other := e.dial()
	if err := other.Login(iscsitest.LoginOptions{InitiatorName: "iqn.2024-01.org.example:host2", TargetName: testIQN}); err != nil {
		t.Fatal(err)
	}
	again := e.dial()
	again.ISID[5] = 1
	if err := again.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, TargetName: testIQN}); err != nil {
		t.Fatalf("reinstatement at the cap: %v", err)
	}
	if _, err := ins[1].Logout(0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "logout", func() bool { return e.sessionCount() == 2 })
	third := e.dial()
	third.ISID[5] = 9
	if err := third.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, TargetName: testIQN}); err != nil {
		t.Fatalf("after a logout: %v", err)
	}
}

// With every TSIH in use a login is refused with out of resources, at
// once.
func TestTSIHsExhausted(t *testing.T) {
	e := newEnv(t)
	e.srv.mu.Lock()
	dummy := &session{srv: e.srv, discovery: true}
	for tsih := 1; tsih <= maxTSIH; tsih++ {
		e.srv.sessions[uint16(tsih)] = dummy
	}
	e.srv.mu.Unlock()
	start := time.Now()
	in := e.dial()
	err := in.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, TargetName: testIQN})
	var le *iscsitest.LoginError
	if !errors.As(err, &le) || le.Status != login.StatusOutOfResources {
		t.Fatalf("login with no TSIH free: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("refusal took %v", took)
	}
	e.srv.mu.Lock()
	delete(e.srv.sessions, 77)
	e.srv.mu.Unlock()
	in = e.dial()
	if err := in.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, TargetName: testIQN}); err != nil {
		t.Fatalf("login with one TSIH free: %v", err)
	}
	if got := e.srv.Sessions(); len(got) == 0 {
		t.Fatal("no sessions")
	}
	e.srv.mu.Lock()
	for tsih, ss := range e.srv.sessions {
		if ss == dummy {
			delete(e.srv.sessions, tsih)
		}
	}
	e.srv.mu.Unlock()
}

// A discovery session without requests is closed after the idle timeout.
func TestDiscoveryIdleTimeout(t *testing.T) {
	e := newEnv(t, withTuning(func(o *Options) { o.DiscoveryIdleTimeout = 300 * time.Millisecond }))
	in := e.dial()
	if err := in.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, Discovery: true}); err != nil {
		t.Fatal(err)
	}
	// A request in time keeps it.
	time.Sleep(150 * time.Millisecond)
	if _, err := in.SendTargets("All"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := in.ExpectClosed(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 250*time.Millisecond || took > 3*time.Second {
		t.Errorf("closed after %v, timeout 300ms", took)
	}
	if !e.logs.contains("discovery session idle") {
		t.Error("no log line")
	}
}

// containsAll reports whether one record contains every part.
func (r *logRecorder) containsAll(parts ...string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
next:
	for _, rec := range r.records {
		for _, p := range parts {
			if !strings.Contains(rec, p) {
				continue next
			}
		}
		return true
	}
	return false
}
