package alua

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/metrics"
)

// Defaults of ManagerOptions.
const (
	// DefaultGrace is how long an owner must be gone (lease expired, or no
	// longer serving the disk's target) before another gateway takes its
	// disks over. It bridges the moment a gateway that lost its lease
	// while etcd was unreachable registers again.
	DefaultGrace = 2 * time.Second
	// DefaultStallTimeout is how long a write may wait before the manager
	// looks at who holds the exclusive lock: a holder that belongs to no
	// live gateway is fenced; a live one (slow storage, a handover in
	// progress) never is. Handing the lock over between live gateways
	// takes milliseconds.
	DefaultStallTimeout = 3 * time.Second
	// claimTimeout bounds one takeover's etcd and Ceph calls.
	claimTimeout = 30 * time.Second
)

// Claimer records ownership and knows the Ceph client each gateway
// serves through; *cluster.Store implements it.
type Claimer interface {
	Owners(ctx context.Context) (map[string]cluster.Owner, error)
	ClaimOwner(ctx context.Context, disk, gateway string, expectedEpoch uint64) (cluster.Owner, error)
	// GoneClient is the client address gateway recorded under a lease
	// that is no longer its live one ("" when it is live or recorded
	// none).
	GoneClient(ctx context.Context, gateway string) (string, error)
}

// LockedImage is the exclusive lock of a disk's image.
type LockedImage interface {
	// LockOwners lists the client addresses holding the lock.
	LockOwners() ([]string, error)
	// BreakLock fences owner (OSD blocklist) and breaks its lock.
	BreakLock(owner string) error
}

// Client is the gateway's Ceph client.
type Client interface {
	// ClientAddr is the address other gateways fence.
	ClientAddr() string
	// Fenced reports that this client was blocklisted and is not replaced
	// yet.
	Fenced() bool
	// Fence puts another client in the OSD blocklist, whether or not it
	// holds a lock.
	Fence(addr string) error
}

// ManagerOptions configure a Manager.
type ManagerOptions struct {
	Store    Claimer
	Gateway  string
	Provider *Provider
	Client   Client
	// LiveClients returns the Ceph client address of every live gateway,
	// by name (package peer).
	LiveClients  func(ctx context.Context) (map[string]string, error)
	Grace        time.Duration
	StallTimeout time.Duration
	Logger       *slog.Logger
	// Metrics, when set, counts takeovers, fencing and stalled writes.
	Metrics *metrics.Registry
	// OnFence, when set, is told of every takeover that fenced clients
	// (the node records it in etcd for the event stream).
	OnFence func(ctx context.Context, f FenceReport)
}

// Manager claims the disks the plan gives this gateway, takes over the
// disks of gateways that are gone, and fences lock holders that block
// writes. Update feeds it snapshots; Run re-evaluates the grace periods.
type Manager struct {
	opts ManagerOptions
	log  *slog.Logger

	mu   sync.Mutex
	snap *cluster.Snapshot
	// goneSince is when a disk planned for this gateway was first seen
	// without a live owner (or without any owner).
	goneSince map[string]time.Time
	busy      map[string]bool
	// selfFenced is this gateway's client address once timedOut fenced it.
	selfFenced string
	images     map[string]LockedImage
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

// NewManager returns a manager; it acts once Update delivers a snapshot.
func NewManager(opts ManagerOptions) *Manager {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	if opts.StallTimeout <= 0 {
		opts.StallTimeout = DefaultStallTimeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{
		opts:      opts,
		log:       opts.Logger.With("component", "ownership"),
		goneSince: map[string]time.Time{},
		busy:      map[string]bool{},
		images:    map[string]LockedImage{},
		ctx:       ctx,
		cancel:    cancel,
	}
}

// Update evaluates ownership against a new snapshot.
func (m *Manager) Update(s *cluster.Snapshot) {
	m.mu.Lock()
	m.snap = s
	m.mu.Unlock()
	m.evaluate(time.Now())
}

// Run re-evaluates periodically until ctx ends, then waits for takeovers
// in flight.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.opts.Grace / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			m.Close()
			return
		case now := <-t.C:
			m.evaluate(now)
		}
	}
}

// Close stops takeovers in flight and waits for them.
func (m *Manager) Close() {
	m.cancel()
	m.wg.Wait()
}

func (m *Manager) evaluate(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.snap == nil {
		return
	}
	self := m.opts.Gateway
	for disk, want := range Plan(m.snap) {
		rec, owned := m.snap.Owners[disk]
		if want != self || (owned && rec.Gateway == self) {
			delete(m.goneSince, disk)
			continue
		}
		if !owned {
			// Gateways starting together wait for each other (up to the
			// grace period) so that their disks are spread over all of
			// them rather than taken by the first one up.
			since, seen := m.goneSince[disk]
			if !seen {
				m.goneSince[disk], since = now, now
			}
			if allServingLive(m.snap, disk) || now.Sub(since) >= m.opts.Grace {
				m.startLocked(disk, 0, true, "disk has no owner")
			}
			continue
		}
		// The plan keeps a live owner; the disk is planned for this
		// gateway only because its owner is gone.
		since, seen := m.goneSince[disk]
		if !seen {
			m.goneSince[disk] = now
			continue
		}
		if now.Sub(since) >= m.opts.Grace {
			m.startLocked(disk, rec.Epoch, true, "owner "+rec.Gateway+" is gone")
		}
	}
}

