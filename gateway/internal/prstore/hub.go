package prstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/internal/etcdwatch"
	"github.com/rbdgw/rbdgw/gateway/internal/peer"
	"github.com/rbdgw/rbdgw/gateway/internal/scsi/pr"
)

// DefaultAckTimeout bounds how long a change waits for the other gateways
// to apply it. A gateway that cannot confirm in that time is cut off from
// etcd or hangs: a reservation change then fences it before it completes.
const DefaultAckTimeout = 3 * time.Second

// DefaultFenceTimeout bounds the fencing of the gateways that did not
// confirm a change.
const DefaultFenceTimeout = 20 * time.Second

// Options configure a Hub.
type Options struct {
	// Store is the cluster store (CASPR, GetPR, key prefix).
	Store *cluster.Store
	// Client is the etcd client the store uses; the hub watches with it.
	Client *clientv3.Client
	// Peers publishes what this gateway has applied and waits for the
	// others.
	Peers *peer.Directory
	// Gateway is this gateway's name.
	Gateway string
	// AckTimeout: see DefaultAckTimeout.
	AckTimeout time.Duration
	// FenceTimeout: see DefaultFenceTimeout.
	FenceTimeout time.Duration
	// OnPeerReset runs when another gateway reset a disk's logical unit,
	// before this gateway confirms the change: it establishes the reset's
	// unit attention here.
	OnPeerReset func(disk string)
	// OnPeerChange runs for every reservation change another gateway
	// made that has effects on I_T nexuses, before this gateway confirms
	// it: it establishes the unit attentions and aborts the tasks here,
	// and returns once those tasks are done.
	OnPeerChange func(disk string, eff pr.Effects)
	// Fence puts a Ceph client address in the OSD blocklist. A
	// reservation change fences the gateways serving the disk that did
	// not confirm it; without Fence such a change fails instead.
	Fence func(ctx context.Context, addr string) error
	// OnFence reports a fencing (for the event stream).
	OnFence func(ctx context.Context, f FenceReport)
	Logger  *slog.Logger
}

// Hub follows the pr/ keys of the cluster and owns one Store per open
// disk.
type Hub struct {
	opts   Options
	log    *slog.Logger
	prefix string // full key prefix of pr/ keys

	mu     sync.Mutex
	stores map[string]*Store
	// fenced remembers the client addresses this hub put in the
	// blocklist, and when, so that every change while a gateway is down
	// does not fence it again.
	fenced map[string]time.Time

	// serving maps each disk to the gateways serving it (the targets
	// that map it), from the newest configuration; nil before SetConfig.
	serving atomic.Pointer[map[string][]string]
}

// NewHub returns a hub; Run follows etcd.
func NewHub(opts Options) *Hub {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = DefaultAckTimeout
	}
	if opts.FenceTimeout <= 0 {
		opts.FenceTimeout = DefaultFenceTimeout
	}
	return &Hub{
		opts:   opts,
		log:    opts.Logger.With("component", "prstore"),
		prefix: opts.Store.Prefix() + string(cluster.PRKey("")),
		stores: make(map[string]*Store),
		fenced: make(map[string]time.Time),
	}
}

// SetConfig tells the hub which gateways serve each disk: those of the
// targets that map it. A change waits for them, whether they are live or
// not. Before the first SetConfig it waits for the live gateways.
func (h *Hub) SetConfig(s *cluster.Snapshot) {
	m := map[string][]string{}
	for iqn, luns := range s.LUNs {
		gws := s.Targets[iqn].Gateways
		for _, l := range luns {
			for _, g := range gws {
				if !slices.Contains(m[l.Disk], g) {
					m[l.Disk] = append(m[l.Disk], g)
				}
			}
		}
	}
	h.serving.Store(&m)
}

// others returns the gateways other than this one that serve disk, or
// nil when the configuration is not known yet.
func (h *Hub) others(disk string) ([]string, bool) {
	m := h.serving.Load()
	if m == nil {
		return nil, false
	}
	return slices.DeleteFunc(slices.Clone((*m)[disk]), func(g string) bool { return g == h.opts.Gateway }), true
}

