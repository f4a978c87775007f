package iscsi

import (
	"encoding/hex"
	"log/slog"
	"net/netip"
	"runtime/debug"
	"sync"
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/login"
	"github.com/rbdgw/rbdgw/gateway/internal/scsi"
	"github.com/rbdgw/rbdgw/gateway/metrics"
)

// session is one iSCSI session. It has exactly one connection at a time;
// connection reinstatement hands it to a new connection once the old one
// has finished its cleanup.
type session struct {
	srv       *Server
	key       sessionKey
	initiator string
	isid      [6]byte
	discovery bool
	target    *targetEntry // nil for discovery sessions
	device    *scsi.Target
	nexus     *scsi.Nexus
	params    login.Params
	log       *slog.Logger

	// done is closed when the session reaches FREE (its nexus logged out).
	done      chan struct{}
	nexusOnce sync.Once
	endOnce   sync.Once

	mu        sync.Mutex
	tsih      uint16
	state     SessionState
	loginTime time.Time // when the leading login completed
	conn      *conn     // current connection
	takeover  *conn     // connection reinstating conn, if any

	// stats counts the session's commands (nil: metrics off, discovery).
	stats *metrics.Session

	// counted: the session counts against sessions_per_initiator (from
	// register to unregister; Server.mu).
	counted bool

	// window is the command window. It belongs to the serve loop of the
	// connection holding the session; a reinstating connection takes it
	// over only after the old connection finished.
	window cmdWindow
}

func newSession(srv *Server, key sessionKey, isid [6]byte, discovery bool) *session {
	return &session{
		srv:       srv,
		key:       key,
		initiator: key.initiator,
		isid:      isid,
		discovery: discovery,
		done:      make(chan struct{}),
		state:     SessionFree,
		log:       srv.log,
	}
}

func isidString(isid [6]byte) string { return hex.EncodeToString(isid[:]) }

// setState applies a session state transition, logging illegal ones (a
// programming error, never a peer's doing).
func (ss *session) setState(to SessionState) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.setStateLocked(to)
}

func (ss *session) setStateLocked(to SessionState) {
	next, err := nextSessionState(ss.state, to)
	if err != nil {
		ss.srv.log.Error("session state", "err", err, "tsih", ss.tsih)
		return
	}
	ss.state = next
}

func (ss *session) currentConn() *conn {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.conn
}

// sourceAddr is the address the session's connection comes from (invalid
// between connections).
func (ss *session) sourceAddr() netip.Addr {
	if c := ss.currentConn(); c != nil {
		return c.addr
	}
	return netip.Addr{}
}

// requestLogout asks the initiator to log out (Async Message); the
// connection is dropped when it does not within the logout grace.
func (ss *session) requestLogout(reason string) {
	if c := ss.currentConn(); c != nil {
		c.requestLogout(reason)
	}
}

// drop tells the initiator the session is being dropped and closes it. A
// connection reinstating the session is stopped too, so the session ends.
func (ss *session) drop(reason string) {
	ss.mu.Lock()
	c, tk := ss.conn, ss.takeover
	ss.mu.Unlock()
	if c != nil {
		c.dropSession(reason)
	}
	if tk != nil {
		tk.kill(reason)
	}
}

// register allocates a TSIH and enters the session in the server tables.
// It fails when a session with the same key still exists (the caller
// closes it and retries), when the target entry changed since it was
// resolved (stale), and names the limit that refuses it (refused: the
// login fails with out of resources) when the initiator has
// sessions_per_initiator sessions or every TSIH is in use.
func (s *Server) register(ss *session) (existing *session, stale bool, refused string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ss.discovery {
		if old := s.byKey[ss.key]; old != nil {
			return old, false, ""
		}
		if s.targets[ss.key.target] != ss.target {
			return nil, true, ""
		}
	}
	if s.counts.perInitiator[ss.initiator] >= s.cfg.perInitiator {
		return nil, false, "sessions_per_initiator"
	}
	tsih, ok := s.allocTSIHLocked()
	if !ok {
		return nil, false, "TSIHs"
	}
	s.admitSessionLocked(ss.initiator)
	ss.mu.Lock()
	ss.tsih = tsih
	ss.mu.Unlock()
	ss.counted = true
	s.sessions[ss.tsih] = ss
	if !ss.discovery {
		s.byKey[ss.key] = ss
	}
	return nil, false, ""
}

func (s *Server) unregister(ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[ss.tsih] == ss {
		delete(s.sessions, ss.tsih)
	}
	if s.byKey[ss.key] == ss {
		delete(s.byKey, ss.key)
	}
	if ss.counted {
		ss.counted = false
		s.releaseSessionLocked(ss.initiator)
	}
}

func (s *Server) sessionByTSIH(tsih uint16) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[tsih]
}

// end takes a registered session to FREE: the I_T nexus is logged out (the
// SCSI layer drops its reservations and aborts its tasks), the TSIH is
// freed and waiters on done are released. clean is false when the session
// failed rather than logged out.
func (ss *session) end(clean bool) {
	ss.endOnce.Do(func() {
		if !clean {
			ss.setState(SessionFailed)
		}
		ss.releaseNexus()
		ss.srv.unregister(ss)
		ss.stopStats()
		ss.setState(SessionFree)
		ss.log.Info("session closed", "clean", clean)
		close(ss.done)
	})
}

// releaseNexus logs the I_T nexus out of the SCSI layer, once. A logout
// does it before its response goes out, so that an initiator acting on the
// response (another host's RESERVE, say) never finds the old nexus's SPC-2
// reservation still held.
func (ss *session) releaseNexus() {
	ss.nexusOnce.Do(func() {
		if ss.device != nil && ss.nexus != nil {
			ss.nexusCall("NexusLogout", func() { ss.device.NexusLogout(ss.nexus) })
		}
	})
}

// nexusCall runs a SCSI layer call that must not take the daemon down.
func (ss *session) nexusCall(name string, f func()) {
	defer func() {
		if r := recover(); r != nil {
			ss.log.Error("panic in SCSI layer", "call", name, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	f()
}
