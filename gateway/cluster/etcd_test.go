package cluster

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rbdgw/rbdgw/gateway/internal/clustertest"
)

// testEtcd is a real single-member etcd (Debian's etcd-server) on loopback
// with random ports and a temporary data directory, for one test.
type testEtcd struct {
	t *testing.T
	*clustertest.Etcd
}

func startEtcd(t *testing.T) *testEtcd {
	t.Helper()
	e, _ := clustertest.StartForTest(t, false)
	return &testEtcd{t: t, Etcd: e}
}

func (e *testEtcd) endpoint() string { return e.Endpoint() }

// restart stops etcd and starts it again on the same data and ports.
func (e *testEtcd) restart() {
	e.t.Helper()
	e.Stop()
	if err := e.Start(); err != nil {
		e.t.Fatal(err)
	}
}

func newClient(t *testing.T, endpoint string) *clientv3.Client {
	t.Helper()
	cli, err := Dial(ClientConfig{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// testLogger discards store logs unless CLUSTER_TEST_LOG is set: watch
// goroutines may log after a test has finished, when t.Log would panic.
func testLogger() *slog.Logger {
	if os.Getenv("CLUSTER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newStore(t *testing.T, cli *clientv3.Client, opts Options) *Store {
	t.Helper()
	opts.Logger = testLogger()
	s, err := New(cli, opts)
	if err != nil {
		t.Fatalf("new store: %v", err)
	}
	return s
}

// startStore starts etcd and returns a store on it.
func startStore(t *testing.T) (*testEtcd, *Store) {
	e := startEtcd(t)
	return e, newStore(t, newClient(t, e.endpoint()), Options{})
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
