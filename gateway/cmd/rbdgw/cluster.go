package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/internal/etcdflags"
	"github.com/rbdgw/rbdgw/gateway/node"
)

// clusterFlags are the raw command-line values of cluster mode.
type clusterFlags struct {
	etcd, gateway, prefix     string
	embeddedDir, embeddedPeer string
	// TLS of the embedded etcd server.
	embeddedCert, embeddedKey, embeddedClientCA string
	// etcdSecurity: TLS files, user and password, -etcd-insecure and the
	// CHAP secret key file.
	etcdSecurity           etcdflags.Flags
	leaseTTL, stallTimeout time.Duration
	api                    apiFlags
}

// nodeOptions turns the flags into the options of a cluster node.
func nodeOptions(log *slog.Logger, f clusterFlags, b *backends) (node.Options, error) {
	opts := node.Options{
		Prefix:           f.prefix,
		Gateway:          f.gateway,
		EmbeddedDir:      f.embeddedDir,
		EmbeddedPeer:     f.embeddedPeer,
		EmbeddedCert:     f.embeddedCert,
		EmbeddedKey:      f.embeddedKey,
		EmbeddedClientCA: f.embeddedClientCA,
		LeaseTTL:         f.leaseTTL,
		StallTimeout:     f.stallTimeout,
		Version:          version,
		Backends:         b,
		Logger:           log,
	}
	for _, e := range strings.Split(f.etcd, ",") {
		if e = strings.TrimSpace(e); e != "" {
			opts.Endpoints = append(opts.Endpoints, e)
		}
	}
	if opts.EmbeddedDir != "" && len(opts.Endpoints) > 1 {
		return opts, errors.New("-embedded-etcd serves one address: give at most one -etcd endpoint")
	}
	if opts.Gateway != "" {
		if err := cluster.ValidateGatewayName(opts.Gateway); err != nil {
			return opts, fmt.Errorf("-gateway: %w", err)
		}
	}
	if opts.LeaseTTL < node.MinLeaseTTL {
		return opts, fmt.Errorf("-lease-ttl must be at least %v", node.MinLeaseTTL)
	}
	var err error
	if opts.Etcd, err = f.etcdSecurity.Security(os.Getenv); err != nil {
		return opts, err
	}
	if opts.SecretKey, err = f.etcdSecurity.SecretKey(); err != nil {
		return opts, fmt.Errorf("-secret-key-file: %w", err)
	}
	if opts.SecretKey != nil {
		log.Info("CHAP secrets are encrypted in etcd", "keys", opts.SecretKey.IDs())
	}
	if opts.Etcd.Insecure {
		log.Warn("-etcd-insecure: plain-HTTP etcd endpoints off loopback are accepted; etcd traffic, CHAP secrets included, crosses the network unprotected")
	}
	return opts, nil
}

// runClusterMode runs the gateway as a node of a cluster until SIGINT or
// SIGTERM.
func runClusterMode(log *slog.Logger, f clusterFlags, b *backends) error {
	opts, err := nodeOptions(log, f, b)
	if err != nil {
		return err
	}
	a, err := openAPI(log, f.api)
	if err != nil {
		return err
	}
	if a != nil {
		opts.APIURL = a.url
	}
	n, err := node.New(opts)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return runWithAPI(ctx, n, a, b)
}

// exitOnError ends the process when the daemon failed.
func exitOnError(log *slog.Logger, err error) {
	if err != nil {
		log.Error("rbdgw stopped", "err", err)
		os.Exit(1)
	}
}
