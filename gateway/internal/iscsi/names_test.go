package iscsi

import (
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
	"github.com/rbdgw/rbdgw/gateway/internal/login"
	"github.com/rbdgw/rbdgw/gateway/internal/scsi"
)

// Initiator-name-only access (issue 11, item 8).

// An initiator name sent in another case is the same initiator to the ACL,
// the LUN view, the session table and the I_T nexus: all see the
// canonical (lower case) name.
func TestInitiatorNameCase(t *testing.T) {
	const listed = "iqn.2024-01.org.example:host-a"
	var asked []string
	var mu sync.Mutex
	e := newEnv(t, withAccess(func(name string) (bool, *login.Credentials) {
		mu.Lock()
		asked = append(asked, name)
		mu.Unlock()
		return name == listed, nil
	}))
	e.device.SetMasking(scsi.Masking{listed: {}})
	in := e.dial()
	if err := in.Login(iscsitest.LoginOptions{InitiatorName: "IQN.2024-01.ORG.Example:Host-A", TargetName: "IQN.2024-01.org.example:DISK1"}); err != nil {
		t.Fatalf("login with the name in upper case: %v", err)
	}
	mu.Lock()
	for _, n := range asked {
		if n != listed {
			t.Errorf("the ACL was asked about %q", n)
		}
	}
	mu.Unlock()
	// The listed initiator's empty view applies: LUN 0 does not exist for
	// it.
	res, err := in.Do(&iscsitest.Cmd{CDB: cdbTUR()})
	if err != nil {
		t.Fatal(err)
	}
	if k, asc, _ := senseOf(t, res); k != 0x05 || asc != 0x25 {
		t.Errorf("TEST UNIT READY: sense %#x %#x, want LOGICAL UNIT NOT SUPPORTED", k, asc)
	}
	s := e.srv.Sessions()
	if len(s) != 1 || s[0].Initiator != listed || s[0].Target != testIQN {
		t.Errorf("sessions %+v", s)
	}
}

// Failed CHAP answers from one address delay that address's next ones,
// doubling; another address is not delayed.
func TestCHAPThrottle(t *testing.T) {
	good := &login.Credentials{User: "u", Secret: "secretsecret1"}
	bad := &login.Credentials{User: "u", Secret: "wrongwrongwrong"}
	const base = 200 * time.Millisecond
	e := newEnv(t, withAccess(func(string) (bool, *login.Credentials) { return true, good }),
		withTuning(func(o *Options) { o.chapBaseDelay = base }))
	// attempt logs in and returns when it started and ended. A failure is
	// recorded before its answer is sent, so the throttle's deadline for
	// the next answer is at least the failed attempt's start plus the
	// delay: elapsed times are measured from there, which a loaded
	// machine can only lengthen.
	attempt := func(src string, c *login.Credentials) (start, end time.Time, err error) {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		nc, err := d.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		in := iscsitest.New(nc)
		defer in.Close()
		start = time.Now()
		err = in.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, TargetName: testIQN, CHAP: c})
		return start, time.Now(), err
	}
	isAuthFailure := func(err error) bool {
		var le *iscsitest.LoginError
		return errors.As(err, &le) && le.Status == login.StatusAuthFailed
	}
	// 1st failure: no delay; then 200 ms, 400 ms before the next checks.
	var prev time.Time // start of the last failed attempt
	for i, delay := range []time.Duration{0, base, 2 * base} {
		start, end, err := attempt("127.0.0.1", bad)
		if !isAuthFailure(err) {
			t.Fatalf("attempt %d: %v", i, err)
		}
		if i > 0 && end.Sub(prev) < delay {
			t.Errorf("attempt %d answered %v after the previous one started, want at least %v", i, end.Sub(prev), delay)
		}
		if took := end.Sub(start); took > delay+time.Second {
			t.Errorf("attempt %d took %v, want about %v", i, took, delay)
		}
		prev = start
	}
	// Another address is not throttled; the right secret from the
	// throttled one waits its turn (800 ms after the last failure), then
	// logs in.
	if start, end, err := attempt("127.0.0.2", good); err != nil || end.Sub(start) > base {
		t.Errorf("login from another address: %v after %v", err, end.Sub(start))
	}
	if _, end, err := attempt("127.0.0.1", good); err != nil || end.Sub(prev) < 4*base {
		t.Errorf("right secret from the throttled address: %v %v after the last failure started, want at least %v", err, end.Sub(prev), 4*base)
	}
	if !e.logs.containsAll("CHAP authentication failed", "remote=127.0.0.1", "failures=1") {
		t.Error("no log line")
	}
}

// Parallel guesses from one address are checked one delay apart.
func TestCHAPThrottleParallel(t *testing.T) {
	good := &login.Credentials{User: "u", Secret: "secretsecret1"}
	bad := &login.Credentials{User: "u", Secret: "wrongwrongwrong"}
	e := newEnv(t, withAccess(func(string) (bool, *login.Credentials) { return true, good }),
		withTuning(func(o *Options) { o.chapBaseDelay, o.chapMaxDelay = 100*time.Millisecond, 100*time.Millisecond }))
	in := e.dial()
	if err := in.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, TargetName: testIQN, CHAP: bad}); err == nil {
		t.Fatal("wrong secret accepted")
	}
	const n = 5
	start := time.Now()
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in, err := iscsitest.Dial(e.addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer in.Close()
			_ = in.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, TargetName: testIQN, CHAP: bad})
		}()
	}
	wg.Wait()
	if took := time.Since(start); took < n*100*time.Millisecond-50*time.Millisecond {
		t.Errorf("%d parallel guesses done in %v: not spaced by the delay", n, took)
	}
}
