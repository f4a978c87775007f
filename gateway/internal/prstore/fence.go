package prstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/rbdgw/rbdgw/gateway/cluster"
)

// ErrNotConfirmed reports a reservation change that is committed but not
// known to be enforced everywhere: a gateway serving the disk neither
// confirmed it nor could be fenced. The command that made it must not
// report success.
var ErrNotConfirmed = errors.New("prstore: change not confirmed by every gateway")

// FenceReport is a gateway fenced because it did not confirm a
// reservation change (Options.OnFence).
type FenceReport struct {
	Disk    string
	Gateway string
	// Addr is the Ceph client address put in the blocklist.
	Addr string
	// Rev is the revision of pr/<disk> it did not confirm.
	Rev int64
	Err error
}

// fencedFor is how long an address this hub fenced is not fenced again.
// The blocklist entry lasts longer (rbd.Cluster.BlocklistExpiry, an hour
// by default); a gateway that comes back records a new address.
const fencedFor = 10 * time.Minute

// maxFenceRounds bounds how often one gateway's client is looked up again
// because it recorded a new one while it was being fenced.
const maxFenceRounds = 3

// fenceBehind fences every gateway in behind, which did not confirm
// revision rev of disk's state. It has a deadline of its own: a command
// whose change is committed must learn whether it is enforced.
func (h *Hub) fenceBehind(ctx context.Context, disk string, rev int64, behind []string) error {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.opts.FenceTimeout)
	defer cancel()
	var errs []error
	for _, g := range behind {
		if err := h.fenceGateway(fctx, disk, g, rev); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: disk %s revision %d: %w", ErrNotConfirmed, disk, rev, errors.Join(errs...))
	}
	return nil
}

// fenceGateway puts the Ceph client gw serves through in the blocklist,
// so that nothing it is still sent under the old state reaches the image.
// A gateway records a new client only after it has read pr/ again, and
// before it serves through it (package node); a client recorded while
// this runs is therefore looked at again: confirmed, or fenced as well.
func (h *Hub) fenceGateway(ctx context.Context, disk, gw string, rev int64) error {
	if h.opts.Fence == nil {
		return fmt.Errorf("%s did not confirm and this gateway cannot fence", gw)
	}
	for round := 0; round < maxFenceRounds; round++ {
		if round > 0 {
			recs, _, err := h.opts.Peers.Records(ctx)
			if err != nil {
				return err
			}
			if r, ok := recs[gw]; ok && r.Applied >= rev {
				return nil
			}
		}
		addr, at, err := h.clientOf(ctx, gw)
		if err != nil {
			return err
		}
		if addr == "" {
			// It never served through Ceph since clients/ exists, so it
			// has no nexus that could act on the old state; when it
			// starts it reads pr/ before it serves.
			h.log.Warn("gateway did not confirm a reservation change and has no Ceph client to fence",
				"disk", disk, "gateway", gw, "rev", rev)
			return nil
		}
		if !h.recentlyFenced(addr) {
			err := h.opts.Fence(ctx, addr)
			if h.opts.OnFence != nil {
				h.opts.OnFence(ctx, FenceReport{Disk: disk, Gateway: gw, Addr: addr, Rev: rev, Err: err})
			}
			if err != nil {
				return fmt.Errorf("fence %s (%s): %w", gw, addr, err)
			}
			h.markFenced(addr)
			h.log.Warn("gateway fenced: it did not confirm a reservation change",
				"disk", disk, "gateway", gw, "ceph_client", addr, "rev", rev)
		}
		_, again, err := h.clientOf(ctx, gw)
		if err != nil {
			return err
		}
		if again == at {
			return nil
		}
	}
	return fmt.Errorf("%s records new Ceph clients without confirming revision %d", gw, rev)
}

// clientOf returns the Ceph client address gw recorded in clients/<gw>
// and the record's revision; without such a record, the address in its
// live peers/ record (revision 0). "" when neither exists.
func (h *Hub) clientOf(ctx context.Context, gw string) (string, int64, error) {
	resp, err := h.opts.Client.Get(ctx, h.opts.Store.Prefix()+string(cluster.ClientKey(gw)))
	if err != nil {
		return "", 0, fmt.Errorf("read the Ceph client of %s: %w", gw, err)
	}
	if len(resp.Kvs) == 1 {
		var rec cluster.ClientRecord
		if err := json.Unmarshal(resp.Kvs[0].Value, &rec); err != nil {
			return "", 0, fmt.Errorf("decode the Ceph client record of %s: %w", gw, err)
		}
		return rec.Addr, resp.Kvs[0].ModRevision, nil
	}
	recs, _, err := h.opts.Peers.Records(ctx)
	if err != nil {
		return "", 0, err
	}
	return recs[gw].Client, 0, nil
}

func (h *Hub) recentlyFenced(addr string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	at, ok := h.fenced[addr]
	return ok && time.Since(at) < fencedFor
}

func (h *Hub) markFenced(addr string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for a, at := range h.fenced {
		if time.Since(at) >= fencedFor {
			delete(h.fenced, a)
		}
	}
	h.fenced[addr] = time.Now()
}
