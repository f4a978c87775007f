package iscsi

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rbdgw/rbdgw/gateway/config"
	"github.com/rbdgw/rbdgw/gateway/internal/login"
	"github.com/rbdgw/rbdgw/gateway/internal/scsi"
	"github.com/rbdgw/rbdgw/gateway/metrics"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("iscsi: server closed")

// Options configure a Server. Zero values take defaults.
type Options struct {
	Logger *slog.Logger
	// Tuning holds the session parameters the target offers (queue depth,
	// MaxRecvDataSegmentLength, MaxBurstLength, FirstBurstLength,
	// MaxOutstandingR2T) and the NOP-In timers in seconds. MaxConnections
	// is accepted but every session has exactly one connection
	// (MaxConnections=1 is negotiated).
	Tuning config.Tuning
	// LoginTimeout bounds a whole login phase (default 15 s).
	LoginTimeout time.Duration
	// NopInInterval and NopInTimeout override the Tuning seconds when
	// non-zero (sub-second values are for tests). A negative interval turns
	// target-initiated NOP-In pings off.
	NopInInterval, NopInTimeout time.Duration
	// LogoutGrace is how long an initiator asked to log out (Async Message)
	// has before the connection is dropped (default 5 s).
	LogoutGrace time.Duration
	// InlineLatency: plain reads and writes of a LU whose commands take
	// less than this on average run on the connection's serve loop instead
	// of a goroutine of their own (default 50 µs; negative: never).
	InlineLatency time.Duration
	// Metrics, when set, counts every command per LUN and per session
	// (package metrics); the reconciler maps the LUNs in it.
	Metrics *metrics.Registry
	// DataOutTimeout and DiscoveryIdleTimeout override the Tuning seconds
	// when positive (sub-second values are for tests).
	DataOutTimeout, DiscoveryIdleTimeout time.Duration

	// chapBaseDelay and chapMaxDelay replace the CHAP throttle's
	// constants when set (tests).
	chapBaseDelay, chapMaxDelay time.Duration
}

// TargetSpec describes one target as this gateway presents it.
type TargetSpec struct {
	IQN    string
	Alias  string
	Device *scsi.Target
	// TPGT is this gateway's portal group tag for the target;
	// RelativePortID and PortGroupID identify the SCSI target port (VPD 0x83,
	// ALUA).
	TPGT           uint16
	RelativePortID uint16
	PortGroupID    uint16
	// Portals ("ip:port") are advertised as TargetAddress "ip:port,tpgt" in
	// SendTargets answers. An entry that already carries its portal group
	// tag ("ip:port,tag": another gateway's portal of the same target) is
	// advertised as given.
	Portals []string
	// Access decides whether an initiator may log in, and with which CHAP
	// credentials (nil: AuthMethod None). A nil Access admits nobody.
	Access func(initiatorIQN string) (allowed bool, chap *login.Credentials)
	// Addresses, when set, gives the source addresses an initiator Access
	// admits may connect from; nil or empty: any. A login from elsewhere
	// is refused (authorization failure), SendTargets does not list the
	// target to it, and SetTarget asks its sessions to log out.
	Addresses func(initiatorIQN string) []netip.Prefix
}

// targetEntry is an immutable snapshot of a TargetSpec; SetTarget swaps the
// pointer, so sessions compare entries by identity.
type targetEntry struct {
	spec TargetSpec
}

// sessionKey identifies a session for reinstatement: the initiator port
// (name + ISID) and the target port (name + portal group tag).
type sessionKey struct {
	initiator string
	isid      [6]byte
	target    string
	tpgt      uint16
}

// Server is an iSCSI target portal: it accepts connections on listeners,
// runs logins and sessions, and routes SCSI commands to the targets set
// with SetTarget. Its methods are safe for concurrent use. No lock is taken
// on the I/O path: the server mutex guards only the target and session
// tables, touched at login, logout and reconfiguration.
type Server struct {
	log *slog.Logger
	cfg settings

	mu            sync.Mutex
	targets       map[string]*targetEntry
	discoveryAuth *login.Credentials
	listeners     map[net.Listener]struct{}
	conns         map[*conn]struct{}
	sessions      map[uint16]*session
	byKey         map[sessionKey]*session
	lastTSIH      uint16
	closing       bool

	connWG sync.WaitGroup

	metrics *metrics.Registry // nil: commands are not counted

	budget *gatewayBudget // command buffers of every connection (budget.go)

	refusals refusalLog // rate limits the lines of address refusals
	limitLog refusalLog // rate limits the lines of cap refusals (conncaps.go)
	counts   connCounts // connections per address, sessions per initiator
	chap     chapThrottle

	// Counters for tests and diagnostics: commands run on the serve loop,
	// serve loops taken over from a stalled inline command, commands the
	// loop started without a goroutine (conn.start), and completions
	// answered by the goroutine that delivered them (task.Done).
	inlineRuns, loopTakeovers, asyncStarts, directAnswers atomic.Int64
}

