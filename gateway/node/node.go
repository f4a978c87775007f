package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/config"
	"github.com/rbdgw/rbdgw/gateway/internal/alua"
	"github.com/rbdgw/rbdgw/gateway/internal/iscsi"
	"github.com/rbdgw/rbdgw/gateway/internal/listen"
	"github.com/rbdgw/rbdgw/gateway/internal/peer"
	"github.com/rbdgw/rbdgw/gateway/internal/prstore"
	"github.com/rbdgw/rbdgw/gateway/internal/reconcile"
	"github.com/rbdgw/rbdgw/gateway/internal/scsi/pr"
	"github.com/rbdgw/rbdgw/gateway/metrics"
	"github.com/rbdgw/rbdgw/rbdbackend"
)

// Node is one gateway of a cluster: its configuration, ALUA ownership and
// reservations come from etcd, and it publishes its status there.
//
// Run owns the node's state; the accessors (Store, Client, Ready,
// Status) are safe for concurrent use from any goroutine.
type Node struct {
	opts Options
	// etcdCfg is how the node dials etcd, checked by New.
	etcdCfg cluster.ClientConfig
	log     *slog.Logger
	// storeLog is the logger without the gateway attribute, which the
	// cluster store adds to its own messages where it matters.
	storeLog *slog.Logger
	started  time.Time
	running  atomic.Bool

	// Set by Run before ready is closed.
	ready chan struct{}
	cli   atomic.Pointer[clientv3.Client]
	store atomic.Pointer[cluster.Store]

	// state is what Run has made of the cluster so far, for Status and
	// the status record; Run replaces it, nobody modifies it.
	state atomic.Pointer[state]
	// portals are the SendTargets portals of each target, from the newest
	// applied snapshot; Run replaces the map, the iSCSI server reads it.
	portals atomic.Pointer[map[string][]string]
	// kick wakes the status publisher after a change.
	kick chan struct{}
	// lease is the liveness lease of the current registration (0 before
	// the first), which the counters' record is bound to.
	lease atomic.Int64
	// metrics counts the gateway's commands, sessions and ownership
	// events (GET /metrics).
	metrics *metrics.Registry

	// Owned by Run's goroutine. The components are created once, before
	// the goroutines that use them (iSCSI connections, the manager, the
	// hub) start.
	embedded  *embeddedEtcd
	peers     *peer.Directory
	hub       *prstore.Hub
	provider  *alua.Provider
	manager   *alua.Manager
	server    *iscsi.Server
	recon     *reconcile.Reconciler
	listeners *listen.Portals
	reg       *cluster.Registration
	// applied is the newest snapshot applied; incomplete is set when a
	// part of it could not be applied (an image that did not open, a
	// portal that did not open), so that it is retried.
	applied    *cluster.Snapshot
	incomplete bool
	// ceph is the gateway's Ceph client; adm says whether the gateway may
	// serve through it (admission.go); fencedCh carries the client's
	// report that it was blocklisted to Run.
	ceph     CephClient
	adm      admission
	fencedCh chan struct{}
}

// retryEvery is how often a configuration that was not applied completely
// is applied again.
const retryEvery = 5 * time.Second

// New checks opts and returns a node; Run starts it.
func New(opts Options) (*Node, error) {
	if opts.Backends == nil {
		return nil, errors.New("node: no Backends")
	}
	opts.Endpoints = slices.DeleteFunc(slices.Clone(opts.Endpoints), func(e string) bool { return e == "" })
	if len(opts.Endpoints) == 0 {
		opts.Endpoints = []string{DefaultEndpoint}
	}
	if opts.EmbeddedDir != "" && len(opts.Endpoints) != 1 {
		return nil, errors.New("node: the embedded etcd server serves one address: give at most one endpoint")
	}
	if opts.EmbeddedPeer == "" {
		opts.EmbeddedPeer = DefaultEmbeddedPeer
	}
	etcdCfg, err := etcdClientConfig(opts)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if opts.Prefix == "" {
		opts.Prefix = cluster.DefaultPrefix
	}
	if opts.Gateway == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("node: no gateway name and no host name: %w", err)
		}
		opts.Gateway = host
	}
	if err := cluster.ValidateGatewayName(opts.Gateway); err != nil {
		return nil, fmt.Errorf("node: gateway name: %w", err)
	}
	if opts.LeaseTTL == 0 {
		opts.LeaseTTL = DefaultLeaseTTL
	}
	if opts.LeaseTTL < MinLeaseTTL {
		return nil, fmt.Errorf("node: lease TTL %v is below %v", opts.LeaseTTL, MinLeaseTTL)
	}
	if opts.StallTimeout <= 0 {
		opts.StallTimeout = DefaultStallTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	n := &Node{
		opts:     opts,
		etcdCfg:  etcdCfg,
		log:      opts.Logger.With("gateway", opts.Gateway),
		storeLog: opts.Logger,
		started:  time.Now().UTC(),
		ready:    make(chan struct{}),
		kick:     make(chan struct{}, 1),
		fencedCh: make(chan struct{}, 1),
		metrics:  metrics.NewRegistry(metrics.Options{Gateway: opts.Gateway, Version: opts.Version}),
	}
	n.state.Store(&state{})
	empty := map[string][]string{}
	n.portals.Store(&empty)
	return n, nil
}

