package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/rbdgw/rbdgw/gateway/cluster"
)

// embeddedEtcd is a single-member etcd server inside the daemon, for a
// one-gateway installation without an etcd cluster. Its data lives in a
// directory, so the configuration survives restarts.
type embeddedEtcd struct {
	srv *embed.Etcd
}

// embeddedTLS is the embedded server's certificate, key and, for client
// certificate authentication, the CA that signs client certificates.
type embeddedTLS struct {
	cert, key, clientCA string
}

// startEmbeddedEtcd starts etcd with its data in dir, serving clients on
// clientURL ("http://127.0.0.1:2379", or https:// with tc) and its
// (unused) peer port on peerAddr.
func startEmbeddedEtcd(log *slog.Logger, dir, clientURL, peerAddr string, tc embeddedTLS) (*embeddedEtcd, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded etcd: %w", err)
	}
	cfg := embed.NewConfig()
	cfg.Name = "rbdgw"
	cfg.Dir = filepath.Join(dir, "etcd")
	scheme := "http"
	if tc.cert != "" {
		scheme = "https"
		cfg.ClientTLSInfo = transport.TLSInfo{
			CertFile:       tc.cert,
			KeyFile:        tc.key,
			TrustedCAFile:  tc.clientCA,
			ClientCertAuth: tc.clientCA != "",
		}
	}
	cu := url.URL{Scheme: scheme, Host: hostPort(clientURL)}
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
	log.Info("embedded etcd ready", "dir", cfg.Dir, "clients", cu.String(), "client_cert_auth", cfg.ClientTLSInfo.ClientCertAuth)
	return &embeddedEtcd{srv: srv}, nil
}

func (e *embeddedEtcd) close() { e.srv.Close() }

// hostPort strips an "http://" or "https://" scheme, so that the embedded
// server's address may be given as an endpoint URL too.
func hostPort(addr string) string {
	if _, rest, ok := strings.Cut(addr, "://"); ok {
		return rest
	}
	return addr
}

// etcdClientConfig checks the node's etcd connection settings and loads
// their files (cluster.NewClientConfig). An embedded server with a
// certificate serves https, so its endpoint gets that scheme.
func etcdClientConfig(opts Options) (cluster.ClientConfig, error) {
	switch {
	case (opts.EmbeddedCert == "") != (opts.EmbeddedKey == ""):
		return cluster.ClientConfig{}, errors.New("the embedded etcd server's TLS needs both a certificate and a key")
	case opts.EmbeddedClientCA != "" && opts.EmbeddedCert == "":
		return cluster.ClientConfig{}, errors.New("client certificate authentication of the embedded etcd server needs its certificate and key")
	case opts.EmbeddedCert != "" && opts.EmbeddedDir == "":
		return cluster.ClientConfig{}, errors.New("a certificate for the embedded etcd server, but no embedded server")
	case opts.EmbeddedClientCA != "" && opts.Etcd.Cert == "":
		return cluster.ClientConfig{}, errors.New("the embedded etcd server requires client certificates: give the gateway's own (-etcd-cert, -etcd-key)")
	}
	endpoints := opts.Endpoints
	if opts.EmbeddedCert != "" {
		ep := endpoints[0]
		if strings.HasPrefix(ep, "http://") {
			return cluster.ClientConfig{}, fmt.Errorf("the embedded etcd server serves https (it has a certificate): give its endpoint as host:port or https://, not %s", ep)
		}
		endpoints = []string{"https://" + hostPort(ep)}
	}
	return cluster.NewClientConfig(endpoints, opts.Etcd)
}
