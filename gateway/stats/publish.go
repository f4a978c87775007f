package stats

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Publisher writes one gateway's record. One goroutine publishes.
type Publisher struct {
	kv  clientv3.KV
	key string

	written   bool
	last      Record // the last record written
	lease     clientv3.LeaseID
	history   []Mark // records written, oldest first
	lastBytes int
}

// NewPublisher returns the publisher of gateway's record in the cluster
// under prefix.
func NewPublisher(kv clientv3.KV, prefix, gateway string) *Publisher {
	return &Publisher{kv: kv, key: Key(prefix, gateway)}
}

// Size is the length of the last record written, in bytes.
func (p *Publisher) Size() int { return p.lastBytes }

// Publish writes rec bound to lease when its counters differ from those
// last written, when Refresh has passed since, or when the lease changed
// (the gateway registered again). It returns whether it wrote.
func (p *Publisher) Publish(ctx context.Context, rec Record, lease clientv3.LeaseID) (bool, error) {
	if p.written && lease == p.lease && sameCounters(rec, p.last) && rec.Time.Sub(p.last.Time) < Refresh {
		return false, nil
	}
	p.history = thin(p.history, rec.Time)
	rec.History = p.history
	body, err := json.Marshal(rec)
	if err != nil {
		return false, err
	}
	var opts []clientv3.OpOption
	if lease != 0 {
		opts = append(opts, clientv3.WithLease(lease))
	}
	resp, err := p.kv.Put(ctx, p.key, string(body), opts...)
	if err != nil {
		return false, fmt.Errorf("stats: publish %s: %w", p.key, err)
	}
	p.history = append(p.history, Mark{Rev: resp.Header.Revision, Time: rec.Time})
	rec.History = nil
	p.written, p.last, p.lease, p.lastBytes = true, rec, lease, len(body)
	return true, nil
}

// History thinning: every mark of the last keepAll, then the first mark of
// each slot of historySlot (slots of absolute time, so that a mark kept
// stays kept), none older than MaxWindow plus Refresh and a slot (so that
// a window of MaxWindow finds a record at or before its start even when
// an idle gateway writes only every Refresh).
const (
	keepAll     = 30 * time.Second
	historySlot = 10 * time.Second
	maxMarks    = 96
)

// thin returns the marks of h worth keeping at now, oldest first, reusing
// h's array.
func thin(h []Mark, now time.Time) []Mark {
	out := h[:0]
	lastSlot := int64(-1)
	for _, m := range h {
		age := now.Sub(m.Time)
		switch {
		case age > MaxWindow+Refresh+historySlot:
			continue
		case age <= keepAll:
			out = append(out, m)
		default:
			slot := m.Time.UnixNano() / int64(historySlot)
			if slot == lastSlot {
				continue
			}
			lastSlot = slot
			out = append(out, m)
		}
	}
	if len(out) > maxMarks {
		out = append(out[:0], out[len(out)-maxMarks:]...)
	}
	return out
}
