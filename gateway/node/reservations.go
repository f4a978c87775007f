package node

import (
	"context"
	"fmt"

	"github.com/rbdgw/rbdgw/gateway/internal/alua"
	"github.com/rbdgw/rbdgw/gateway/internal/prstore"
)

// fenceForReservation blocklists a gateway that did not confirm a
// reservation change (prstore.Options.Fence).
func (n *Node) fenceForReservation(_ context.Context, addr string) error {
	return fencingClient{n.ceph, n}.Fence(addr)
}

// recordReservationFence writes such a fencing in events/fence/<disk>,
// like a takeover's.
func (n *Node) recordReservationFence(ctx context.Context, f prstore.FenceReport) {
	n.recordFence(ctx, alua.FenceReport{
		Disk:    f.Disk,
		From:    f.Gateway,
		Clients: []string{f.Addr},
		Reason:  fmt.Sprintf("did not confirm reservation change (revision %d)", f.Rev),
		Err:     f.Err,
	})
}
