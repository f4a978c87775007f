package iscsi

import (
	"net/netip"
	"sync"
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/login"
)

// Throttling of failed CHAP logins per source address (issue 11, item 8).
// Each failed CHAP answer from an address doubles the delay before the
// next answer from that address is checked (chapBaseDelay up to
// chapMaxDelay), and the checks of parallel logins from the address are
// spaced by that delay, so an address tests at most one secret per delay
// however many connections it opens. A success does not clear the
// penalty (a host with its own valid credentials must not reset the count
// of its guesses at another target's secret); it expires chapForget after
// the last failure. A login whose turn would come after its login timeout
// is refused at once, unchecked.

type chapThrottle struct {
	mu   sync.Mutex
	byIP map[netip.Addr]*chapPenalty
}

type chapPenalty struct {
	failures int
	delay    time.Duration
	next     time.Time // no CHAP answer from the address is checked before
	last     time.Time // the last failure
}

// turn returns when a CHAP answer from addr may be checked, and takes that
// turn.
func (t *chapThrottle) turn(addr netip.Addr, now time.Time) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.byIP[addr]
	if p == nil {
		return now
	}
	if now.Sub(p.last) > chapForget {
		delete(t.byIP, addr)
		return now
	}
	at := now
	if p.next.After(at) {
		at = p.next
	}
	p.next = at.Add(p.delay)
	return at
}

// failed records a failed CHAP answer from addr; it returns the number of
// failures and the delay now imposed.
func (t *chapThrottle) failed(addr netip.Addr, now time.Time, base, most time.Duration) (int, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byIP == nil {
		t.byIP = make(map[netip.Addr]*chapPenalty)
	}
	p := t.byIP[addr]
	if p == nil || now.Sub(p.last) > chapForget {
		if len(t.byIP) >= maxThrottledAddrs {
			t.forgetOldestLocked()
		}
		p = &chapPenalty{}
		t.byIP[addr] = p
	}
	p.failures++
	p.delay = base << min(p.failures-1, 20)
	p.delay = min(p.delay, most)
	p.last = now
	if next := now.Add(p.delay); next.After(p.next) {
		p.next = next
	}
	return p.failures, p.delay
}

func (t *chapThrottle) forgetOldestLocked() {
	var oldest netip.Addr
	var at time.Time
	for a, p := range t.byIP {
		if at.IsZero() || p.last.Before(at) {
			oldest, at = a, p.last
		}
	}
	delete(t.byIP, oldest)
}

// carriesCHAPAnswer reports whether a login request's text holds a CHAP
// response (CHAP_R): a guess at a secret.
func carriesCHAPAnswer(text []byte) bool {
	kvs, err := login.ParseText(text)
	if err != nil {
		return false
	}
	for _, kv := range kvs {
		if kv.Key == "CHAP_R" {
			return true
		}
	}
	return false
}

// awaitCHAPTurn waits until the connection's address may have a CHAP
// answer checked; false when that would be after the login deadline (or
// the connection was closed meanwhile).
func (ls *loginState) awaitCHAPTurn() bool {
	c := ls.c
	at := c.srv.chap.turn(c.addr, time.Now())
	wait := time.Until(at)
	if wait <= 0 {
		return true
	}
	if at.After(ls.deadline) {
		c.srv.logLimit(c.log, "CHAP answer refused unchecked: its source address is throttled", "chap_throttle",
			int(wait/time.Millisecond), c.addr.String(), "remote", c.addr.String(), "initiator", ls.initiator,
			"wait", wait.Round(time.Millisecond))
		return false
	}
	c.log.Debug("CHAP answer delayed: its source address is throttled", "wait", wait.Round(time.Millisecond))
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.killed:
		return false
	}
}

// chapFailed records a failed CHAP answer and logs it (at most once a
// minute per address).
func (ls *loginState) chapFailed() {
	c := ls.c
	cfg := &c.srv.cfg
	n, delay := c.srv.chap.failed(c.addr, time.Now(), cfg.chapBaseDelay, cfg.chapMaxDelay)
	c.srv.logLimit(c.log, "CHAP authentication failed; answers from this address are delayed", "chap_failures",
		n, c.addr.String(), "remote", c.addr.String(), "initiator", ls.initiator, "failures", n,
		"delay", delay)
}
