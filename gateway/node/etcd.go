package node

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/rbdgw/rbdgw/gateway/cluster"
)

// embeddedEtcd is a single-member etcd server inside the daemon, for a
// one-gateway installation without an etcd cluster. Its data lives in a
// directory, so the configuration survives restarts.
type embeddedEtcd struct {
	srv *embed.Etcd
}

// startEmbeddedEtcd starts etcd with its data in dir, serving clients on
// clientAddr ("127.0.0.1:2379") and its (unused) peer port on peerAddr.
func startEmbeddedEtcd(log *slog.Logger, dir, clientAddr, peerAddr string) (*embeddedEtcd, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded etcd: %w", err)
	}
	cfg := embed.NewConfig()
	cfg.Name = "rbdgw"
	cfg.Dir = filepath.Join(dir, "etcd")
	cu := url.URL{Scheme: "http", Host: hostPort(clientAddr)}
	pu := url.URL{Scheme: "http", Host: hostPort(peerAddr)}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	cfg.InitialCluster = cfg.Name + "=" + pu.String()
	// Keep the history compact: the gateways only need recent revisions.
	cfg.AutoCompactionMode = "revision"
	cfg.AutoCompactionRetention = "10000"
	// etcd logs through zap, in JSON. Its warnings for a single member
	// (one port for HTTP and gRPC, unsigned simple tokens, closed
	// listeners at shutdown) are expected here: show only errors.
	cfg.LogLevel = "error"
	cfg.Logger = "zap"
	srv, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: %w", err)
	}
	select {
	case <-srv.Server.ReadyNotify():
	case err := <-srv.Err():
		srv.Close()
		return nil, fmt.Errorf("embedded etcd: %w", err)
	case <-time.After(60 * time.Second):
		srv.Close()
		return nil, fmt.Errorf("embedded etcd did not become ready in 60 s")
	}
	log.Info("embedded etcd ready", "dir", cfg.Dir, "clients", cu.String())
	return &embeddedEtcd{srv: srv}, nil
}

func (e *embeddedEtcd) close() { e.srv.Close() }

// hostPort strips an "http://" scheme, so that the embedded server's
// address may be given as an endpoint URL too.
func hostPort(addr string) string {
	if _, rest, ok := strings.Cut(addr, "://"); ok {
		return rest
	}
	return addr
}

// endpointURLs adds "http://" to endpoints given without a scheme.
func endpointURLs(endpoints []string) []string {
	out := make([]string, len(endpoints))
	for i, e := range endpoints {
		if !strings.Contains(e, "://") {
			e = "http://" + e
		}
		out[i] = e
	}
	return out
}

// dialEtcd connects the daemon's etcd client (cluster.Dial caps the
// reconnect backoff so a gateway returns soon after etcd does).
func dialEtcd(endpoints []string) (*clientv3.Client, error) {
	return cluster.Dial(cluster.ClientConfig{Endpoints: endpointURLs(endpoints)})
}
