package cluster

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// testEtcd is a real single-member etcd (Debian's etcd-server) on loopback
// with random ports and a temporary data directory, for one test.
type testEtcd struct {
	t          *testing.T
	bin        string
	dir        string
	clientPort int
	peerPort   int

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	logs   syncBuffer
}

func startEtcd(t *testing.T) *testEtcd {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping: needs a real etcd server (-short)")
	}
	bin, err := exec.LookPath("etcd")
	if err != nil {
		if _, statErr := os.Stat("/usr/bin/etcd"); statErr != nil {
			t.Skip("skipping: etcd binary not found (apt-get install etcd-server); cluster tests run against a real etcd")
		}
		bin = "/usr/bin/etcd"
	}
	e := &testEtcd{t: t, bin: bin, dir: t.TempDir(), clientPort: freePort(t), peerPort: freePort(t)}
	e.start()
	t.Cleanup(func() {
		e.stop()
		if t.Failed() {
			t.Logf("etcd output:\n%s", e.logs.String())
		}
	})
	return e
}

func (e *testEtcd) endpoint() string { return "http://127.0.0.1:" + strconv.Itoa(e.clientPort) }

func (e *testEtcd) start() {
	e.t.Helper()
	peer := "http://127.0.0.1:" + strconv.Itoa(e.peerPort)
	cmd := exec.Command(e.bin,
		"--name", "test",
		"--data-dir", e.dir,
		"--listen-client-urls", e.endpoint(),
		"--advertise-client-urls", e.endpoint(),
		"--listen-peer-urls", peer,
		"--initial-advertise-peer-urls", peer,
		"--initial-cluster", "test="+peer,
		"--heartbeat-interval", "50",
		"--election-timeout", "500",
		"--logger", "zap",
		"--log-outputs", "stderr",
	)
	cmd.Stdout, cmd.Stderr = &e.logs, &e.logs
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("start etcd: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	e.mu.Lock()
	e.cmd, e.exited = cmd, exited
	e.mu.Unlock()
	e.waitHealthy(exited)
}

func (e *testEtcd) waitHealthy(exited chan struct{}) {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			e.t.Fatalf("etcd exited during start:\n%s", e.logs.String())
		default:
		}
		resp, err := client.Get(e.endpoint() + "/health")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && bytes.Contains(body, []byte(`"true"`)) {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("etcd did not become healthy:\n%s", e.logs.String())
}

// stop ends the process gracefully (SIGTERM), killing it if it lingers.
func (e *testEtcd) stop() {
	e.mu.Lock()
	cmd, exited := e.cmd, e.exited
	e.cmd = nil
	e.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// restart stops etcd and starts it again on the same data and ports.
func (e *testEtcd) restart() {
	e.t.Helper()
	e.stop()
	e.start()
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
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