// NewServer returns a Server with no targets.
func NewServer(opts Options) *Server {
	lg := opts.Logger
	if lg == nil {
		lg = slog.Default()
	}
	cfg := resolveSettings(opts)
	return &Server{
		log:       lg,
		cfg:       cfg,
		budget:    newGatewayBudget(cfg.gatewayBuffer),
		metrics:   opts.Metrics,
		targets:   make(map[string]*targetEntry),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
		sessions:  make(map[uint16]*session),
		byKey:     make(map[sessionKey]*session),
	}
}

// Serve accepts connections on l until Shutdown or a permanent accept error.
// It always closes l.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		l.Close()
	}()

	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.isClosing() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed, retrying", "err", err, "delay", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		if !s.startConn(nc) {
			nc.Close()
			return ErrServerClosed
		}
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

func (s *Server) startConn(nc net.Conn) bool {
	addr := sourceAddr(nc)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return false
	}
	if limit, value := s.admitConnLocked(addr); limit != "" {
		// Refused before anything is read or allocated for it.
		s.mu.Unlock()
		nc.Close()
		s.logLimit(s.log, "connection refused", limit, value, addr.String(), "remote", addr.String())
		return true
	}
	c := newConn(s, nc)
	s.conns[c] = struct{}{}
	s.connWG.Add(1)
	s.mu.Unlock()
	go c.serve()
	return true
}

func (s *Server) connDone(c *conn) {
	s.mu.Lock()
	s.releaseConnLocked(c.addr)
	delete(s.conns, c)
	s.mu.Unlock()
	s.connWG.Done()
}

// SetDiscoveryAuth sets the CHAP credentials discovery sessions must use;
// nil allows discovery without authentication.
func (s *Server) SetDiscoveryAuth(c *login.Credentials) {
	if c != nil {
		cp := *c
		c = &cp
	}
	s.mu.Lock()
	s.discoveryAuth = c
	s.mu.Unlock()
}

// SetTarget adds a target or replaces it in place. Sessions of initiators
// the new Access and Addresses still allow (from the session's source
// address) stay up; the others are asked to log out and dropped after the
// logout grace. When the Device, TPGT, RelativePortID or
// PortGroupID change, the I_T nexuses change too: every session of the
// target is dropped, and SetTarget returns once their commands finished.
func (s *Server) SetTarget(spec TargetSpec) error {
	if spec.IQN == "" {
		return errors.New("iscsi: target without IQN")
	}
	if spec.Device == nil {
		return errors.New("iscsi: target " + spec.IQN + " without device")
	}
	spec.Portals = append([]string(nil), spec.Portals...)
	e := &targetEntry{spec: spec}

	s.mu.Lock()
	old := s.targets[spec.IQN]
	s.targets[spec.IQN] = e
	sessions := s.targetSessionsLocked(spec.IQN)
	s.mu.Unlock()

	if old == nil {
		return nil
	}
	portChanged := old.spec.Device != spec.Device || old.spec.TPGT != spec.TPGT ||
		old.spec.RelativePortID != spec.RelativePortID || old.spec.PortGroupID != spec.PortGroupID
	var dropped []*session
	for _, ss := range sessions {
		switch {
		case portChanged:
			ss.drop("target port changed")
			dropped = append(dropped, ss)
		default:
			var ar *addressRefusal
			switch _, err := e.access(ss.initiator, ss.sourceAddr()); {
			case errors.As(err, &ar):
				ss.log.Warn("source address no longer allowed", "reason", ar.Error())
				ss.requestLogout("source address no longer allowed")
			case err != nil:
				ss.requestLogout("initiator no longer allowed")
			}
		}
	}
	for _, ss := range dropped {
		<-ss.done
	}
	return nil
}

// RemoveTarget removes a target. Its sessions are told they are being
// dropped (Async Message) and closed; RemoveTarget returns once their
// commands finished, so the caller may release the device.
func (s *Server) RemoveTarget(iqn string) {
	s.mu.Lock()
	delete(s.targets, iqn)
	sessions := s.targetSessionsLocked(iqn)
	s.mu.Unlock()
	for _, ss := range sessions {
		ss.drop("target removed")
	}
	for _, ss := range sessions {
		<-ss.done
	}
}

