package cluster

import (
	"crypto/tls"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// ClientConfig says how to reach etcd. NewClientConfig makes one from
// endpoints and Security (files, user); tests may fill it directly.
type ClientConfig struct {
	// Endpoints are URLs or host:port (http:// added, or https:// when TLS
	// is set).
	Endpoints []string
	// DialTimeout bounds the first connection; 5 s when zero.
	DialTimeout time.Duration
	// TLS for https endpoints; nil for plain http (an https endpoint then
	// uses the system's CAs).
	TLS *tls.Config
	// Username and Password for etcd authentication, when enabled.
	Username, Password string
	// AllowInsecure accepts plain-HTTP endpoints that are not on loopback.
	AllowInsecure bool
}

// Dial connects to etcd; it is the one way every part of the gateway
// (daemon, node, rbdgw-admin) connects. It refuses plain-HTTP endpoints
// that are not on loopback unless cfg.AllowInsecure. The client detects a
// dead connection within seconds (gRPC keepalive) so that watches and
// leases move to a working endpoint or resume when etcd returns. Close the
// client when done.
func Dial(cfg ClientConfig) (*clientv3.Client, error) {
	eps, err := normalizeEndpoints(cfg.Endpoints, cfg.TLS != nil)
	if err != nil {
		return nil, err
	}
	cfg.Endpoints = eps
	if err := checkEndpoints(cfg); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if cfg.TLS == nil && strings.HasPrefix(eps[0], "https://") {
		cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if err := probe(cfg); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            cfg.Endpoints,
		DialTimeout:          cfg.DialTimeout,
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		TLS:                  cfg.TLS,
		Username:             cfg.Username,
		Password:             cfg.Password,
		// gRPC's reconnect backoff grows to two minutes by default while
		// etcd is down; a gateway would then come back long after etcd did,
		// past its lease and past the grace the other gateways give it
		// before they take its disks over.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: 2 * time.Second,
		})},
		// The store reports what matters through its errors and slog; the
		// client's own zap output would only duplicate it.
		Logger: zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: connect to etcd %v: %w", cfg.Endpoints, err)
	}
	return cli, nil
}
