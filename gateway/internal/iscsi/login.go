package iscsi

import (
	"time"

	"github.com/rbdgw/rbdgw/gateway/config"
	"github.com/rbdgw/rbdgw/gateway/internal/login"
	"github.com/rbdgw/rbdgw/gateway/internal/pdu"
	"github.com/rbdgw/rbdgw/gateway/internal/scsi"
)

// The only iSCSI version there is (RFC 7143 section 11.12.4).
const iscsiVersion = 0x00

// loginState is the throwaway state of one login phase. Login PDUs are read
// and written synchronously by the serve goroutine, so digests switch on
// exactly at the first full feature phase PDU.
type loginState struct {
	c        *conn
	deadline time.Time
	first    *pdu.LoginReq
	statSN   uint32
	conv     *login.Conversation

	// Filled by resolve.
	initiator string
	target    *targetEntry
	// refusedFrom is set when target refusedBy refused the login because
	// of the connection's source address: logRefused says so.
	refusedFrom *addressRefusal
	refusedBy   string

	existing *session // TSIH != 0: the session this connection joins
	fresh    *session // TSIH == 0: the session being created
}

// runLogin runs the login phase and reports whether the connection reached
// the full feature phase.
func (c *conn) runLogin() bool {
	deadline := time.Now().Add(c.srv.cfg.loginTimeout)
	_ = c.nc.SetDeadline(deadline)
	p, err := c.rd.Read()
	if err != nil {
		if dd, ok := err.(*pdu.DataDigestError); ok {
			dd.PDU.Release()
		}
		c.log.Debug("no login", "err", err)
		c.setState(ConnFree)
		return false
	}
	if op := p.BHS.Opcode(); op != pdu.OpLoginReq {
		c.log.Warn("first PDU is not a Login Request", "opcode", op.String())
		p.Release()
		c.setState(ConnFree)
		return false
	}
	c.setState(ConnInLogin)
	ls := &loginState{c: c, deadline: deadline}
	if !ls.run(p) {
		if ls.fresh != nil && c.sess == nil {
			ls.fresh.setState(SessionFree)
		}
		if c.sess == nil {
			c.setState(ConnFree)
		}
		return false
	}
	_ = c.nc.SetDeadline(time.Time{})
	c.ffp.statSN = ls.statSN
	c.setState(ConnLoggedIn)
	return true
}

func (ls *loginState) run(p *pdu.PDU) bool {
	c := ls.c
	req, err := pdu.ParseLoginReq(p)
	if err != nil {
		c.log.Warn("malformed Login Request", "err", err)
		ls.refuseRaw(p, login.StatusInitiatorError)
		p.Release()
		return false
	}
	ls.first = req
	ls.statSN = req.ExpStatSN
	c.cid = req.CID
	c.log = c.log.With("cid", req.CID, "isid", isidString(req.ISID))

	if status := ls.checkFirst(req); status != login.StatusSuccess {
		ls.respond(req, login.Response{Status: status}, req.TSIH)
		p.Release()
		return false
	}
	policy := login.Policy{
		Resolve:              ls.resolve,
		TargetPortalGroupTag: ls.portalGroupTag(req.Data),
		Offer:                c.srv.cfg.offer(),
		Leading:              req.TSIH == 0,
	}
	if ls.existing != nil {
		params := ls.existing.params
		policy.Session = &params
	} else {
		ls.fresh = newSession(c.srv, sessionKey{}, req.ISID, false)
		ls.fresh.setState(SessionActive)
	}
	ls.conv = login.NewConversation(policy)

	for {
		// A CHAP answer is a guess at a secret: an address whose guesses
		// failed waits its turn (chapthrottle.go).
		guess := carriesCHAPAnswer(req.Data)
		if guess && !ls.awaitCHAPTurn() {
			p.Release()
			ls.logRefused(login.StatusAuthFailed)
			ls.respond(req, login.Response{Status: login.StatusAuthFailed}, req.TSIH)
			return false
		}
		resp := ls.conv.Step(login.Request{
			Transit: req.Transit, Continue: req.Continue, CSG: req.CSG, NSG: req.NSG, Text: req.Data,
		})
		p.Release()
		if guess && resp.Status == login.StatusAuthFailed {
			ls.chapFailed()
		}
		if resp.Status != login.StatusSuccess {
			ls.logRefused(resp.Status)
			ls.respond(req, resp, req.TSIH)
			return false
		}
		if resp.Done {
			if status := ls.finish(); status != login.StatusSuccess {
				ls.logRefused(status)
				ls.respond(req, login.Response{Status: status}, req.TSIH)
				return false
			}
			if err := ls.respond(req, resp, c.sess.tsih); err != nil {
				c.log.Info("final login response not sent", "err", err)
				return false
			}
			c.sess.log.Info("login complete", "cid", c.cid, "remote", c.remote,
				"type", c.params.SessionType, "header_digest", c.params.HeaderDigest,
				"data_digest", c.params.DataDigest)
			return true
		}
		if err := ls.respond(req, resp, req.TSIH); err != nil {
			return false
		}
		if p, req = ls.next(); req == nil {
			return false
		}
	}
}

