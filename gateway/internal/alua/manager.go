package alua

import (
	"context"
	"errors"
	"log/slog"
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
	// DefaultStallTimeout is how long a write may wait for the exclusive
	// lock held by another client before that client is fenced. Handing
	// the lock over between live gateways takes milliseconds.
	DefaultStallTimeout = 3 * time.Second
	// claimTimeout bounds one takeover's etcd and Ceph calls.
	claimTimeout = 30 * time.Second
)

// Claimer records ownership; *cluster.Store implements it.
type Claimer interface {
	ClaimOwner(ctx context.Context, disk, gateway string, expectedEpoch uint64) (cluster.Owner, error)
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
	// Fenced reports that this client was blocklisted and is being
	// replaced.
	Fenced() bool
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
	images    map[string]LockedImage
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
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
				m.startLocked(disk, 0, true, false, "disk has no owner")
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
			m.startLocked(disk, rec.Epoch, true, false, "owner "+rec.Gateway+" is gone")
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
func (m *Manager) startLocked(disk string, epoch uint64, claim, force bool, why string) {
	if m.busy[disk] || m.ctx.Err() != nil {
		return
	}
	m.busy[disk] = true
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.takeover(disk, epoch, claim, force, why)
		m.mu.Lock()
		delete(m.busy, disk)
		delete(m.goneSince, disk)
		m.mu.Unlock()
	}()
}

// takeover makes this gateway the owner of disk: it claims the disk in
// etcd at epoch (when claim is set) and fences the clients that still hold
// the image's lock and must not write any more: those of gateways that
// are gone, or (force) every other client. The port group reports
// Transitioning meanwhile.
func (m *Manager) takeover(disk string, epoch uint64, claim, force bool, why string) {
	start := time.Now()
	m.opts.Provider.setTransitioning(disk, true)
	defer m.opts.Provider.setTransitioning(disk, false)
	ctx, cancel := context.WithTimeout(m.ctx, claimTimeout)
	defer cancel()
	m.mu.Lock()
	var from string
	if m.snap != nil {
		from = m.snap.Owners[disk].Gateway
	}
	m.mu.Unlock()
	if claim {
		o, err := m.opts.Store.ClaimOwner(ctx, disk, m.opts.Gateway, epoch)
		switch {
		case errors.Is(err, cluster.ErrConflict):
			m.log.Debug("another gateway claimed the disk first", "disk", disk)
			m.opts.Metrics.Takeover(disk, "conflict")
			return
		case err != nil:
			m.log.Warn("cannot claim disk", "disk", disk, "reason", why, "err", err)
			m.opts.Metrics.Takeover(disk, "failed")
			return
		}
		epoch = o.Epoch
		m.opts.Metrics.Takeover(disk, "claimed")
	}
	fenced, err := m.fence(ctx, disk, force)
	if len(fenced) > 0 || err != nil {
		m.opts.Metrics.Fenced(disk, len(fenced), err != nil)
	}
	if err != nil {
		m.log.Error("cannot fence the previous holder of the disk's lock", "disk", disk, "err", err)
	}
	if len(fenced) > 0 && m.opts.OnFence != nil {
		m.opts.OnFence(ctx, FenceReport{Disk: disk, From: from, Epoch: epoch, Clients: fenced, Reason: why, Err: err})
	}
	m.log.Info("disk taken over", "disk", disk, "reason", why, "epoch", epoch,
		"fenced", fenced, "took", time.Since(start).Round(time.Millisecond))
}

// fence breaks (and blocklists) the exclusive lock of every holder of
// disk's image that is not this gateway's client and, unless force, not
// the client of a live gateway either. It returns the fenced addresses.
func (m *Manager) fence(ctx context.Context, disk string, force bool) ([]string, error) {
	m.mu.Lock()
	img := m.images[disk]
	m.mu.Unlock()
	if img == nil || m.opts.Client == nil {
		return nil, nil // not open here: nothing to fence through
	}
	holders, err := img.LockOwners()
	if err != nil {
		return nil, err
	}
	self := m.opts.Client.ClientAddr()
	live := map[string]bool{}
	if !force && len(holders) > 0 {
		clients, err := m.opts.LiveClients(ctx)
		if err != nil {
			return nil, err
		}
		for gw, addr := range clients {
			if gw != m.opts.Gateway && addr != "" {
				live[addr] = true
			}
		}
	}
	var fenced []string
	var errs []error
	for _, h := range holders {
		if h == self || live[h] {
			continue
		}
		if err := img.BreakLock(h); err != nil {
			errs = append(errs, err)
			continue
		}
		fenced = append(fenced, h)
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

// stalled is called when a write on disk has waited StallTimeout: if
// another client holds the lock, it has not handed it over, so it is
// fenced and this gateway takes the disk.
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
	blocked := false
	for _, h := range holders {
		blocked = blocked || h != self
	}
	if !blocked {
		return // slow storage, not a lock that is not handed over
	}
	m.opts.Metrics.WriteStalled(disk)
	m.log.Warn("write blocked by a lock holder that does not hand the lock over; fencing it",
		"disk", disk, "holders", holders, "waited", m.opts.StallTimeout)
	m.mu.Lock()
	m.startLocked(disk, rec.Epoch, rec.Gateway != m.opts.Gateway, true, "write blocked by the lock holder")
	m.mu.Unlock()
}
