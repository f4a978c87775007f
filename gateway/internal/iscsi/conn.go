package iscsi

import (
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/login"
	"github.com/rbdgw/rbdgw/gateway/internal/pdu"
	"github.com/rbdgw/rbdgw/gateway/internal/rawsock"
)

// exitMode says how the full feature loop ends.
type exitMode uint8

const (
	exitNone     exitMode = iota
	exitGraceful          // flush what is queued (a Logout Response, a Reject), then close
	exitNow               // close at once (transport failure, kill)
)

// conn is one TCP connection: the login phase, then the full feature phase.
// Goroutines: serve, a reader, a writer, and one per SCSI command or task
// management call while it runs; serve, or the reader when serve is idle,
// owns all state (ffpState.loopMu).
type conn struct {
	srv    *Server
	nc     net.Conn
	remote string
	addr   netip.Addr // remote's address, as ACL address lists match it (sourceAddr)
	local  string     // the portal address the initiator connected to
	// log gains session attributes at login and belongs to the serve
	// goroutine (and the goroutines it starts); baseLog is for the others.
	log     *slog.Logger
	baseLog *slog.Logger
	rd      *pdu.Reader
	wr      *pdu.Writer
	// bud is the connection's command buffer budget (budget.go).
	bud *connBudget

	stateMu sync.Mutex
	state   ConnState

	killOnce sync.Once
	killed   chan struct{} // closed by kill: stop now

	// Requests from other goroutines, picked up by the serve loop.
	ctlMu sync.Mutex
	// ctlQueued: requests wait for the serve loop. Set once the login
	// binds the connection to a session (from then on it is visible to
	// other goroutines, and it enters the full feature phase unless the
	// login fails, which closes it anyway); before that a request closes
	// the connection, as there is nobody to ask.
	ctlQueued  bool
	wantLogout string
	wantDrop   string
	ctlWake    chan struct{}

	done chan struct{} // closed when the connection is cleaned up

	// Set by login, read-only afterwards. sess is set once this connection
	// holds the session (registered it, or took it over by reinstatement).
	cid        uint16
	sess       *session
	params     login.Params
	authMethod string // "CHAP" or "None"
	maxSendSeg int    // the initiator's MaxRecvDataSegmentLength

	ffp ffpState
}