// allServingLive reports whether every gateway serving disk's target is
// live.
func allServingLive(s *cluster.Snapshot, disk string) bool {
	l, ok := s.DiskMapping(disk)
	if !ok {
		return false
	}
	for _, g := range s.Targets[l.Target].Gateways {
		if _, live := s.Live[g]; !live {
			return false
		}
	}
	return true
}

// startLocked runs a takeover of disk in the background unless one is in
// flight. m.mu is held.
func (m *Manager) startLocked(disk string, epoch uint64, claim bool, why string) {
	if m.busy[disk] || m.ctx.Err() != nil {
		return
	}
	m.busy[disk] = true
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.takeover(disk, epoch, claim, why)
		m.mu.Lock()
		delete(m.busy, disk)
		delete(m.goneSince, disk)
		m.mu.Unlock()
	}()
}

// takeover makes this gateway the owner of disk (when claim is set, from
// owner epoch epoch): it first fences the previous owner unless that one
// is live, and every client holding the image's lock that belongs to no
// live gateway; only when all of that succeeded does it record the claim
// in etcd. The port group reports Transitioning meanwhile.
func (m *Manager) takeover(disk string, epoch uint64, claim bool, why string) {
	start := time.Now()
	m.opts.Provider.setTransitioning(disk, true)
	defer m.opts.Provider.setTransitioning(disk, false)
	ctx, cancel := context.WithTimeout(m.ctx, claimTimeout)
	defer cancel()
	// The owner as etcd has it now: a gateway with a stale view claims
	// nothing and fences nobody.
	owners, err := m.opts.Store.Owners(ctx)
	if err != nil {
		m.log.Warn("cannot read the owner of the disk", "disk", disk, "reason", why, "err", err)
		m.opts.Metrics.Takeover(disk, "failed")
		return
	}
	from := owners[disk].Gateway
	if claim && owners[disk].Epoch != epoch {
		m.log.Debug("another gateway claimed the disk first", "disk", disk)
		m.opts.Metrics.Takeover(disk, "conflict")
		return
	}
	fenced, err := m.fence(ctx, disk, from)
	if len(fenced) > 0 || err != nil {
		m.opts.Metrics.Fenced(disk, len(fenced), err != nil)
	}
	report := func(epoch uint64, err error) {
		if len(fenced) > 0 && m.opts.OnFence != nil {
			m.opts.OnFence(ctx, FenceReport{Disk: disk, From: from, Epoch: epoch, Clients: fenced, Reason: why, Err: err})
		}
	}
	if err != nil {
		// Recording the move now could let this gateway write beside a
		// previous owner that can still write; the next evaluation tries
		// again.
		m.log.Error("cannot fence the previous owner of the disk; not taking it over", "disk", disk,
			"from", from, "reason", why, "fenced", fenced, "err", err)
		if claim {
			m.opts.Metrics.Takeover(disk, "failed")
		}
		report(owners[disk].Epoch, err)
		return
	}
	if claim {
		o, err := m.opts.Store.ClaimOwner(ctx, disk, m.opts.Gateway, epoch)
		switch {
		case errors.Is(err, cluster.ErrConflict):
			m.log.Debug("another gateway claimed the disk first", "disk", disk)
			m.opts.Metrics.Takeover(disk, "conflict")
			report(epoch, nil)
			return
		case err != nil:
			m.log.Warn("cannot claim disk", "disk", disk, "reason", why, "err", err)
			m.opts.Metrics.Takeover(disk, "failed")
			report(epoch, nil)
			return
		}
		epoch = o.Epoch
		m.opts.Metrics.Takeover(disk, "claimed")
	}
	report(epoch, nil)
	m.log.Info("disk taken over", "disk", disk, "reason", why, "epoch", epoch,
		"fenced", fenced, "took", time.Since(start).Round(time.Millisecond))
}

