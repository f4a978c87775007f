package iscsi

import (
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/pdu"
)

// logoutState tracks a logout the target asked for, and one the initiator
// requested whose response waits for running commands.
type logoutState struct {
	requested bool // Async Message sent: LOGOUT_REQUESTED
	timer     *time.Timer
	req       *pdu.LogoutReq
}

func (l *logoutState) inProgress() bool { return l.req != nil }

func (l *logoutState) timeout() <-chan time.Time {
	if !l.requested || l.req != nil {
		return nil
	}
	return l.timer.C
}

func (l *logoutState) stop() {
	if l.timer != nil {
		l.timer.Stop()
	}
}

// requestLogoutNow asks the initiator to log out within the grace period.
func (c *conn) requestLogoutNow(reason string) {
	f := &c.ffp
	if f.logout.requested || f.logout.req != nil {
		return
	}
	grace := c.srv.cfg.logoutGrace
	c.log.Info("asking initiator to log out", "reason", reason, "grace", grace)
	secs := uint16(min((grace+time.Second-1)/time.Second, 3600))
	c.sendAsync(pdu.AsyncEventLogoutRequest, 0, secs)
	c.setState(ConnLogoutRequested)
	f.logout.requested = true
	f.logout.timer = time.NewTimer(grace)
}

// handleLogout accepts a Logout Request. ErrorRecoveryLevel 0 has no
// connection recovery, so "remove the connection for recovery" is refused.
func (c *conn) handleLogout(req *pdu.LogoutReq, bhs *pdu.BHS) {
	f := &c.ffp
	switch req.Reason {
	case pdu.LogoutCloseSession:
	case pdu.LogoutCloseConnection:
		if req.CID != c.cid {
			c.logoutRespond(req, pdu.LogoutRespCIDNotFound)
			return
		}
	case pdu.LogoutRemoveForRecovery:
		c.logoutRespond(req, pdu.LogoutRespNoRecovery)
		return
	default:
		c.log.Warn("logout with unknown reason", "reason", req.Reason)
		c.reject(pdu.RejectProtocolError, bhs)
		return
	}
	c.log.Info("logout", "reason", req.Reason)
	c.setState(ConnInLogout)
	f.logout.req = req
	// Commands the SCSI layer has not started are dropped; running ones
	// finish and answer before the Logout Response.
	for _, t := range f.tasks {
		if !t.running {
			c.abortLocal(t)
		}
	}
	c.maybeFinishLogout()
}

// maybeFinishLogout sends the pending Logout Response once nothing runs.
func (c *conn) maybeFinishLogout() {
	f := &c.ffp
	if f.logout.req == nil || f.running > 0 || f.exit != exitNone {
		return
	}
	// Sessions have one connection: a successful logout ends the session.
	c.sess.releaseNexus()
	c.logoutRespond(f.logout.req, pdu.LogoutRespSuccess)
	f.logoutClean = true
	f.exit = exitGraceful
}

func (c *conn) logoutRespond(req *pdu.LogoutReq, code uint8) {
	f := &c.ffp
	w := &c.sess.window
	r := pdu.LogoutResp{Response: code, ITT: req.ITT, StatSN: f.statSN, ExpCmdSN: w.expCmdSN, MaxCmdSN: w.maxCmdSN}
	if code != pdu.LogoutRespSuccess {
		r.Time2Wait = uint16(max(c.params.DefaultTime2Wait, 0))
	}
	f.statSN++
	c.send(outItem{p: r.Encode()})
}