func newConn(s *Server, nc net.Conn) *conn {
	remote := nc.RemoteAddr().String()
	raw := rawsock.Wrap(nc)
	return &conn{
		srv:     s,
		nc:      nc,
		remote:  remote,
		addr:    sourceAddr(nc),
		local:   nc.LocalAddr().String(),
		log:     s.log.With("remote", remote),
		baseLog: s.log.With("remote", remote),
		rd:      pdu.NewReaderSize(raw, loginReadBuffer),
		wr:      pdu.NewWriter(raw),
		bud:     newConnBudget(s.budget, s.cfg.connBuffer),
		state:   ConnFree,
		killed:  make(chan struct{}),
		ctlWake: make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
}

// setState applies a connection state transition; an illegal one is a
// programming error and is logged, not applied.
func (c *conn) setState(to ConnState) {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	next, err := nextConnState(c.state, to)
	if err != nil {
		c.log.Error("connection state", "err", err)
		return
	}
	c.state = next
}

func (c *conn) getState() ConnState {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	return c.state
}

// kill closes the connection at once; the serve goroutine cleans up.
func (c *conn) kill(reason string) {
	c.killOnce.Do(func() {
		c.baseLog.Info("closing connection", "reason", reason)
		close(c.killed)
		c.nc.Close()
	})
	c.ffp.baton.relieve()
}

// requestLogout asks the initiator to log out; before the login bound
// the connection to a session there is nobody to ask, so it is closed.
func (c *conn) requestLogout(reason string) {
	c.ctlMu.Lock()
	if !c.ctlQueued {
		c.ctlMu.Unlock()
		c.kill(reason)
		return
	}
	if c.wantLogout == "" {
		c.wantLogout = reason
	}
	c.ctlMu.Unlock()
	c.wakeCtl()
}

// dropSession tells the initiator the session is dropped and closes it.
func (c *conn) dropSession(reason string) {
	c.ctlMu.Lock()
	if !c.ctlQueued {
		c.ctlMu.Unlock()
		c.kill(reason)
		return
	}
	if c.wantDrop == "" {
		c.wantDrop = reason
	}
	c.ctlMu.Unlock()
	c.wakeCtl()
}

func (c *conn) wakeCtl() {
	c.ffp.baton.relieve()
	select {
	case c.ctlWake <- struct{}{}:
	default:
	}
}

// queueCtl makes requests wait for the serve loop (see ctlQueued).
func (c *conn) queueCtl() {
	c.ctlMu.Lock()
	c.ctlQueued = true
	c.ctlMu.Unlock()
}

// takeCtl returns and clears the pending requests.
func (c *conn) takeCtl() (logout, drop string) {
	c.ctlMu.Lock()
	defer c.ctlMu.Unlock()
	logout, drop = c.wantLogout, c.wantDrop
	c.wantLogout, c.wantDrop = "", ""
	return logout, drop
}

// serve runs the connection: login, then the full feature phase.
func (c *conn) serve() {
	c.runOwned(func() bool {
		c.setState(ConnXptUp)
		if !c.runLogin() {
			return true
		}
		return c.fullFeature()
	})
}

// resumeLoop runs on a new goroutine after a command run inline stalled
// (see loopBaton). When the serve loop goroutine stalled,
// this one continues the loop with the loopMu it held. When the reader
// stalled doing the loop's work, the loop goroutine takes the loop back
// and this one becomes the reader, in the stalled reader's place.
func (c *conn) resumeLoop() {
	f := &c.ffp
	if f.readerHolds.Swap(false) {
		f.loopMu.Unlock()
		c.wakeLoop() // to start what the reader left ready
		c.readLoop()
		return
	}
	c.runOwned(c.loop)
}

// runOwned runs body on a goroutine that owns the connection and cleans
// the connection up when body ends it, not when body handed the serve loop
// to another goroutine (it returned false). A panic is contained here: it
// is logged with its stack and only this connection is closed.
func (c *conn) runOwned(body func() bool) {
	ended := true
	defer func() {
		if ended {
			c.cleanup()
			close(c.done)
			c.srv.connDone(c)
		}
	}()
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("panic serving connection", "panic", r, "stack", string(debug.Stack()))
			c.ffp.exit = exitNow
			ended = true
		}
	}()
	ended = body()
}

// cleanup ends the connection: flushes when asked to, stops the reader and
// writer, aborts what is still running, and ends or hands over the session.
func (c *conn) cleanup() {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("panic cleaning up connection", "panic", r, "stack", string(debug.Stack()))
			c.nc.Close()
		}
	}()
	f := &c.ffp
	if f.started {
		f.baton.stop()
		f.ping.stop()
		f.logout.stop()
		if f.nopTick != nil {
			f.nopTick.Stop()
		}
		f.stallTick.Stop()
		if f.exit == exitGraceful {
			c.flushOut()
			c.flush(5 * time.Second)
		}
		close(f.loopDone)
		close(f.stopIO)
	}
	c.nc.Close()
	if f.started {
		f.ioWG.Wait()
		c.drainRx()
		disposeAll(append(f.q.close(), f.out...))
	}

	switch c.getState() {
	case ConnLoggedIn, ConnInLogout, ConnLogoutRequested:
		if f.exit == exitGraceful && c.getState() == ConnInLogout {
			c.setState(ConnFree)
		} else {
			c.setState(ConnCleanupWait)
		}
	}

	ss := c.sess
	handover := false
	if ss != nil {
		ss.mu.Lock()
		handover = ss.takeover != nil && ss.conn == c
		if ss.conn == c {
			ss.conn = nil
		}
		ss.mu.Unlock()
	}
	if f.started {
		c.abortAll()
	}
	if ss != nil && !handover {
		ss.end(f.logoutClean)
	}
	// Every task has ended: what is still charged went to the garbage
	// collector or is held by nobody who will give it back.
	c.bud.close()
	if c.getState() != ConnFree {
		c.setState(ConnFree)
	}
}

// flush waits until everything queued so far has been written.
func (c *conn) flush(timeout time.Duration) {
	marker := make(chan struct{})
	if !c.ffp.q.push(outItem{p: nil, done: marker}) {
		return
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-marker:
	case <-c.ffp.writerDead:
	case <-c.killed:
	case <-t.C:
	}
}

func (c *conn) drainRx() {
	for {
		select {
		case in := <-c.ffp.rx:
			in.release()
		default:
			return
		}
	}
}
