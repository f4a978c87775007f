package iscsi

import (
	"time"

	"github.com/rbdgw/rbdgw/gateway/metrics"
)

// Counting commands for package metrics (Options.Metrics). A command is
// counted in flight from its arrival until its status is queued for the
// writer; its latency spans the same, its backend part is the time it
// spent in the SCSI layer (Execute). The serve loop does all of it, with
// the LUN's counters cached per connection: no lock, no allocation.

// taskStats is what the metrics keep of a task.
type taskStats struct {
	lun     *metrics.LUN // nil: not counted (metrics off, or already counted)
	arrived int64        // monoNow() at arrival
}

// lunStatsCache maps LUNs to their counters for one connection, valid
// while the registry's generation is gen.
type lunStatsCache struct {
	gen  uint64
	luns map[uint64]*metrics.LUN
}

// countArrival starts counting t.
func (c *conn) countArrival(t *task) {
	reg := c.srv.metrics
	if reg == nil || c.sess == nil || c.sess.stats == nil {
		return
	}
	cache := &c.ffp.lunStats
	if g := reg.Generation(); g != cache.gen || cache.luns == nil {
		if cache.luns == nil {
			cache.luns = make(map[uint64]*metrics.LUN)
		}
		clear(cache.luns)
		cache.gen = g
	}
	l := cache.luns[t.cmd.LUN]
	if l == nil {
		l = reg.LUN(c.sess.key.target, t.cmd.LUN)
		cache.luns[t.cmd.LUN] = l
	}
	t.stats = taskStats{lun: l, arrived: monoNow()}
	l.Arrived()
}

// countCompletion counts t, whose status (if any) was just queued.
func (c *conn) countCompletion(t *task, m *completion) {
	l := t.stats.lun
	if l == nil {
		return
	}
	t.stats.lun = nil
	res := &m.res
	o := metrics.Outcome{
		Op:        metrics.Classify(t.cmd.CDB),
		Latency:   time.Duration(monoNow() - t.stats.arrived),
		Backend:   m.took,
		Executed:  t.failSense == nil,
		Status:    uint8(res.Status),
		Sense:     res.Sense,
		Aborted:   res.Aborted,
		Responded: res.Aborted && res.TaskAbortedStatus,
	}
	if !res.Aborted {
		if t.read {
			o.ReadBytes = uint64(min(len(res.Data), int(t.edtl)))
		}
		if t.write && o.Executed {
			o.WrittenBytes = uint64(t.xfer)
		}
	}
	l.Done(&o)
	c.sess.stats.Done(&o)
}

// countGone ends the counting of a task that leaves without a response.
func (c *conn) countGone(t *task) {
	if l := t.stats.lun; l != nil {
		t.stats.lun = nil
		l.Dropped()
	}
}

// startStats registers the counters of a session that logged in.
func (ss *session) startStats() {
	if ss.discovery || ss.srv.metrics == nil {
		return
	}
	ss.mu.Lock()
	info := metrics.SessionInfo{
		Target: ss.key.target, Initiator: ss.initiator, ISID: isidString(ss.isid),
		TSIH: ss.tsih, LoginTime: ss.loginTime,
	}
	ss.mu.Unlock()
	ss.stats = ss.srv.metrics.AddSession(info)
}

// stopStats forgets the counters of a session that ended.
func (ss *session) stopStats() {
	ss.srv.metrics.RemoveSession(ss.stats)
}