// Open returns the store of disk, loading its state from etcd. Opening a
// disk again returns the same store.
func (h *Hub) Open(ctx context.Context, disk string) (*Store, error) {
	if err := cluster.ValidateDiskID(disk); err != nil {
		return nil, err
	}
	h.mu.Lock()
	s := h.stores[disk]
	if s == nil {
		// Registered before the read so that no watch event between the
		// read and the registration is lost: observe keeps the newest.
		s = &Store{hub: h, disk: disk}
		initial, _ := decode(nil)
		s.cur.Store(&snapshot{rev: -1, rec: initial})
		h.stores[disk] = s
	}
	h.mu.Unlock()
	if _, err := s.reload(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Retain forgets the stores of disks not in keep (disks no longer served).
func (h *Hub) Retain(keep map[string]bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for d := range h.stores {
		if !keep[d] {
			delete(h.stores, d)
		}
	}
}

func (h *Hub) store(disk string) *Store {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stores[disk]
}

func (h *Hub) all() []*Store {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*Store, 0, len(h.stores))
	for _, s := range h.stores {
		out = append(out, s)
	}
	return out
}

func (h *Hub) peerReset(disk string) {
	h.log.Info("logical unit reset by another gateway", "disk", disk)
	if h.opts.OnPeerReset != nil {
		h.opts.OnPeerReset(disk)
	}
}

func (h *Hub) peerChange(disk string, ch change) {
	h.log.Info("reservation change by another gateway", "disk", disk, "by", ch.By, "seq", ch.Seq,
		"unit_attentions", len(ch.Effects.UAs), "aborted_nexuses", len(ch.Effects.AbortNexuses))
	if h.opts.OnPeerChange != nil {
		h.opts.OnPeerChange(disk, ch.Effects)
	}
}

// waitApplied waits until every other gateway serving disk has applied
// rev. Those that do not confirm within the acknowledgement timeout (and
// those that are not live at all) are fenced when strict, and reported
// otherwise. A strict wait that leaves a gateway neither confirmed nor
// fenced returns an error wrapping ErrNotConfirmed.
func (h *Hub) waitApplied(ctx context.Context, disk string, rev int64, strict bool) error {
	actx, cancel := ackContext(ctx, h.opts.AckTimeout)
	defer cancel()
	recs, _, err := h.opts.Peers.Records(actx)
	if err != nil {
		if !strict {
			h.log.Warn("shared state change not confirmed by every gateway", "disk", disk, "rev", rev, "err", err)
			return nil
		}
		return fmt.Errorf("%w: disk %s revision %d: %v", ErrNotConfirmed, disk, rev, err)
	}
	names, known := h.others(disk)
	if !known {
		for name := range recs {
			if name != h.opts.Gateway {
				names = append(names, name)
			}
		}
	}
	// Gateways that are not live cannot confirm anything: they are fenced
	// at once instead of after the timeout.
	var gone, wait []string
	for _, g := range names {
		if _, live := recs[g]; live {
			wait = append(wait, g)
		} else {
			gone = append(gone, g)
		}
	}
	behind := gone
	var na *peer.NotAppliedError
	if err := h.opts.Peers.WaitApplied(actx, rev, wait); errors.As(err, &na) {
		behind = append(behind, na.Behind...)
	} else if err != nil {
		behind = append(behind, wait...)
	}
	if len(behind) == 0 {
		return nil
	}
	if !strict {
		h.log.Warn("shared state change not confirmed by every gateway", "disk", disk, "rev", rev, "behind", behind)
		return nil
	}
	return h.fenceBehind(ctx, disk, rev, behind)
}

// Run follows the pr/ keys until ctx ends: it applies every change to the
// open stores and publishes the revision it has applied. It survives
// compaction (reload) and lost connections (the watch resumes);
// etcdwatch.Run is the loop.
func (h *Hub) Run(ctx context.Context) {
	_ = etcdwatch.Run(ctx, h.opts.Client, 0, etcdwatch.Options{
		Prefix: h.prefix,
		Load:   h.reloadAll,
		Apply:  h.applyBatch,
		Logger: h.log,
		Name:   "reservation state",
	})
}

// reloadAll applies the current value of every pr/ key and returns the
// revision read.
func (h *Hub) reloadAll(ctx context.Context) (int64, error) {
	resp, err := h.opts.Client.Get(ctx, h.prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, err
	}
	seen := map[string]bool{}
	for _, kv := range resp.Kvs {
		disk := strings.TrimPrefix(string(kv.Key), h.prefix)
		seen[disk] = true
		h.apply(disk, kv.ModRevision, kv.Value)
	}
	// A key deleted while the watch was down (the disk was deleted and
	// maybe re-created) is not in the listing.
	for _, s := range h.all() {
		if !seen[s.disk] {
			s.deleted()
		}
	}
	h.confirm(ctx, resp.Header.Revision)
	return resp.Header.Revision, nil
}

// applyBatch applies one watch response and confirms its revision.
func (h *Hub) applyBatch(ctx context.Context, b etcdwatch.Batch) error {
	for _, ev := range b.Events {
		disk := strings.TrimPrefix(string(ev.Kv.Key), h.prefix)
		if ev.Type == mvccpb.DELETE {
			if s := h.store(disk); s != nil {
				s.deleted()
			}
		} else {
			h.apply(disk, ev.Kv.ModRevision, ev.Kv.Value)
		}
	}
	h.confirm(ctx, b.Rev)
	return nil
}

// apply hands one stored value to the disk's store, if the disk is open.
func (h *Hub) apply(disk string, rev int64, value []byte) {
	s := h.store(disk)
	if s == nil {
		return
	}
	rec, err := decode(value)
	if err != nil {
		h.log.Error("undecodable reservation state left unapplied", "disk", disk, "err", err)
		return
	}
	s.observe(rev, rec, true)
}

// confirm publishes that everything up to rev is applied. Bounded: when
// etcd just went away, the next confirmation carries the revision.
func (h *Hub) confirm(ctx context.Context, rev int64) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := h.opts.Peers.SetApplied(ctx, rev); err != nil {
		h.log.Warn("cannot confirm applied reservation state", "rev", rev, "err", err)
	}
}
