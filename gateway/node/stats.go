package node

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rbdgw/rbdgw/gateway/stats"
)

// publishStats keeps this gateway's counters in stats/<gateway> (bound to
// the liveness lease) until ctx ends: every stats.Interval when they
// changed, every stats.Refresh otherwise. The REST API of any gateway
// computes rates from them (package stats).
func (n *Node) publishStats(ctx context.Context) {
	pub := stats.NewPublisher(n.cli.Load(), n.store.Load().Prefix(), n.opts.Gateway)
	tick := time.NewTicker(stats.Interval)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		lease := clientv3.LeaseID(n.lease.Load())
		if lease == 0 || !n.state.Load().leaseHeld {
			continue // not registered: the record would outlive the gateway
		}
		rec := stats.FromSnapshot(n.metrics.Snapshot())
		wctx, cancel := context.WithTimeout(ctx, publishTimeout)
		_, err := pub.Publish(wctx, rec, lease)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			n.log.Warn("cannot publish this gateway's counters; retrying", "err", err)
			failing = true
		case err == nil && failing:
			n.log.Info("counters published again")
			failing = false
		}
	}
}
