package iscsi

import "time"

// Timers of a connection in the full feature phase that end it when the
// initiator stalls (issue 11, items 5 and 6):
//   - Data-Out timeout: a command that expects Data-Out (after an R2T, or
//     announced unsolicited data) and received none for dataout_timeout
//     pins its buffer for nothing; it is aborted and the connection
//     dropped, as RFC 7143 allows at ErrorRecoveryLevel 0.
//   - Discovery idle timeout: a discovery session that sent no request
//     for discovery_idle_timeout is closed.
//
// One ticker checks both, a few times per timeout.

func (c *conn) startStallCheck() {
	cfg := &c.srv.cfg
	period := min(cfg.dataOutTimeout, cfg.discoveryIdle) / 4
	c.ffp.stallTick = time.NewTicker(min(max(period, 10*time.Millisecond), time.Second))
	c.ffp.lastRx = monoNow()
}

// checkStalls ends the connection when a timer ran out.
func (c *conn) checkStalls() {
	f := &c.ffp
	cfg := &c.srv.cfg
	now := monoNow()
	if c.sess.discovery {
		if idle := time.Duration(now - f.lastRx); idle > cfg.discoveryIdle {
			c.log.Info("discovery session idle, closing", "idle", idle.Round(time.Millisecond), "timeout", cfg.discoveryIdle)
			f.exit = exitNow
		}
		return
	}
	for _, t := range f.tasks {
		if t.running || !t.expectsData() {
			continue
		}
		if waited := time.Duration(now - t.dataSince); waited > cfg.dataOutTimeout {
			c.log.Warn("Data-Out timeout: command aborted, dropping the connection", "itt", t.itt,
				"waited", waited.Round(time.Millisecond), "timeout", cfg.dataOutTimeout,
				"expected", t.xfer, "solicited", t.r2tNext)
			f.exit = exitNow
			return
		}
	}
}
