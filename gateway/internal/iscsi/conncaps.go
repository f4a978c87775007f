package iscsi

import (
	"log/slog"
	"net/netip"
	"time"
)

// Connection and session caps (issue 11, item 6): connection_limit and
// connections_per_address are checked when a connection is accepted,
// before anything is read or allocated for it; sessions_per_initiator when
// a login registers its session. Every refusal is logged, at most once per
// refusalLogInterval per kind and address or initiator.

// connCounts are the counters behind the caps, guarded by Server.mu.
type connCounts struct {
	perAddr      map[netip.Addr]int
	perInitiator map[string]int // registered sessions, discovery included
}

// admitConnLocked counts a new connection from addr, or reports which cap
// refuses it ("" when admitted).
func (s *Server) admitConnLocked(addr netip.Addr) (limit string, value int) {
	if s.counts.perAddr == nil {
		s.counts.perAddr = make(map[netip.Addr]int)
	}
	switch {
	case len(s.conns) >= s.cfg.connLimit:
		return "connection_limit", s.cfg.connLimit
	case s.counts.perAddr[addr] >= s.cfg.perAddressLimit:
		return "connections_per_address", s.cfg.perAddressLimit
	}
	s.counts.perAddr[addr]++
	return "", 0
}

func (s *Server) releaseConnLocked(addr netip.Addr) {
	if s.counts.perAddr[addr] <= 1 {
		delete(s.counts.perAddr, addr)
	} else {
		s.counts.perAddr[addr]--
	}
}

// admitSessionLocked counts a session of initiator (register checked the
// cap).
func (s *Server) admitSessionLocked(initiator string) {
	if s.counts.perInitiator == nil {
		s.counts.perInitiator = make(map[string]int)
	}
	s.counts.perInitiator[initiator]++
}

func (s *Server) releaseSessionLocked(initiator string) {
	if s.counts.perInitiator[initiator] <= 1 {
		delete(s.counts.perInitiator, initiator)
	} else {
		s.counts.perInitiator[initiator]--
	}
}

// logLimit writes the line of a cap refusal, rate limited per cap and
// subject (a source address or an initiator name).
func (s *Server) logLimit(log *slog.Logger, msg, limit string, value int, subject string, attrs ...any) {
	ok, suppressed := s.limitLog.allow(limit+"|"+subject, time.Now())
	if !ok {
		return
	}
	attrs = append(attrs, "limit", limit, "value", value)
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	log.Warn(msg, attrs...)
}

// maxTSIH is the number of TSIHs there are (0 is "new session").
const maxTSIH = 65535

// allocTSIHLocked returns a TSIH no session holds, searching at most every
// TSIH once; false when all are in use.
func (s *Server) allocTSIHLocked() (uint16, bool) {
	for range maxTSIH {
		s.lastTSIH++
		if s.lastTSIH == 0 {
			s.lastTSIH = 1 // TSIH 0 means "new session" on the wire
		}
		if _, used := s.sessions[s.lastTSIH]; !used {
			return s.lastTSIH, true
		}
	}
	return 0, false
}