// Name is this gateway's name.
func (n *Node) Name() string { return n.opts.Gateway }

// Metrics are the gateway's counters; they count from Run on.
func (n *Node) Metrics() *metrics.Registry { return n.metrics }

// Ready is closed once Run has connected to etcd and read the cluster
// (the embedded server, when asked for, is running then). Store and Client
// are set from then on. It stays open when Run fails before.
func (n *Node) Ready() <-chan struct{} { return n.ready }

// Store is the cluster configuration store; nil until Ready is closed.
func (n *Node) Store() *cluster.Store { return n.store.Load() }

// Client is the node's etcd client, for keys of the API's own; nil until
// Ready is closed. Run closes it when it returns.
func (n *Node) Client() *clientv3.Client { return n.cli.Load() }

// Run connects to etcd (starting the embedded server first when asked),
// waits until this gateway is defined, registers it, applies the
// configuration and every change to it, and publishes the gateway's
// status, until ctx ends; then it logs the initiators out, leaves the
// cluster and returns. A node runs once.
func (n *Node) Run(ctx context.Context) error {
	if !n.running.CompareAndSwap(false, true) {
		return errors.New("node: Run called twice")
	}
	if err := n.connectEtcd(); err != nil {
		return err
	}
	defer n.closeEtcd()
	store := n.store.Load()

	// A gateway opens the cluster to write: it brings records of an older
	// schema up to its own before anything reads them for a change. A
	// failure is not fatal: the records are still read as their schema
	// means them, and every writer migrates with its first commit (a newer
	// schema fails the load below).
	switch from, err := store.Migrate(ctx); {
	case err != nil:
		n.log.Error("cluster schema not migrated", "schema", from, "want", cluster.SchemaVersion, "err", err)
	case from != 0 && from < cluster.SchemaVersion:
		n.log.Info("cluster schema migrated", "from", from, "to", cluster.SchemaVersion)
	}

	// Watch from the revision loaded, so nothing between the two is lost.
	snap, _, err := store.Load(ctx)
	if err != nil {
		return err
	}
	close(n.ready)
	changes := store.Watch(ctx, snap.Rev)

	// The status publisher runs as long as the node; before the first
	// registration the record is only kept for it.
	bg, cancelBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancelBG(); wg.Wait() }()
	wg.Add(1)
	go func() { defer wg.Done(); n.publishStatus(bg) }()

	for snap.Gateways[n.opts.Gateway].Name == "" {
		n.log.Warn("this gateway is not defined in the cluster yet; waiting (rbdgw-admin gateway put)")
		ch, ok := <-changes
		if !ok {
			return nil // ctx ended
		}
		snap = ch.Snapshot
	}
	gw := snap.Gateways[n.opts.Gateway]

	ceph, err := n.opts.Backends.Ceph()
	if err != nil {
		return err
	}
	n.ceph = ceph
	// Kept until Publish (inside register) writes the record.
	_ = n.peers.SetClient(ctx, ceph.ClientAddr())
	if err := n.register(ctx, 2*n.opts.LeaseTTL+10*time.Second); err != nil {
		return err
	}
	n.provider = alua.NewProvider(gw.Name, gw.TPGID, n.log)
	n.manager = alua.NewManager(alua.ManagerOptions{
		Store:        store,
		Gateway:      gw.Name,
		Provider:     n.provider,
		Client:       fencingClient{ceph, n},
		LiveClients:  n.liveClients,
		StallTimeout: n.opts.StallTimeout,
		Logger:       n.log,
		Metrics:      n.metrics,
		OnFence:      n.recordFence,
	})
	n.hub = prstore.NewHub(prstore.Options{
		Store:       store,
		Client:      n.cli.Load(),
		Peers:       n.peers,
		Gateway:     gw.Name,
		OnPeerReset: n.provider.PeerReset,
		// A reservation change is enforced everywhere before it
		// completes: applied with its effects, or its laggards fenced.
		OnPeerChange: n.provider.PeerReservation,
		Fence:        n.fenceForReservation,
		OnFence:      n.recordReservationFence,
		Logger:       n.log,
	})
	n.provider.SetResetter(n.resetDisk)
	n.provider.SetMetrics(n.metrics)
	// A blocklisted client is replaced only once etcd has told this
	// gateway what changed (catchUp).
	ceph.OnFenced(n.noteFenced)
	n.server = iscsi.NewServer(iscsi.Options{Logger: n.log, Tuning: snap.Settings.Tuning, Metrics: n.metrics})
	n.listeners = listen.New(n.log, n.server)
	n.recon = reconcile.New(reconcile.Options{
		Server:         n.server,
		Open:           n.open,
		Logger:         n.log,
		Revision:       inquiryRevision(n.opts.Version),
		ALUA:           n.provider,
		PortGroupID:    gw.TPGID,
		RelativePortID: gw.TPGID,
		PRStore:        n.prStore,
		TargetPortals:  n.targetPortals,
		Metrics:        n.metrics,
	})
	n.setState(func(s *state) { s.server, s.provider = n.server, n.provider })

	wg.Add(3)
	go func() { defer wg.Done(); n.hub.Run(bg) }()
	go func() { defer wg.Done(); n.manager.Run(bg) }()
	go func() { defer wg.Done(); n.publishStats(bg) }()

	n.apply(snap)
	n.log.Info("rbdgw running in cluster mode", "version", n.opts.Version, "tpg", gw.TPGID,
		"portals", gw.Portals, "ceph_client", ceph.ClientAddr())

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastTry := time.Now()
	lost := n.reg.Done()
	for {
		select {
		case ch, ok := <-changes:
			if !ok {
				changes = nil
				continue
			}
			n.log.Debug("configuration changed", "change", ch.String())
			n.apply(ch.Snapshot)
		case <-lost:
			n.setState(func(s *state) { s.leaseHeld = false })
			lost = n.reregister(ctx)
		case <-n.fencedCh:
			n.adm = n.adm.next(evFenced)
		case <-tick.C:
			// The client address changes when Ceph fenced this gateway and
			// the client was replaced. Bounded: etcd may be unreachable.
			tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := n.peers.SetClient(tctx, ceph.ClientAddr()); err != nil {
				n.log.Warn("cannot publish the Ceph client address", "err", err)
			}
			cancel()
			if n.incomplete && time.Since(lastTry) >= retryEvery {
				lastTry = time.Now()
				n.log.Info("applying the configuration again", "rev", n.applied.Rev)
				n.apply(n.applied)
			}
		case <-ctx.Done():
			n.log.Info("stopping")
			return n.shutdown()
		}
		n.catchUp(ctx)
	}
}

