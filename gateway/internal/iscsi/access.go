package iscsi

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/rbdgw/rbdgw/gateway/config"
	"github.com/rbdgw/rbdgw/gateway/internal/login"
)

// errNotAdmitted: the target's Access does not admit the initiator.
var errNotAdmitted = errors.New("initiator not admitted to the target")

// addressRefusal: the initiator is admitted, but only from other source
// addresses.
type addressRefusal struct {
	from    netip.Addr
	allowed []netip.Prefix
}

func (r *addressRefusal) Error() string {
	from := "an unknown address"
	if r.from.IsValid() {
		from = r.from.String()
	}
	list := make([]string, len(r.allowed))
	for i, p := range r.allowed {
		list[i] = config.FormatAddress(p) // as the configuration stores it
	}
	return fmt.Sprintf("source address %s is not among the initiator's allowed addresses %s", from, strings.Join(list, ","))
}

// access is the one place a target's access rule is applied, at login,
// in SendTargets and to the sessions of a replaced target: initiator,
// connected from address from, may use the target with the returned CHAP
// credentials (nil: AuthMethod None), or err says why not (errNotAdmitted,
// *addressRefusal).
func (e *targetEntry) access(initiator string, from netip.Addr) (*login.Credentials, error) {
	if e.spec.Access == nil {
		return nil, errNotAdmitted
	}
	ok, chap := e.spec.Access(initiator)
	if !ok {
		return nil, errNotAdmitted
	}
	if e.spec.Addresses == nil {
		return chap, nil
	}
	allowed := e.spec.Addresses(initiator)
	if len(allowed) == 0 {
		return chap, nil
	}
	for _, p := range allowed {
		if p.Contains(from) {
			return chap, nil
		}
	}
	return nil, &addressRefusal{from: from, allowed: allowed}
}

// sourceAddr is the address a connection comes from, unmapped and without
// zone as ACL prefixes are written; invalid when the transport has none
// (an address list then refuses the connection).
func sourceAddr(nc net.Conn) netip.Addr {
	ra := nc.RemoteAddr()
	if ta, ok := ra.(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap().WithZone("")
	}
	if ra == nil {
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(ra.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap().WithZone("")
}

// Refusals for a wrong address are logged at most once per
// refusalLogInterval for each kind (login, SendTargets), initiator,
// address and target: an initiator retrying every few seconds would fill
// the log. The next line says how many were left out.
const (
	refusalLogInterval = time.Minute
	maxRefusalKeys     = 4096
)

type refusalLog struct {
	mu   sync.Mutex
	last map[string]*refusalMark
}

type refusalMark struct {
	at         time.Time
	suppressed int
}

// allow reports whether a line for key may be written now, and how many
// were suppressed since the last one.
func (r *refusalLog) allow(key string, now time.Time) (bool, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		r.last = make(map[string]*refusalMark)
	}
	if m := r.last[key]; m != nil {
		if now.Sub(m.at) < refusalLogInterval {
			m.suppressed++
			return false, 0
		}
		n := m.suppressed
		m.at, m.suppressed = now, 0
		return true, n
	}
	if len(r.last) >= maxRefusalKeys {
		for k, m := range r.last {
			if now.Sub(m.at) >= refusalLogInterval {
				delete(r.last, k)
			}
		}
		if len(r.last) >= maxRefusalKeys {
			clear(r.last) // a flood of distinct keys: start over
		}
	}
	r.last[key] = &refusalMark{at: now}
	return true, 0
}

// logAddressRefusal writes msg for an address refusal, rate limited per
// msg, initiator, source address and target.
func (s *Server) logAddressRefusal(log *slog.Logger, msg, initiator, target string, why *addressRefusal, attrs ...any) {
	ok, suppressed := s.refusals.allow(msg+"|"+initiator+"|"+why.from.String()+"|"+target, time.Now())
	if !ok {
		return
	}
	attrs = append(attrs, "initiator", initiator, "target", target, "reason", why.Error())
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	log.Warn(msg, attrs...)
}
