// Command rbdgw is the gateway daemon: a userspace iSCSI target whose LUNs
// are RBD images (or memory and file images). In standalone mode it is
// configured from a file (-config); in cluster mode (-etcd or
// -embedded-etcd) from etcd, together with the other gateways that present
// the same targets (see docs/cluster.md).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/config"
	"github.com/rbdgw/rbdgw/gateway/internal/etcdflags"
	"github.com/rbdgw/rbdgw/gateway/internal/iscsi"
	"github.com/rbdgw/rbdgw/gateway/internal/listen"
	"github.com/rbdgw/rbdgw/gateway/internal/reconcile"
	"github.com/rbdgw/rbdgw/gateway/node"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1"

func main() {
	var (
		configPath = flag.String("config", "/etc/rbdgw/gateway.yaml", "configuration file (YAML or JSON)")
		logLevel   = flag.String("log-level", "info", "log level: debug, info, warn, error")
		logFormat  = flag.String("log-format", "text", "log format: text or json")
		stateDir   = flag.String("state-dir", "", "directory for persistent reservations with APTPL and the recorded WWNs of disks without one (empty: reservations in memory, WWNs derived from disk names)")
		cephConf   = flag.String("ceph-conf", "", "ceph.conf for rbd disks (default: $CEPH_CONF or /etc/ceph/ceph.conf)")
		cephID     = flag.String("ceph-id", "admin", "Ceph client id for rbd disks")
		watchEvery = flag.Duration("watch-interval", 2*time.Second, "how often the configuration file is checked for changes (0: only on SIGHUP)")
		showVer    = flag.Bool("version", false, "print the version and exit")
		sysmonPoll = flag.Bool("sysmon-polling", true, "keep the Go runtime's monitor thread polling while the gateway is idle, instead of sleeping until a librbd call wakes it (re-executes the daemon once at start with GODEBUG="+sysmonSetting+"; docs/adr/0011)")

		etcdAddrs    = flag.String("etcd", "", "cluster mode: comma-separated etcd endpoints (host:port or URL)")
		gatewayName  = flag.String("gateway", "", "cluster mode: this gateway's name in the cluster (default: host name)")
		etcdPrefix   = flag.String("etcd-prefix", cluster.DefaultPrefix, "cluster mode: key prefix of the cluster in etcd")
		embeddedDir  = flag.String("embedded-etcd", "", "cluster mode: run a single-member etcd server inside the daemon with its data in this directory (serves -etcd, default 127.0.0.1:2379)")
		embeddedPeer = flag.String("embedded-etcd-peer", node.DefaultEmbeddedPeer, "cluster mode: peer address of the embedded etcd server")
		embeddedCert = flag.String("embedded-etcd-cert", "", "cluster mode: TLS certificate (PEM) of the embedded etcd server, which then serves https")
		embeddedKey  = flag.String("embedded-etcd-key", "", "cluster mode: key (PEM) of -embedded-etcd-cert")
		embeddedCA   = flag.String("embedded-etcd-client-ca", "", "cluster mode: CA (PEM) of the client certificates the embedded etcd server requires (client-certificate authentication)")
		leaseTTL     = flag.Duration("lease-ttl", node.DefaultLeaseTTL, "cluster mode: liveness lease; a gateway silent for this long is considered gone")
		stallTimeout = flag.Duration("lock-stall-timeout", node.DefaultStallTimeout, "cluster mode: how often a write waiting for the RBD lock looks at its holder; only a holder of no live gateway is fenced")

		apiAddr      = flag.String("api", "127.0.0.1:5000", "cluster mode: address of the REST API (\"off\": none); plain HTTP only on loopback, else give -api-cert and -api-key")
		apiCert      = flag.String("api-cert", "", "cluster mode: TLS certificate (PEM) of the REST API")
		apiKey       = flag.String("api-key", "", "cluster mode: TLS key (PEM) of the REST API")
		apiTokenFile = flag.String("api-token-file", "/etc/rbdgw/api-token", "cluster mode: where the first admin token is written (mode 0600) when this gateway bootstraps the cluster's tokens")
	)
	// -etcd-cacert, -etcd-cert, -etcd-key, -etcd-auth-file, -etcd-insecure,
	// -secret-key-file: shared with rbdgw-admin.
	var etcdSecurity etcdflags.Flags
	etcdSecurity.Register(flag.CommandLine, "cluster mode: ")
	flag.Parse()
	if *showVer {
		fmt.Println("rbdgw", version)
		return
	}
	var sysmonErr error
	if *sysmonPoll {
		sysmonErr = keepSysmonPolling() // returns only when it did not re-execute
	}
	log, err := newLogger(*logLevel, *logFormat)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rbdgw:", err)
		os.Exit(2)
	}
	if sysmonErr != nil {
		log.Warn("could not re-execute with the runtime's monitor thread polling; running without", "err", sysmonErr)
	}
	if err := startPprof(log); err != nil {
		fmt.Fprintln(os.Stderr, "rbdgw:", err)
		os.Exit(2)
	}
	if *etcdAddrs != "" || *embeddedDir != "" {
		exitOnError(log, runClusterMode(log, clusterFlags{
			etcd: *etcdAddrs, gateway: *gatewayName, prefix: *etcdPrefix,
			embeddedDir: *embeddedDir, embeddedPeer: *embeddedPeer,
			embeddedCert: *embeddedCert, embeddedKey: *embeddedKey, embeddedClientCA: *embeddedCA, etcdSecurity: etcdSecurity,
			leaseTTL: *leaseTTL, stallTimeout: *stallTimeout,
			api: apiFlags{addr: *apiAddr, cert: *apiCert, key: *apiKey, tokenFile: *apiTokenFile},
		}, newBackends(log, *cephConf, *cephID)))
		return
	}
	d := &daemon{
		log:        log,
		configPath: *configPath,
		stateDir:   *stateDir,
		watchEvery: *watchEvery,
		backends:   newBackends(log, *cephConf, *cephID),
	}
	if err := d.run(); err != nil {
		log.Error("rbdgw stopped", "err", err)
		os.Exit(1)
	}
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("-log-format %q: must be text or json", format)
}

