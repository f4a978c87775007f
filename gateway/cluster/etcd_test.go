package cluster

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
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
	if testing.Short() {
		t.Skip("skipping: needs a real etcd server (-short)")
	}
	e, err := clustertest.StartEtcd(t.TempDir())
	if errors.Is(err, clustertest.ErrNoEtcd) {
		t.Skip("skipping: etcd binary not found (apt-get install etcd-server); cluster tests run against a real etcd")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.Stop()
		if t.Failed() {
			t.Logf("etcd output:\n%s", e.Logs())
		}
	})
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

// tcpProxy sits between a client and etcd so that a test can cut the
// client off while etcd keeps running.
type tcpProxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	blocked bool
	conns   map[net.Conn]bool
	wg      sync.WaitGroup
}

func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &tcpProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *tcpProxy) endpoint() string { return "http://" + p.ln.Addr().String() }

func (p *tcpProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		blocked := p.blocked
		p.mu.Unlock()
		if blocked {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *tcpProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
}

// cut drops every connection and refuses new ones until restore.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *tcpProxy) restore() {
	p.mu.Lock()
	p.blocked = false
	p.mu.Unlock()
}