// logRefused writes the one line a refused login logs; a refusal for the
// source address says why, rate limited.
func (ls *loginState) logRefused(status login.Status) {
	c := ls.c
	if ar := ls.refusedFrom; ar != nil && status == login.StatusForbidden {
		c.srv.logAddressRefusal(c.log, "login refused", ls.initiator, ls.refusedBy, ar, "status", status.String())
		return
	}
	c.log.Info("login refused", "status", status.String(), "initiator", ls.initiator)
}

// checkFirst validates the first Login Request's header fields.
func (ls *loginState) checkFirst(req *pdu.LoginReq) login.Status {
	if req.VersionMin > iscsiVersion || req.VersionMax < iscsiVersion {
		return login.StatusUnsupportedVersion
	}
	if req.TSIH == 0 {
		return login.StatusSuccess
	}
	ss := ls.c.srv.sessionByTSIH(req.TSIH)
	if ss == nil || ss.isid != req.ISID {
		return login.StatusSessionDoesNotExist
	}
	ss.mu.Lock()
	cur, state := ss.conn, ss.state
	ss.mu.Unlock()
	if cur == nil || state != SessionLoggedIn {
		return login.StatusSessionDoesNotExist
	}
	if cur.cid != req.CID {
		// Sessions have one connection (MaxConnections=1); only the same
		// CID may come back, which reinstates the connection.
		return login.StatusTooManyConnections
	}
	ls.existing = ss
	return login.StatusSuccess
}

// next reads the following Login Request of the same login.
func (ls *loginState) next() (*pdu.PDU, *pdu.LoginReq) {
	c := ls.c
	p, err := c.rd.Read()
	if err != nil {
		if dd, ok := err.(*pdu.DataDigestError); ok {
			dd.PDU.Release()
		}
		c.log.Info("login aborted", "err", err)
		return nil, nil
	}
	if p.BHS.Opcode() != pdu.OpLoginReq {
		c.log.Warn("non-login PDU during login", "opcode", p.BHS.Opcode().String())
		ls.refuseRaw(p, login.StatusInvalidDuringLogin)
		p.Release()
		return nil, nil
	}
	req, err := pdu.ParseLoginReq(p)
	if err != nil || req.ISID != ls.first.ISID || req.TSIH != ls.first.TSIH || req.CID != ls.first.CID {
		c.log.Warn("inconsistent Login Request", "err", err)
		ls.refuseRaw(p, login.StatusInitiatorError)
		p.Release()
		return nil, nil
	}
	return p, req
}

// resolve is the login Policy callback: it finds the target and applies its
// access rule, or the discovery authentication.
func (ls *loginState) resolve(sessionType, initiator, targetName string) login.Decision {
	// One form of the name everywhere after login: the ACL lookup, LUN
	// masking, the I_T nexus and its reservations, the session caps and
	// reinstatement all compare the canonical (lower case) name, RFC
	// 3722's normalisation (issue 11, item 8).
	initiator = config.CanonicalName(initiator)
	ls.initiator = initiator
	srv := ls.c.srv
	discovery := sessionType == login.SessionDiscovery
	if ex := ls.existing; ex != nil {
		if initiator != ex.initiator || discovery != ex.discovery || (!discovery && targetName != ex.key.target) {
			return login.Decision{Status: login.StatusInitiatorError}
		}
	}
	if discovery {
		return login.Decision{Status: login.StatusSuccess, CHAP: srv.discoveryCredentials()}
	}
	e := srv.lookupTarget(targetName)
	if e == nil {
		return login.Decision{Status: login.StatusNotFound}
	}
	chap, err := e.access(initiator, ls.c.addr)
	if err != nil {
		ls.refuse(e, err)
		return login.Decision{Status: login.StatusForbidden}
	}
	ls.target = e
	return login.Decision{Status: login.StatusSuccess, CHAP: chap, TargetAlias: e.spec.Alias}
}

