package cluster

import (
	"crypto/tls"
	"errors"
	"fmt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// ClientConfig says how to reach etcd.
type ClientConfig struct {
	Endpoints []string
	// DialTimeout bounds the first connection; 5 s when zero.
	DialTimeout time.Duration
	// TLS for https endpoints; nil for plain http.
	TLS *tls.Config
	// Username and Password for etcd authentication, when enabled.
	Username, Password string
}

// Dial connects to etcd. The client detects a dead connection within
// seconds (gRPC keepalive) so that watches and leases move to a working
// endpoint or resume when etcd returns. Close the client when done.
func Dial(cfg ClientConfig) (*clientv3.Client, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("cluster: no etcd endpoints")
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
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
