package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rbdgw/rbdgw/gateway/internal/alua"
	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/config"
	"github.com/rbdgw/rbdgw/gateway/internal/iscsi"
	"github.com/rbdgw/rbdgw/gateway/internal/peer"
	"github.com/rbdgw/rbdgw/gateway/internal/prstore"
	"github.com/rbdgw/rbdgw/gateway/internal/reconcile"
	"github.com/rbdgw/rbdgw/gateway/internal/scsi/pr"
	"github.com/rbdgw/rbdgw/rbdbackend"
)

// clusterOptions are the command-line settings of cluster mode.
type clusterOptions struct {
	endpoints    []string
	prefix       string
	gateway      string
	embeddedDir  string
	embeddedPeer string
	leaseTTL     time.Duration
	stallTimeout time.Duration
	revision     string
}

// clusterDaemon is a gateway of a cluster: its configuration, ALUA
// ownership and reservations come from etcd.
type clusterDaemon struct {
	log *slog.Logger
	// storeLog is log without the gateway attribute, which the cluster
	// store adds to its own messages where it matters.
	storeLog *slog.Logger
	opts     clusterOptions
	backends *backends

	embedded  *embeddedEtcd
	cli       *clientv3.Client
	store     *cluster.Store
	peers     *peer.Directory
	hub       *prstore.Hub
	provider  *alua.Provider
	manager   *alua.Manager
	server    *iscsi.Server
	recon     *reconcile.Reconciler
	listeners *listeners

	// portals are the SendTargets portals of each target, from the newest
	// applied snapshot.
	portalsMu sync.Mutex
	portals   map[string][]string

	regMu sync.Mutex
	reg   *cluster.Registration

	// applied is the newest snapshot applied; incomplete is set when a
	// part of it could not be applied (an image that did not open), so
	// that it is retried.
	applied    *cluster.Snapshot
	incomplete bool
}

// retryEvery is how often a configuration that was not applied completely
// is applied again.
const retryEvery = 5 * time.Second

func (d *clusterDaemon) run() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := d.connectEtcd(); err != nil {
		return err
	}
	defer d.closeEtcd()

	// Watch from the revision loaded, so nothing between the two is lost.
	snap, _, err := d.store.Load(ctx)
	if err != nil {
		return err
	}
	changes := d.store.Watch(ctx, snap.Rev)
	for snap.Gateways[d.opts.gateway].Name == "" {
		d.log.Warn("this gateway is not defined in the cluster yet; waiting (rbdgw-admin gateway put)")
		ch, ok := <-changes
		if !ok {
			return ctx.Err()
		}
		snap = ch.Snapshot
	}
	gw := snap.Gateways[d.opts.gateway]

	ceph, err := d.backends.connect()
	if err != nil {
		return err
	}
	// Kept until Publish (inside register) writes the record.
	_ = d.peers.SetClient(ctx, ceph.ClientAddr())
	if err := d.register(ctx, 2*d.opts.leaseTTL+10*time.Second); err != nil {
		return err
	}
	d.provider = alua.NewProvider(gw.Name, gw.TPGID, d.log)
	d.manager = alua.NewManager(alua.ManagerOptions{
		Store:        d.store,
		Gateway:      gw.Name,
		Provider:     d.provider,
		Client:       ceph,
		LiveClients:  d.liveClients,
		StallTimeout: d.opts.stallTimeout,
		Logger:       d.log,
	})
	d.hub = prstore.NewHub(prstore.Options{
		Store:       d.store,
		Client:      d.cli,
		Peers:       d.peers,
		Gateway:     gw.Name,
		OnPeerReset: d.provider.PeerReset,
		Logger:      d.log,
	})
	d.provider.SetResetter(d.resetDisk)
	d.server = iscsi.NewServer(iscsi.Options{Logger: d.log, Tuning: snap.Settings.Tuning})
	d.listeners = newListeners(d.log, d.server)
	d.recon = reconcile.New(reconcile.Options{
		Server:         d.server,
		Open:           d.open,
		Logger:         d.log,
		Revision:       d.opts.revision,
		ALUA:           d.provider,
		PortGroupID:    gw.TPGID,
		RelativePortID: gw.TPGID,
		PRStore:        d.prStore,
		TargetPortals:  d.targetPortals,
	})

	var wg sync.WaitGroup
	bg, cancelBG := context.WithCancel(context.Background())
	wg.Add(2)
	go func() { defer wg.Done(); d.hub.Run(bg) }()
	go func() { defer wg.Done(); d.manager.Run(bg) }()

	d.apply(snap)
	d.log.Info("rbdgw running in cluster mode", "version", version, "tpg", gw.TPGID,
		"portals", gw.Portals, "ceph_client", ceph.ClientAddr())

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastTry := time.Now()
	lost := d.registration().Done()
	for {
		select {
		case ch, ok := <-changes:
			if !ok {
				changes = nil
				continue
			}
			d.log.Debug("configuration changed", "change", ch.String())
			d.apply(ch.Snapshot)
		case <-lost:
			lost = d.reregister(ctx)
		case <-tick.C:
			// The client address changes when Ceph fenced this gateway and
			// the client was replaced. Bounded: etcd may be unreachable.
			tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := d.peers.SetClient(tctx, ceph.ClientAddr()); err != nil {
				d.log.Warn("cannot publish the Ceph client address", "err", err)
			}
			cancel()
			if d.incomplete && time.Since(lastTry) >= retryEvery {
				lastTry = time.Now()
				d.log.Info("applying the configuration again", "rev", d.applied.Rev)
				d.apply(d.applied)
			}
		case <-ctx.Done():
			d.log.Info("stopping")
			err := d.shutdown()
			cancelBG()
			wg.Wait()
			return err
		}
	}
}

