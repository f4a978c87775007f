package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"

	"github.com/rbdgw/rbdgw/api"
	"github.com/rbdgw/rbdgw/api/wire"
	"github.com/rbdgw/rbdgw/gateway/audit"
	"github.com/rbdgw/rbdgw/gateway/metrics"
	"github.com/rbdgw/rbdgw/gateway/node"
	"github.com/rbdgw/rbdgw/gateway/tokens"
)

// apiFlags say whether and how the REST API is served.
type apiFlags struct {
	addr, cert, key string
	// tokenFile receives the first admin token when this gateway
	// bootstraps the cluster's tokens.
	tokenFile string
}

// apiOff is the -api value that serves no API.
const apiOff = "off"

// apiServer is the REST API of a cluster gateway: its listener is opened
// before the node starts, so a port in use fails the start at once.
type apiServer struct {
	log   *slog.Logger
	flags apiFlags
	ln    net.Listener
	url   string
}

func openAPI(log *slog.Logger, f apiFlags) (*apiServer, error) {
	if f.addr == apiOff || f.addr == "" {
		return nil, nil
	}
	addr := f.addr
	if !strings.Contains(addr, ":") || strings.HasSuffix(addr, "]") {
		addr = net.JoinHostPort(strings.Trim(addr, "[]"), fmt.Sprint(api.DefaultPort))
	}
	ln, err := api.Listen(api.ListenOptions{Addr: addr, CertFile: f.cert, KeyFile: f.key})
	if err != nil {
		return nil, fmt.Errorf("REST API: %w", err)
	}
	scheme := "http"
	if f.cert != "" {
		scheme = "https"
	}
	return &apiServer{log: log.With("component", "api"), flags: f, ln: ln, url: scheme + "://" + ln.Addr().String()}, nil
}

// run serves the API of n once it is connected to etcd, until ctx ends.
func (a *apiServer) run(ctx context.Context, n *node.Node, b *backends) error {
	defer a.ln.Close()
	select {
	case <-n.Ready():
	case <-ctx.Done():
		return nil
	}
	store, cli := n.Store(), n.Client()
	prefix := store.Prefix()
	toks := tokens.New(cli, prefix)
	created, err := toks.Bootstrap(ctx, a.flags.tokenFile)
	switch {
	case err != nil:
		a.log.Error("cannot bootstrap the first admin token", "file", a.flags.tokenFile, "err", err)
	case created:
		a.log.Info("first admin token created (rbdgw-admin token list shows it; the token itself is only in the file)", "file", a.flags.tokenFile)
	}
	ceph, err := apiCeph(b)
	if err != nil {
		a.log.Warn("the REST API serves no Ceph operations: no Ceph client", "err", err)
	}
	srv := api.New(api.Options{
		Store:    store,
		Ceph:     ceph,
		Gateways: wire.Gateways{Cli: cli, Prefix: prefix},
		Tokens:   wire.Tokens{S: toks},
		Audit:    wire.Audit{L: audit.New(cli, prefix, audit.Options{Logger: a.log})},
		Stats:    wire.Stats{Cli: cli, Prefix: prefix},
		Events:   wire.Events{Cli: cli, Prefix: prefix, Logger: a.log},
		Gateway:  n.Name(),
		Version:  version,
		Logger:   a.log,
		Metrics:  metrics.Handler(n.Metrics(), a.log),
	})
	a.log.Info("REST API serving", "url", a.url)
	return api.Serve(ctx, a.ln, srv.Handler(), a.log)
}

// runWithAPI runs the node and, when asked, its API; the first to fail
// stops both.
func runWithAPI(ctx context.Context, n *node.Node, a *apiServer, b *backends) error {
	if a == nil {
		return n.Run(ctx)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var apiErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		apiErr = a.run(ctx, n, b)
		if apiErr != nil {
			cancel()
		}
	}()
	err := n.Run(ctx)
	cancel()
	wg.Wait()
	return errors.Join(err, apiErr)
}
