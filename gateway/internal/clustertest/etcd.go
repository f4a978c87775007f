// Package clustertest starts the real services the cluster packages are
// tested against: an etcd server on loopback. (Command mpio, beside it, is
// the initiator of the multi-gateway end-to-end tests.)
package clustertest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Etcd is a single-member etcd server (Debian's etcd-server) on loopback
// with free ports and its own data directory.
type Etcd struct {
	bin, dir   string
	clientPort int
	peerPort   int
	// tls, when set, makes the server serve https and require client
	// certificates signed by its CA.
	tls *TLSFiles

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	logs   bytes.Buffer
}

// ErrNoEtcd means no etcd binary is installed; tests skip then.
var ErrNoEtcd = fmt.Errorf("etcd not installed (apt-get install etcd-server)")

// StartEtcd starts etcd with its data under dir.
func StartEtcd(dir string) (*Etcd, error) { return StartEtcdTLS(dir, nil) }

// StartEtcdTLS starts etcd with its data under dir; with files, it serves
// https with files.ServerCert and requires client certificates signed by
// files.CA (--client-cert-auth). files nil: plain http.
func StartEtcdTLS(dir string, files *TLSFiles) (*Etcd, error) {
	bin, err := exec.LookPath("etcd")
	if err != nil {
		if _, serr := os.Stat("/usr/bin/etcd"); serr != nil {
			return nil, ErrNoEtcd
		}
		bin = "/usr/bin/etcd"
	}
	e := &Etcd{bin: bin, dir: dir, tls: files}
	if e.clientPort, err = FreePort(); err != nil {
		return nil, err
	}
	if e.peerPort, err = FreePort(); err != nil {
		return nil, err
	}
	return e, e.Start()
}

// Endpoint is the client URL (https:// when the server serves TLS).
func (e *Etcd) Endpoint() string {
	if e.tls != nil {
		return "https://127.0.0.1:" + strconv.Itoa(e.clientPort)
	}
	return "http://127.0.0.1:" + strconv.Itoa(e.clientPort)
}

// TLS returns the server's PKI, nil when it serves plain http.
func (e *Etcd) TLS() *TLSFiles { return e.tls }

// Start (re)starts the server on the same data and ports and waits until
// it is healthy.
func (e *Etcd) Start() error {
	peer := "http://127.0.0.1:" + strconv.Itoa(e.peerPort)
	args := []string{
		"--name", "test", "--data-dir", e.dir,
		"--listen-client-urls", e.Endpoint(), "--advertise-client-urls", e.Endpoint(),
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "test=" + peer,
		"--heartbeat-interval", "50", "--election-timeout", "500",
		"--logger", "zap", "--log-outputs", "stderr"}
	hc := &http.Client{Timeout: time.Second}
	if e.tls != nil {
		args = append(args, "--client-cert-auth", "--trusted-ca-file", e.tls.CA,
			"--cert-file", e.tls.ServerCert, "--key-file", e.tls.ServerKey)
		tc, err := e.tls.ClientTLS()
		if err != nil {
			return fmt.Errorf("start etcd: %w", err)
		}
		hc.Transport = &http.Transport{TLSClientConfig: tc}
	}
	cmd := exec.Command(e.bin, args...)
	e.mu.Lock()
	cmd.Stdout, cmd.Stderr = &lockedWriter{e}, &lockedWriter{e}
	e.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start etcd: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	e.mu.Lock()
	e.cmd, e.exited = cmd, exited
	e.mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("etcd exited during start:\n%s", e.Logs())
		default:
		}
		if resp, err := hc.Get(e.Endpoint() + "/health"); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && bytes.Contains(body, []byte(`"true"`)) {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.Stop()
	return fmt.Errorf("etcd did not become healthy:\n%s", e.Logs())
}

// Stop ends the server (SIGTERM, then SIGKILL after 10 s).
func (e *Etcd) Stop() {
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

// Logs returns what the server printed.
func (e *Etcd) Logs() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.logs.String()
}

type lockedWriter struct{ e *Etcd }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.e.mu.Lock()
	defer w.e.mu.Unlock()
	return w.e.logs.Write(p)
}

// FreePort returns a loopback TCP port nobody listens on.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// MainWithEtcd is the TestMain of a package whose tests share one etcd
// server: it starts the server in a temporary directory, hands it to use
// (nil when etcd cannot start, and the tests then skip), runs the tests,
// stops the server and exits with the tests' code.
func MainWithEtcd(m *testing.M, pkg string, use func(*Etcd)) {
	dir, err := os.MkdirTemp("", pkg+"-etcd")
	if err != nil {
		panic(err)
	}
	e, err := StartEtcd(dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s tests without etcd: %v\n", pkg, err)
		e = nil
	}
	use(e)
	code := m.Run()
	if e != nil {
		e.Stop()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// StartForTest starts an etcd server for t alone, with client-certificate
// TLS when tls is set (the files are returned, else nil). The server stops
// when t ends, and its output is logged if t failed. t is skipped with
// -short and where no etcd binary is installed.
func StartForTest(t testing.TB, tls bool) (*Etcd, *TLSFiles) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping: needs a real etcd server (-short)")
	}
	var pki *TLSFiles
	if tls {
		var err error
		if pki, err = NewTLSFiles(filepath.Join(t.TempDir(), "pki")); err != nil {
			t.Fatal(err)
		}
	}
	e, err := StartEtcdTLS(t.TempDir(), pki)
	if errors.Is(err, ErrNoEtcd) {
		t.Skip("skipping: etcd binary not found (apt-get install etcd-server)")
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
	return e, pki
}