// refuse notes why target e refused the login, for logRefused.
func (ls *loginState) refuse(e *targetEntry, err error) {
	if ar, ok := err.(*addressRefusal); ok {
		ls.refusedFrom, ls.refusedBy = ar, e.spec.IQN
	}
}

// portalGroupTag picks the tag for the first response, which goes out
// before the conversation resolves the target: it is read from the
// TargetName key of the first request.
func (ls *loginState) portalGroupTag(text []byte) uint16 {
	if ls.existing != nil && ls.existing.target != nil {
		return ls.existing.target.spec.TPGT
	}
	kvs, err := login.ParseText(text)
	if err == nil {
		for _, kv := range kvs {
			if kv.Key == "TargetName" {
				if e := ls.c.srv.lookupTarget(kv.Value); e != nil {
					return e.spec.TPGT
				}
			}
		}
	}
	return 1
}

// finish completes a successful negotiation: a new session is registered
// (reinstating an older one with the same initiator port and target port),
// or an existing session takes this connection over.
func (ls *loginState) finish() login.Status {
	c := ls.c
	c.params = ls.conv.Params()
	c.authMethod = ls.conv.AuthMethod()
	c.maxSendSeg = clamp(c.params.MaxRecvDataSegmentLength, minDataSegment, maxDataSegment)
	if ls.existing != nil {
		return ls.takeOver()
	}
	ss := ls.fresh
	ss.params = c.params
	ss.initiator = ls.initiator
	ss.discovery = c.params.SessionType == login.SessionDiscovery
	c.queueCtl()
	ss.mu.Lock()
	ss.conn = c
	ss.loginTime = time.Now()
	ss.mu.Unlock()
	for time.Now().Before(ls.deadline) {
		if !ss.discovery {
			if status := ls.bindTarget(ss); status != login.StatusSuccess {
				return status
			}
		}
		old, stale, refused := c.srv.register(ss)
		if refused != "" {
			value := c.srv.cfg.perInitiator
			if refused == "TSIHs" {
				value = maxTSIH
			}
			c.srv.logLimit(c.log, "login refused: out of resources", refused, value, ss.initiator,
				"initiator", ss.initiator)
			return login.StatusOutOfResources
		}
		if stale {
			continue // the target was replaced meanwhile: resolve it again
		}
		if old != nil {
			c.log.Info("session reinstatement", "old_tsih", old.tsih)
			if oc := old.currentConn(); oc != nil {
				oc.kill("session reinstatement")
			}
			if !ls.waitDone(old.done) {
				return login.StatusServiceUnavailable
			}
			continue
		}
		ss.window = newCmdWindow(ls.first.CmdSN, c.srv.cfg.queueDepth)
		ss.window.gate = c.bud.open
		attrs := []any{"tsih", ss.tsih, "isid", isidString(ss.isid), "initiator", ss.initiator}
		if !ss.discovery {
			attrs = append(attrs, "target", ss.key.target)
		}
		ss.log = c.srv.log.With(attrs...)
		c.log = ss.log.With("cid", c.cid, "remote", c.remote)
		c.sess = ss
		if !ss.discovery {
			ss.nexusCall("NexusLogin", func() { ss.device.NexusLogin(ss.nexus) })
		}
		ss.startStats()
		ss.setState(SessionLoggedIn)
		return login.StatusSuccess
	}
	return login.StatusServiceUnavailable
}