// fence puts in the OSD blocklist the client the previous owner from
// recorded, unless from is live under the lease it recorded it with
// (whether or not that client holds the lock now: it may get it back),
// and breaks (blocklisting first) the lock of every holder that is
// neither this gateway's client nor a live gateway's. It returns the
// fenced addresses.
func (m *Manager) fence(ctx context.Context, disk, from string) ([]string, error) {
	if m.opts.Client == nil {
		return nil, nil
	}
	self := m.opts.Client.ClientAddr()
	clients, err := m.opts.LiveClients(ctx)
	if err != nil {
		return nil, err
	}
	live := map[string]bool{}
	for gw, addr := range clients {
		if gw != m.opts.Gateway && addr != "" {
			live[addr] = true
		}
	}
	var fenced []string
	if from != "" && from != m.opts.Gateway {
		addr, err := m.opts.Store.GoneClient(ctx, from)
		if err != nil {
			return nil, err
		}
		if addr != "" && addr != self && !live[addr] {
			if err := m.opts.Client.Fence(addr); err != nil {
				return nil, err
			}
			fenced = append(fenced, addr)
		}
	}
	m.mu.Lock()
	img := m.images[disk]
	m.mu.Unlock()
	if img == nil {
		return fenced, nil // not open here: no lock to break through
	}
	holders, err := img.LockOwners()
	if err != nil {
		return fenced, err
	}
	var errs []error
	for _, h := range holders {
		if h == self || live[h] {
			continue
		}
		if err := img.BreakLock(h); err != nil {
			errs = append(errs, err)
			continue
		}
		if !slices.Contains(fenced, h) {
			fenced = append(fenced, h)
		}
	}
	return fenced, errors.Join(errs...)
}

// register makes disk's image available for fencing.
func (m *Manager) register(disk string, img LockedImage) {
	m.mu.Lock()
	m.images[disk] = img
	m.mu.Unlock()
}

// unregister forgets disk's image if it is still img.
func (m *Manager) unregister(disk string, img LockedImage) {
	m.mu.Lock()
	if m.images[disk] == img {
		delete(m.images, disk)
	}
	m.mu.Unlock()
}

// stalled is called each StallTimeout a write on disk keeps waiting. How
// long a write takes is no evidence against anybody (a slow OSD makes every
// write slow): only a lock holder that belongs to no live gateway (its
// lease is gone: dead, or cut off from etcd) is fenced, and the disk taken
// over if its owner is gone too. A live holder hands the lock over once
// its own writes have completed; it is left alone.
func (m *Manager) stalled(disk string) {
	m.mu.Lock()
	img := m.images[disk]
	var rec cluster.Owner
	if m.snap != nil {
		rec = m.snap.Owners[disk]
	}
	m.mu.Unlock()
	if img == nil || m.opts.Client == nil {
		return
	}
	holders, err := img.LockOwners()
	if err != nil {
		m.log.Warn("write stalled; cannot read the lock holder", "disk", disk, "err", err)
		return
	}
	self := m.opts.Client.ClientAddr()
	holders = slices.DeleteFunc(holders, func(h string) bool { return h == self })
	if len(holders) == 0 {
		return // slow storage, not a lock that is not handed over
	}
	m.opts.Metrics.WriteStalled(disk)
	ctx, cancel := context.WithTimeout(m.ctx, claimTimeout)
	clients, err := m.opts.LiveClients(ctx)
	cancel()
	if err != nil {
		m.log.Warn("write stalled; cannot read which gateways are live", "disk", disk, "err", err)
		return
	}
	live := map[string]bool{}
	for _, addr := range clients {
		live[addr] = true
	}
	if !slices.ContainsFunc(holders, func(h string) bool { return !live[h] }) {
		m.log.Warn("write waits for the exclusive lock held by a live gateway; not fencing it",
			"disk", disk, "holders", holders, "waited", m.opts.StallTimeout)
		return
	}
	_, ownerLive := clients[rec.Gateway]
	m.log.Warn("write blocked by a lock holder of no live gateway; fencing it",
		"disk", disk, "holders", holders, "owner", rec.Gateway, "owner_live", ownerLive)
	m.mu.Lock()
	m.startLocked(disk, rec.Epoch, rec.Gateway != m.opts.Gateway && !ownerLive, "write blocked by the lock holder")
	m.mu.Unlock()
}

// timedOut fences this gateway's own client after a write on disk timed
// out: an OSD may still apply that write, and nothing but the blocklist
// keeps it from landing after the writes of the next lock holder. Every
// operation of the client fails from then on, and the node replaces it
// once etcd has told it what changed (see package node).
func (m *Manager) timedOut(disk string) {
	c := m.opts.Client
	if c == nil || c.Fenced() {
		return
	}
	addr := c.ClientAddr()
	m.mu.Lock()
	again := m.selfFenced == addr
	m.selfFenced = addr
	m.mu.Unlock()
	if again {
		return
	}
	m.log.Error("a write timed out; fencing this gateway's own Ceph client so that it cannot land later", "disk", disk, "client", addr)
	if err := c.Fence(addr); err != nil {
		m.log.Error("cannot fence this gateway's own Ceph client", "client", addr, "err", err)
		m.mu.Lock()
		m.selfFenced = ""
		m.mu.Unlock()
	}
}
