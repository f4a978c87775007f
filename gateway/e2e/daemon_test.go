// Package e2e runs the gateway daemon as a user would and drives it with
// real initiators: libiscsi's tools and qemu-img.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var daemonBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rbdgw-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	daemonBin = filepath.Join(dir, "rbdgw")
	build := exec.Command("go", "build", "-tags", buildTags, "-o", daemonBin, "github.com/rbdgw/rbdgw/gateway/cmd/rbdgw")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the daemon:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// needTools skips the test when an initiator tool is not installed.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (make deps installs it)", tool)
		}
	}
}

// portRange, from RBDGW_E2E_PORTS ("3370-3379"), confines the portals of
// the tests to ports of their own on a machine shared with other runs;
// unset, the kernel picks free ports.
var portRange struct {
	sync.Mutex
	next, last int
}

func init() {
	var lo, hi int
	if r := os.Getenv("RBDGW_E2E_PORTS"); r != "" {
		if _, err := fmt.Sscanf(r, "%d-%d", &lo, &hi); err != nil || lo <= 0 || hi < lo || hi > 65535 {
			panic("RBDGW_E2E_PORTS: want LOW-HIGH, got " + r)
		}
	}
	portRange.next, portRange.last = lo, hi
}

// freePort returns a loopback port nobody listens on.
func freePort(t *testing.T) int {
	t.Helper()
	if portRange.last != 0 {
		portRange.Lock()
		defer portRange.Unlock()
		for ; portRange.next <= portRange.last; portRange.next++ {
			if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", portRange.next)); err == nil {
				l.Close()
				portRange.next++
				return portRange.next - 1
			}
		}
		t.Fatalf("RBDGW_E2E_PORTS: no free port left")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// logBuffer collects the daemon's output; the test reads it while the
// daemon still writes.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// has reports whether s appears in the log within a few seconds: the
// daemon may log an event after the reply the test has already seen (a
// refused login is logged once its response is sent).
func (b *logBuffer) has(s string) bool {
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if strings.Contains(b.String(), s) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// gateway is a running daemon.
type gateway struct {
	t       *testing.T
	cmd     *exec.Cmd
	cfgPath string
	log     *logBuffer
	port    int
}

// startGateway writes cfg (with %PORT% replaced) and starts the daemon,
// returning once the portal accepts connections.
func startGateway(t *testing.T, cfg string) *gateway {
	t.Helper()
	g := &gateway{t: t, port: freePort(t), log: &logBuffer{}}
	g.cfgPath = filepath.Join(t.TempDir(), "gateway.yaml")
	g.writeConfig(cfg)
	g.cmd = exec.Command(daemonBin, "-config", g.cfgPath, "-log-level", "debug", "-watch-interval", "0")
	g.cmd.Stdout, g.cmd.Stderr = g.log, g.log
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.stop)
	addr := fmt.Sprintf("127.0.0.1:%d", g.port)
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return g
		}
		if i == 100 {
			t.Fatalf("gateway did not listen on %s:\n%s", addr, g.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (g *gateway) writeConfig(cfg string) {
	g.t.Helper()
	cfg = strings.ReplaceAll(cfg, "%PORT%", fmt.Sprint(g.port))
	if err := os.WriteFile(g.cfgPath, []byte(cfg), 0o600); err != nil {
		g.t.Fatal(err)
	}
}

// reload rewrites the configuration and sends SIGHUP.
func (g *gateway) reload(cfg string) {
	g.t.Helper()
	g.writeConfig(cfg)
	if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		g.t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
}

func (g *gateway) stop() {
	if g.cmd.ProcessState != nil {
		return
	}
	g.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- g.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		g.cmd.Process.Kill()
		<-done
		g.t.Errorf("daemon did not stop on SIGTERM within 15 s")
	}
	if g.t.Failed() {
		g.t.Logf("daemon log:\n%s", g.log)
	}
}

func (g *gateway) portal() string { return fmt.Sprintf("127.0.0.1:%d", g.port) }

// run executes an initiator tool with a timeout and returns its combined
// output and error.
func run(t *testing.T, timeout time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}