type daemon struct {
	log        *slog.Logger
	configPath string
	stateDir   string
	watchEvery time.Duration
	backends   *backends

	server    *iscsi.Server
	recon     *reconcile.Reconciler
	listeners *listen.Portals
	applied   fileStamp
}

func (d *daemon) run() error {
	cfg, err := config.Load(d.configPath)
	if err != nil {
		return err
	}
	d.applied = stamp(d.configPath)
	reg, err := newStandaloneMetrics(d.log)
	if err != nil {
		return err
	}
	d.server = iscsi.NewServer(iscsi.Options{Logger: d.log, Tuning: cfg.Tuning, Metrics: reg})
	d.recon = reconcile.New(reconcile.Options{
		Server:   d.server,
		Open:     d.backends.Open,
		Logger:   d.log,
		StateDir: d.stateDir,
		Revision: revision(version),
		Metrics:  reg,
	})
	d.listeners = listen.New(d.log, d.server)
	// Targets exist before the portals open, so no initiator ever finds
	// the gateway without them.
	if err := d.recon.Apply(cfg); err != nil {
		d.log.Error("configuration applied with errors", "err", err)
	}
	if err := d.listeners.Apply(cfg.Portals); err != nil {
		return err
	}
	d.log.Info("rbdgw running", "version", version, "portals", cfg.Portals, "targets", len(cfg.Targets), "disks", len(cfg.Disks))

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	var tick <-chan time.Time
	if d.watchEvery > 0 {
		t := time.NewTicker(d.watchEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-hup:
			d.reload("SIGHUP")
		case <-tick:
			if s := stamp(d.configPath); s != d.applied {
				d.reload("file changed")
			}
		case sig := <-stop:
			d.log.Info("stopping", "signal", sig.String())
			return d.shutdown()
		}
	}
}

// reload reapplies the configuration file; a file that does not load or
// validate leaves the running configuration untouched.
func (d *daemon) reload(why string) {
	d.applied = stamp(d.configPath)
	cfg, err := config.Load(d.configPath)
	if err != nil {
		d.log.Error("configuration not reloaded", "reason", why, "err", err)
		return
	}
	if err := d.listeners.Apply(cfg.Portals); err != nil {
		d.log.Error("portals not all applied", "err", err)
	}
	if err := d.recon.Apply(cfg); err != nil {
		d.log.Error("configuration applied with errors", "reason", why, "err", err)
		return
	}
	d.log.Info("configuration reloaded", "reason", why)
}

func (d *daemon) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := d.server.Shutdown(ctx)
	d.recon.Close()
	d.backends.Close()
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("sessions did not end in time: %w", err)
	}
	return err
}

// fileStamp detects a changed configuration file without reading it.
type fileStamp struct {
	mod  time.Time
	size int64
	ino  uint64
}

func stamp(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	s := fileStamp{mod: fi.ModTime(), size: fi.Size()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = st.Ino
	}
	return s
}

// revision turns the version into the 4-character INQUIRY revision.
func revision(v string) string {
	if len(v) > 4 {
		return v[:4]
	}
	return v
}