// connectEtcd starts the embedded server when asked and dials etcd.
func (d *clusterDaemon) connectEtcd() error {
	if d.opts.embeddedDir != "" {
		e, err := startEmbeddedEtcd(d.log, d.opts.embeddedDir, d.opts.endpoints[0], d.opts.embeddedPeer)
		if err != nil {
			return err
		}
		d.embedded = e
	}
	endpoints := make([]string, len(d.opts.endpoints))
	for i, e := range d.opts.endpoints {
		if !strings.Contains(e, "://") {
			e = "http://" + e
		}
		endpoints[i] = e
	}
	cli, err := dialEtcd(endpoints)
	if err != nil {
		return err
	}
	d.cli = cli
	d.store, err = cluster.New(cli, cluster.Options{Prefix: d.opts.prefix, Logger: d.storeLog})
	if err != nil {
		return err
	}
	d.peers = peer.New(cli, d.store.Prefix(), d.opts.gateway, d.log)
	return nil
}

func (d *clusterDaemon) closeEtcd() {
	if d.cli != nil {
		d.cli.Close()
	}
	if d.embedded != nil {
		d.embedded.close()
	}
}

// register makes this gateway live and publishes its record, waiting at
// most timeout (a previous run's key must expire first).
func (d *clusterDaemon) register(ctx context.Context, timeout time.Duration) error {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	reg, err := d.store.Register(rctx, d.opts.gateway, d.opts.leaseTTL)
	if err != nil {
		return fmt.Errorf("register %s: %w", d.opts.gateway, err)
	}
	if err := d.peers.Publish(rctx, reg.Lease()); err != nil {
		d.log.Warn("cannot publish this gateway's record", "err", err)
	}
	d.regMu.Lock()
	d.reg = reg
	d.regMu.Unlock()
	return nil
}

func (d *clusterDaemon) registration() *cluster.Registration {
	d.regMu.Lock()
	defer d.regMu.Unlock()
	return d.reg
}