// connectEtcd starts the embedded server when asked and dials etcd.
func (n *Node) connectEtcd() error {
	if n.opts.EmbeddedDir != "" {
		e, err := startEmbeddedEtcd(n.log, n.opts.EmbeddedDir, n.etcdCfg.Endpoints[0], n.opts.EmbeddedPeer,
			embeddedTLS{cert: n.opts.EmbeddedCert, key: n.opts.EmbeddedKey, clientCA: n.opts.EmbeddedClientCA})
		if err != nil {
			return err
		}
		n.embedded = e
	}
	// cluster.Dial caps the reconnect backoff so a gateway returns soon
	// after etcd does.
	cli, err := cluster.Dial(n.etcdCfg)
	if err != nil {
		return err
	}
	n.cli.Store(cli)
	store, err := cluster.New(cli, cluster.Options{Prefix: n.opts.Prefix, Logger: n.storeLog, SecretKey: n.opts.SecretKey})
	if err != nil {
		return err
	}
	n.store.Store(store)
	n.peers = peer.New(cli, store.Prefix(), n.opts.Gateway, n.log)
	return nil
}

func (n *Node) closeEtcd() {
	if cli := n.cli.Load(); cli != nil {
		cli.Close()
	}
	if n.embedded != nil {
		n.embedded.close()
	}
}