// bindTarget fixes the session's target port from the current target entry,
// re-checking access when the entry changed during the login.
func (ls *loginState) bindTarget(ss *session) login.Status {
	e := ls.c.srv.lookupTarget(ls.target.spec.IQN)
	if e == nil {
		return login.StatusTargetRemoved
	}
	if e != ls.target {
		if _, err := e.access(ls.initiator, ls.c.addr); err != nil {
			ls.refuse(e, err)
			return login.StatusForbidden
		}
		ls.target = e
	}
	sp := &e.spec
	ss.target = e
	ss.device = sp.Device
	ss.key = sessionKey{initiator: ls.initiator, isid: ss.isid, target: sp.IQN, tpgt: sp.TPGT}
	ss.nexus = &scsi.Nexus{
		InitiatorName:  ls.initiator,
		ISID:           ss.isid,
		TargetName:     sp.IQN,
		TPGT:           sp.TPGT,
		RelativePortID: sp.RelativePortID,
		PortGroupID:    sp.PortGroupID,
	}
	return login.StatusSuccess
}

// takeOver reinstates the connection of an existing session (same CID):
// the old connection is closed, its tasks aborted, and the session moves
// here once its cleanup is over.
func (ls *loginState) takeOver() login.Status {
	c, ss := ls.c, ls.existing
	ss.mu.Lock()
	old := ss.conn
	if old == nil || ss.takeover != nil || ss.state != SessionLoggedIn {
		ss.mu.Unlock()
		return login.StatusSessionDoesNotExist
	}
	ss.takeover = c
	ss.mu.Unlock()
	c.log.Info("connection reinstatement", "tsih", ss.tsih)
	old.kill("connection reinstatement")
	if !ls.waitDone(old.done) {
		// Nobody will hold the session: end it once the old connection is
		// gone.
		go func() {
			<-old.done
			ss.mu.Lock()
			orphan := ss.conn == nil && ss.takeover == c
			if orphan {
				ss.takeover = nil
			}
			ss.mu.Unlock()
			if orphan {
				ss.end(false)
			}
		}()
		return login.StatusServiceUnavailable
	}
	c.queueCtl()
	ss.mu.Lock()
	ss.conn = c
	ss.takeover = nil
	ss.mu.Unlock()
	ss.window.gate = c.bud.open
	ss.window.resume(ls.first.CmdSN)
	c.sess = ss
	c.log = ss.log.With("cid", c.cid, "remote", c.remote)
	return login.StatusSuccess
}

func (ls *loginState) waitDone(done <-chan struct{}) bool {
	t := time.NewTimer(time.Until(ls.deadline))
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-ls.c.killed:
	case <-t.C:
	}
	return false
}

// respond sends one Login Response for req.
func (ls *loginState) respond(req *pdu.LoginReq, r login.Response, tsih uint16) error {
	exp, maxSN := req.CmdSN, req.CmdSN+uint32(ls.c.srv.cfg.queueDepth)-1
	if r.Done && ls.c.sess != nil {
		exp, maxSN = ls.c.sess.window.expCmdSN, ls.c.sess.window.maxCmdSN
	}
	resp := &pdu.LoginResp{
		Transit: r.Transit, Continue: r.Continue, CSG: r.CSG, NSG: r.NSG,
		VersionMax: iscsiVersion, VersionActive: iscsiVersion,
		ISID: req.ISID, TSIH: tsih, ITT: req.ITT,
		StatSN: ls.statSN, ExpCmdSN: exp, MaxCmdSN: maxSN,
		StatusClass: r.Status.Class(), StatusDetail: r.Status.Detail(),
		Data: r.Text,
	}
	if r.Status != login.StatusSuccess {
		resp.Transit, resp.Continue, resp.Data = false, false, nil
	}
	ls.statSN++
	return ls.c.wr.WriteBatch([]*pdu.PDU{resp.Encode()})
}

// refuseRaw answers a Login Request that could not be decoded.
func (ls *loginState) refuseRaw(p *pdu.PDU, status login.Status) {
	req := &pdu.LoginReq{ITT: p.BHS.ITT()}
	copy(req.ISID[:], p.BHS[8:14])
	if ls.first != nil {
		req.CmdSN = ls.first.CmdSN
	}
	_ = ls.respond(req, login.Response{Status: status}, 0)
}
