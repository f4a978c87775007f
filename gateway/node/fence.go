package node

import (
	"context"
	"time"

	"github.com/rbdgw/rbdgw/gateway/events"
	"github.com/rbdgw/rbdgw/gateway/internal/alua"
)

// recordFence writes a fencing this gateway did in etcd (events/fence/),
// where the event stream of every gateway's API sees it.
func (n *Node) recordFence(ctx context.Context, f alua.FenceReport) {
	rec := events.Fence{Disk: f.Disk, Gateway: n.opts.Gateway, From: f.From, Epoch: f.Epoch,
		Clients: f.Clients, Reason: f.Reason, Time: time.Now()}
	if f.Err != nil {
		rec.Error = f.Err.Error()
	}
	// The takeover's context may be close to its deadline: the record
	// gets time of its own.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := events.RecordFence(wctx, n.cli.Load(), n.store.Load().Prefix(), rec); err != nil {
		n.log.Warn("cannot record the fencing in etcd", "disk", f.Disk, "err", err)
	}
}
