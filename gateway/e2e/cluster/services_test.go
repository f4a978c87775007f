package cluster

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
	"strings"
	"sync"
	"syscall"
	"time"
)

// Ceph: an existing cluster ($CEPH_CONF) or one started here.
var startedCephDir string

// cephAvailable says why the tests cannot reach Ceph, or "".
func cephAvailable() string {
	if os.Getenv("CEPH_CONF") != "" {
		return ""
	}
	for _, b := range []string{"ceph-mon", "ceph-osd", "ceph", "rbd"} {
		if _, err := exec.LookPath(b); err != nil {
			return "CEPH_CONF is not set and " + b + " is not installed (apt-get install ceph-mon ceph-osd ceph-common)"
		}
	}
	return ""
}

func startCeph() error {
	if c := os.Getenv("CEPH_CONF"); c != "" {
		env.cephConf = c
		return nil
	}
	startedCephDir = filepath.Join(env.bin, "ceph")
	cmd := exec.Command(filepath.Join(env.root, "deploy/microceph.sh"), "start")
	// A port range of its own: other clusters may run on this host.
	cmd.Env = append(os.Environ(), "CEPH_DIR="+startedCephDir, "CEPH_PORT_MIN=17800", "CEPH_PORT_MAX=17899", "CEPH_MEMSTORE_GIB=4")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("start micro Ceph: %w", err)
	}
	env.cephConf = filepath.Join(startedCephDir, "ceph.conf")
	return nil
}

func stopCeph() {
	if startedCephDir == "" {
		return
	}
	cmd := exec.Command(filepath.Join(env.root, "deploy/microceph.sh"), "stop")
	cmd.Env = append(os.Environ(), "CEPH_DIR="+startedCephDir)
	_ = cmd.Run()
}

// ceph runs the ceph CLI against the test cluster.
func ceph(args ...string) (string, error) {
	cmd := exec.Command("timeout", append([]string{"60", "ceph", "-c", env.cephConf}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// etcdServer is Debian's etcd on loopback with a data directory of its own.
type etcdServer struct {
	dir          string
	client, peer int

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	logs   lockedBuffer
}

var errNoEtcd = errors.New("etcd not installed (apt-get install etcd-server)")

func startEtcd(dir string) (*etcdServer, error) {
	if _, err := exec.LookPath("etcd"); err != nil {
		return nil, errNoEtcd
	}
	e := &etcdServer{dir: dir}
	var err error
	if e.client, err = freePort(); err != nil {
		return nil, err
	}
	if e.peer, err = freePort(); err != nil {
		return nil, err
	}
	return e, e.start()
}

func (e *etcdServer) endpoint() string { return "127.0.0.1:" + strconv.Itoa(e.client) }

func (e *etcdServer) start() error {
	c := "http://" + e.endpoint()
	p := "http://127.0.0.1:" + strconv.Itoa(e.peer)
	cmd := exec.Command("etcd", "--name", "test", "--data-dir", e.dir,
		"--listen-client-urls", c, "--advertise-client-urls", c,
		"--listen-peer-urls", p, "--initial-advertise-peer-urls", p, "--initial-cluster", "test="+p,
		"--heartbeat-interval", "50", "--election-timeout", "500")
	cmd.Stdout, cmd.Stderr = &e.logs, &e.logs
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	e.mu.Lock()
	e.cmd, e.exited = cmd, exited
	e.mu.Unlock()
	hc := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		select {
		case <-exited:
			return fmt.Errorf("etcd exited:\n%s", e.logs.String())
		default:
		}
		if resp, err := hc.Get(c + "/health"); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if bytes.Contains(body, []byte(`"true"`)) {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("etcd not healthy:\n%s", e.logs.String())
}

func (e *etcdServer) stop() {
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

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// trimLines returns the non-empty lines of s.
func trimLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