// reregister replaces a lost registration (etcd was unreachable for
// longer than the lease). The gateway keeps serving meanwhile; peers wait
// a grace period before they take disks over, longer than this takes once
// etcd answers. It returns the new registration's Done channel, or nil
// when ctx ended.
func (d *clusterDaemon) reregister(ctx context.Context) <-chan struct{} {
	old := d.registration()
	d.log.Warn("liveness lease lost; registering again")
	// Short attempts: while etcd is down each one fails at its deadline,
	// and the first after etcd is back succeeds.
	const attempt = 2 * time.Second
	for ctx.Err() == nil {
		// Revoking the old lease removes its key at once instead of after
		// its TTL (etcd extends leases when it restarts); it fails
		// harmlessly when the lease is already gone.
		cctx, cancel := context.WithTimeout(ctx, attempt)
		err := old.Close(cctx)
		cancel()
		if err == nil {
			err = d.register(ctx, attempt)
		}
		if err != nil {
			d.log.Debug("registration failed; retrying", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		d.log.Info("registered again")
		return d.registration().Done()
	}
	return nil
}

// apply renders this gateway's configuration from s and applies it live.
func (d *clusterDaemon) apply(s *cluster.Snapshot) {
	cfg, err := cluster.Render(s, d.opts.gateway)
	if err != nil {
		d.log.Error("configuration not applied; keeping the running one", "rev", s.Rev, "err", err)
		return
	}
	d.portalsMu.Lock()
	d.portals = targetPortals(s, d.opts.gateway)
	d.portalsMu.Unlock()
	d.provider.Update(s)
	d.manager.Update(s)
	keep := map[string]bool{}
	for _, disk := range cfg.Disks {
		keep[disk.Name] = true
	}
	d.hub.Retain(keep)
	d.applied = s
	err = d.recon.Apply(cfg)
	d.incomplete = err != nil
	// Portals open once their targets exist, so that the first initiator
	// to connect finds them.
	if lerr := d.listeners.apply(cfg.Portals); lerr != nil {
		d.log.Error("portals not all applied", "err", lerr)
	}
	if err != nil {
		d.log.Error("configuration applied with errors", "rev", s.Rev, "err", err)
		return
	}
	d.log.Info("configuration applied", "rev", s.Rev, "targets", len(cfg.Targets), "disks", len(cfg.Disks))
}

// targetPortals lists, for every target, the portals of the gateways that
// serve it and are live (this one always), each tagged with its gateway's
// portal group tag, in port group order.
func targetPortals(s *cluster.Snapshot, self string) map[string][]string {
	out := map[string][]string{}
	for _, iqn := range s.TargetIQNs() {
		groups := s.PortGroups(iqn)
		slices.SortFunc(groups, func(a, b cluster.PortGroup) int { return cmp.Compare(a.TPGID, b.TPGID) })
		var portals []string
		for _, g := range groups {
			if _, live := s.Live[g.Gateway]; !live && g.Gateway != self {
				continue
			}
			for _, p := range g.Portals {
				portals = append(portals, p+","+strconv.Itoa(int(g.TPGID)))
			}
		}
		out[iqn] = portals
	}
	return out
}

func (d *clusterDaemon) targetPortals(iqn string) []string {
	d.portalsMu.Lock()
	defer d.portalsMu.Unlock()
	return d.portals[iqn]
}

// open opens a disk's image; an RBD image gets the ownership guard.
func (d *clusterDaemon) open(disk config.Disk) (rbdbackend.Image, error) {
	img, err := d.backends.open(disk)
	if err != nil {
		return nil, err
	}
	if li, ok := img.(alua.Image); ok {
		return d.manager.Wrap(disk.Name, li), nil
	}
	return img, nil
}

// prStore returns the shared reservation state of a disk.
func (d *clusterDaemon) prStore(disk config.Disk) (pr.Store, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return d.hub.Open(ctx, disk.Name)
}

// resetDisk tells the other gateways about a logical unit reset here.
func (d *clusterDaemon) resetDisk(ctx context.Context, disk string) error {
	s, err := d.hub.Open(ctx, disk)
	if err != nil {
		return err
	}
	return s.Reset(ctx)
}

// liveClients maps every live gateway to its Ceph client address.
func (d *clusterDaemon) liveClients(ctx context.Context) (map[string]string, error) {
	recs, _, err := d.peers.Records(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(recs))
	for name, r := range recs {
		out[name] = r.Client
	}
	return out, nil
}

func (d *clusterDaemon) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := d.server.Shutdown(ctx)
	d.manager.Close()
	d.recon.Close()
	d.backends.close()
	// Leaving the cluster at once lets the other gateways take this one's
	// disks over after their grace period instead of after the lease TTL.
	// Bounded: when etcd is gone too the lease simply expires.
	if reg := d.registration(); reg != nil {
		rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
		if rerr := reg.Close(rctx); rerr != nil {
			d.log.Warn("cannot revoke the liveness lease", "err", rerr)
		}
		rcancel()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("sessions did not end in time: %w", err)
	}
	return err
}

// exitOnError ends the process when the daemon failed.
func exitOnError(log *slog.Logger, err error) {
	if err != nil {
		log.Error("rbdgw stopped", "err", err)
		os.Exit(1)
	}
}

// clusterFlags are the raw command-line values of cluster mode.
type clusterFlags struct {
	etcd, gateway, prefix     string
	embeddedDir, embeddedPeer string
	leaseTTL, stallTimeout    time.Duration
}

// runClusterMode checks the flags and runs the cluster daemon.
func runClusterMode(log *slog.Logger, f clusterFlags, b *backends) error {
	opts := clusterOptions{
		prefix:       f.prefix,
		gateway:      f.gateway,
		embeddedDir:  f.embeddedDir,
		embeddedPeer: f.embeddedPeer,
		leaseTTL:     f.leaseTTL,
		stallTimeout: f.stallTimeout,
		revision:     revision(version),
	}
	for _, e := range strings.Split(f.etcd, ",") {
		if e = strings.TrimSpace(e); e != "" {
			opts.endpoints = append(opts.endpoints, e)
		}
	}
	if len(opts.endpoints) == 0 {
		opts.endpoints = []string{"127.0.0.1:2379"}
	}
	if opts.embeddedDir != "" && len(opts.endpoints) != 1 {
		return errors.New("-embedded-etcd serves one address: give at most one -etcd endpoint")
	}
	if opts.gateway == "" {
		host, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("-gateway not given and no host name: %w", err)
		}
		opts.gateway = host
	}
	if err := cluster.ValidateGatewayName(opts.gateway); err != nil {
		return fmt.Errorf("-gateway: %w", err)
	}
	if opts.leaseTTL < 2*time.Second {
		return errors.New("-lease-ttl must be at least 2s")
	}
	d := &clusterDaemon{log: log.With("gateway", opts.gateway), storeLog: log, opts: opts, backends: b}
	return d.run()
}