// register makes this gateway live and publishes its record, waiting at
// most timeout (a previous run's key must expire first).
func (n *Node) register(ctx context.Context, timeout time.Duration) error {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	reg, err := n.store.Load().Register(rctx, n.opts.Gateway, n.opts.LeaseTTL)
	if err != nil {
		return fmt.Errorf("register %s: %w", n.opts.Gateway, err)
	}
	// Whoever finds this gateway gone fences the client recorded here,
	// so it is recorded before the gateway serves through it.
	if err := n.store.Load().RecordClient(rctx, n.opts.Gateway, n.ceph.ClientAddr(), reg.Lease()); err != nil {
		_ = reg.Close(context.WithoutCancel(rctx))
		return err
	}
	if err := n.peers.Publish(rctx, reg.Lease()); err != nil {
		n.log.Warn("cannot publish this gateway's record", "err", err)
	}
	n.reg = reg
	n.lease.Store(int64(reg.Lease()))
	n.setState(func(s *state) { s.leaseHeld = true })
	return nil
}

// reregister replaces a lost registration (the lease could not be kept
// alive for its TTL). While etcd cannot be reached the gateway keeps
// serving: nobody can take a disk over without etcd, and a takeover
// blocklists this gateway's client first, which stops it (noteFenced).
// Once etcd answers, a lease it still holds (etcd extends leases when it
// restarts) is kept: nobody can have seen the gateway gone. A lease that
// ended means peers may have taken its disks over: the gateway admits no
// command until it has registered again and re-read owners/ and pr/
// (catchUp). It returns the new registration's Done channel, or nil when
// ctx ended.
func (n *Node) reregister(ctx context.Context) <-chan struct{} {
	old := n.reg
	n.log.Warn("liveness lease lost; registering again")
	// Short attempts: while etcd is down each one fails at its deadline,
	// and the first after etcd is back succeeds.
	const attempt = 2 * time.Second
	for ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, attempt)
		reg, err := n.store.Load().Resume(cctx, n.opts.Gateway, old.Lease())
		cancel()
		if err == nil {
			n.reg = reg
			n.setState(func(s *state) { s.leaseHeld = true })
			n.log.Info("registered again", "lease", "kept")
			return reg.Done()
		}
		if errors.Is(err, cluster.ErrLeaseGone) {
			if !n.adm.leaseGone {
				n.adm = n.adm.next(evLeaseGone)
				n.provider.Suspend(true)
				n.log.Warn("liveness lease ended: other gateways may have taken this one's disks over; " +
					"admitting no command until registered again and caught up")
			}
			if err = n.register(ctx, attempt); err == nil {
				n.adm = n.adm.next(evRegistered)
				n.log.Info("registered again", "lease", "new")
				return n.reg.Done()
			}
		}
		n.log.Debug("registration failed; retrying", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

// noteFenced is told by the Ceph client, on an I/O path, that it was
// blocklisted: the gateway stops admitting commands at once, and Run
// catches up.
func (n *Node) noteFenced(string) {
	n.provider.Suspend(true)
	select {
	case n.fencedCh <- struct{}{}:
	default:
	}
}

// catchUp moves the admission towards serving as far as etcd allows:
// owners/ and pr/ read again, then a new Ceph client, recorded before it
// serves. It runs after every event of Run and at least once a second.
func (n *Node) catchUp(ctx context.Context) {
	if n.adm.needsReload() {
		gen := n.adm.gen
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		snap, _, err := n.store.Load().Load(lctx)
		if err == nil {
			err = n.hub.Resync(lctx)
		}
		cancel()
		if err != nil {
			n.log.Warn("cannot read ownership and reservations again; not serving yet", "err", err)
		} else {
			if n.applied == nil || snap.Rev > n.applied.Rev {
				n.apply(snap)
			}
			n.adm = n.adm.reloaded(gen)
			n.log.Info("ownership and reservations read again", "rev", snap.Rev)
		}
	}
	if n.adm.mayReconnect() {
		if err := n.replaceClient(ctx); err != nil {
			n.log.Warn("cannot replace the fenced Ceph client; retrying", "err", err)
		} else {
			n.adm = n.adm.next(evReplaced)
		}
	}
	n.provider.Suspend(!n.adm.admits() || n.ceph.Fenced())
}

// replaceClient connects a new Ceph client and records it before any
// command can reach it.
func (n *Node) replaceClient(ctx context.Context) error {
	if err := n.ceph.Reconnect(); err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addr := n.ceph.ClientAddr()
	if err := n.store.Load().RecordClient(rctx, n.opts.Gateway, addr, n.reg.Lease()); err != nil {
		return err
	}
	if err := n.peers.SetClient(rctx, addr); err != nil {
		n.log.Warn("cannot publish the Ceph client address", "err", err)
	}
	n.log.Info("serving through a new Ceph client", "ceph_client", addr)
	return nil
}

// fencingClient is the Ceph client the ownership manager fences through:
// fencing this gateway's own client (a write of its own timed out) stops
// the gateway like being fenced by another.
type fencingClient struct {
	CephClient
	n *Node
}

func (c fencingClient) Fence(addr string) error {
	err := c.CephClient.Fence(addr)
	if err == nil && addr == c.ClientAddr() {
		c.n.noteFenced(addr)
	}
	return err
}

// apply renders this gateway's configuration from s and applies it live.
func (n *Node) apply(s *cluster.Snapshot) {
	cfg, err := cluster.Render(s, n.opts.Gateway)
	if err != nil {
		n.log.Error("configuration not applied; keeping the running one", "rev", s.Rev, "err", err)
		n.setState(func(st *state) { st.applyErr = err.Error() })
		return
	}
	portals := targetPortals(s, n.opts.Gateway)
	n.portals.Store(&portals)
	n.provider.Update(s)
	n.manager.Update(s)
	keep := map[string]bool{}
	for _, disk := range cfg.Disks {
		keep[disk.Name] = true
	}
	n.hub.Retain(keep)
	n.hub.SetConfig(s)
	n.applied = s
	err = n.recon.Apply(cfg)
	// Portals open once their targets exist, so that the first initiator
	// to connect finds them.
	lerr := n.listeners.Apply(cfg.Portals)
	if lerr != nil {
		n.log.Error("portals not all applied", "err", lerr)
	}
	n.incomplete = err != nil || lerr != nil
	n.setState(func(st *state) { st.appliedSnapshot(s, cfg, errors.Join(err, lerr)) })
	if err != nil {
		n.log.Error("configuration applied with errors", "rev", s.Rev, "err", err)
		return
	}
	n.log.Info("configuration applied", "rev", s.Rev, "targets", len(cfg.Targets), "disks", len(cfg.Disks))
}

func (n *Node) targetPortals(iqn string) []string { return (*n.portals.Load())[iqn] }

// open opens a disk's image; an RBD image gets the ownership guard.
func (n *Node) open(disk config.Disk) (rbdbackend.Image, error) {
	img, err := n.opts.Backends.Open(disk)
	if err != nil {
		return nil, err
	}
	if li, ok := img.(alua.Image); ok {
		return n.manager.Wrap(disk.Name, li), nil
	}
	return img, nil
}

// prStore returns the shared reservation state of a disk.
func (n *Node) prStore(disk config.Disk) (pr.Store, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return n.hub.Open(ctx, disk.Name)
}

// resetDisk tells the other gateways about a logical unit reset here.
func (n *Node) resetDisk(ctx context.Context, disk string) error {
	s, err := n.hub.Open(ctx, disk)
	if err != nil {
		return err
	}
	return s.Reset(ctx)
}

// liveClients maps every live gateway to its Ceph client address.
func (n *Node) liveClients(ctx context.Context) (map[string]string, error) {
	recs, _, err := n.peers.Records(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(recs))
	for name, r := range recs {
		out[name] = r.Client
	}
	return out, nil
}

func (n *Node) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := n.server.Shutdown(ctx)
	n.manager.Close()
	n.recon.Close()
	n.opts.Backends.Close()
	// Leaving the cluster at once lets the other gateways take this one's
	// disks over after their grace period instead of after the lease TTL.
	// Bounded: when etcd is gone too the lease simply expires.
	if n.reg != nil {
		rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
		if rerr := n.reg.Close(rctx); rerr != nil {
			n.log.Warn("cannot revoke the liveness lease", "err", rerr)
		}
		rcancel()
		n.setState(func(s *state) { s.leaseHeld = false })
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("sessions did not end in time: %w", err)
	}
	return err
}

// inquiryRevision turns the version into the 4-character INQUIRY revision.
func inquiryRevision(v string) string {
	if len(v) > 4 {
		return v[:4]
	}
	return v
}