func (s *Server) targetSessionsLocked(iqn string) []*session {
	var out []*session
	for _, ss := range s.sessions {
		if !ss.discovery && ss.key.target == iqn {
			out = append(out, ss)
		}
	}
	return out
}

// lookupTarget finds a target by name; names compare in lower case (RFC
// 3722, config.CanonicalName), as the configuration stores them.
func (s *Server) lookupTarget(iqn string) *targetEntry {
	iqn = config.CanonicalName(iqn)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.targets[iqn]
}

// targetList returns the current targets (for SendTargets).
func (s *Server) targetList() []*targetEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*targetEntry, 0, len(s.targets))
	for _, e := range s.targets {
		out = append(out, e)
	}
	return out
}

func (s *Server) discoveryCredentials() *login.Credentials {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.discoveryAuth
}

// Shutdown stops accepting, asks every logged-in initiator to log out and
// waits for the connections to end. When ctx expires first, the remaining
// connections are closed and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for l := range s.listeners {
		l.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()

	for _, c := range conns {
		c.requestLogout("server shutdown")
	}
	all := make(chan struct{})
	go func() {
		s.connWG.Wait()
		close(all)
	}()
	select {
	case <-all:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for c := range s.conns {
		c.kill("server shutdown deadline")
	}
	s.mu.Unlock()
	// Closed connections end promptly unless a backend call hangs; do not
	// wait for that forever.
	select {
	case <-all:
	case <-time.After(time.Second):
	}
	return ctx.Err()
}

// SessionInfo describes a session for status displays. It is a copy: it
// does not change when the session does.
type SessionInfo struct {
	TSIH      uint16
	ISID      string // 12 hex digits
	Initiator string
	Target    string // empty for discovery sessions
	Discovery bool
	State     SessionState
	Remote    string // the connection's remote address
	// Portal is the local address the connection came in on.
	Portal    string
	LoginTime time.Time
	// The negotiated values of the session and of its current connection.
	HeaderDigest, DataDigest bool // CRC32C
	// MaxRecvDataSegmentLength is the initiator's (what the target sends
	// at most per PDU); TargetMaxRecvDataSegmentLength the target's.
	MaxRecvDataSegmentLength       int
	TargetMaxRecvDataSegmentLength int
	MaxBurstLength                 int
	FirstBurstLength               int
	ImmediateData, InitialR2T      bool
	AuthMethod                     string // "CHAP" or "None"
	// LUNs are the LUNs of the session's target its initiator sees (LUN
	// masking).
	LUNs []uint64
}

// Sessions lists the registered sessions, ordered by TSIH. It is safe for
// concurrent use and takes no lock on the I/O path.
func (s *Server) Sessions() []SessionInfo {
	s.mu.Lock()
	list := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		list = append(list, ss)
	}
	s.mu.Unlock()
	out := make([]SessionInfo, 0, len(list))
	for _, ss := range list {
		ss.mu.Lock()
		info := SessionInfo{
			TSIH: ss.tsih, ISID: isidString(ss.isid), Initiator: ss.initiator,
			Target: ss.key.target, Discovery: ss.discovery, State: ss.state,
			LoginTime:        ss.loginTime,
			MaxBurstLength:   ss.params.MaxBurstLength,
			FirstBurstLength: ss.params.FirstBurstLength,
			ImmediateData:    ss.params.ImmediateData,
			InitialR2T:       ss.params.InitialR2T,
		}
		if c := ss.conn; c != nil {
			// Set by login before the connection took the session.
			info.Remote, info.Portal, info.AuthMethod = c.remote, c.local, c.authMethod
			info.HeaderDigest, info.DataDigest = c.params.HeaderDigest, c.params.DataDigest
			info.MaxRecvDataSegmentLength = c.params.MaxRecvDataSegmentLength
			info.TargetMaxRecvDataSegmentLength = c.params.TargetMaxRecvDataSegmentLength
		}
		device, nexus := ss.device, ss.nexus
		ss.mu.Unlock()
		if device != nil && nexus != nil {
			info.LUNs = device.LUNsFor(nexus)
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b SessionInfo) int { return int(a.TSIH) - int(b.TSIH) })
	return out
}

// closeTargetSessions drops every session of a target (TARGET COLD RESET).
func (s *Server) closeTargetSessions(iqn, reason string) {
	s.mu.Lock()
	sessions := s.targetSessionsLocked(iqn)
	s.mu.Unlock()
	for _, ss := range sessions {
		ss.drop(reason)
	}
}
