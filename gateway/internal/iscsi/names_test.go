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
	attempt := func(src string, c *login.Credentials) (time.Duration, error) {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		nc, err := d.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		in := iscsitest.New(nc)
		defer in.Close()
		start := time.Now()
		err = in.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, TargetName: testIQN, CHAP: c})
		return time.Since(start), err
	}
	isAuthFailure := func(err error) bool {
		var le *iscsitest.LoginError
		return errors.As(err, &le) && le.Status == login.StatusAuthFailed
	}
	// 1st failure: no delay; then 200 ms, 400 ms before the next checks.
	for i, min := range []time.Duration{0, base, 2 * base} {
		took, err := attempt("127.0.0.1", bad)
		if !isAuthFailure(err) {
			t.Fatalf("attempt %d: %v", i, err)
		}
		if took < min-20*time.Millisecond || took > min+time.Second {
			t.Errorf("attempt %d took %v, want about %v", i, took, min)
		}
	}
	// Another address is not throttled; the right secret from the
	// throttled one waits its turn (800 ms), then logs in.
	if took, err := attempt("127.0.0.2", good); err != nil || took > base {
		t.Errorf("login from another address: %v after %v", err, took)
	}
	if took, err := attempt("127.0.0.1", good); err != nil || took < 4*base-20*time.Millisecond {
		t.Errorf("right secret from the throttled address: %v after %v, want about %v", err, took, 4*base)
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
