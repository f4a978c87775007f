package cluster

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// etcdEndpoint is the address the daemons are given with -etcd (https,
// without the scheme: the TLS flags make it https).
func etcdEndpoint() string { return strings.TrimPrefix(env.etcd.Endpoint(), "https://") }

// etcdArgs are the flags that connect a daemon or rbdgw-admin to the test
// etcd: its endpoint, the CA of its certificate and a client certificate.
func etcdArgs() []string {
	return []string{"-etcd", etcdEndpoint(), "-etcd-cacert", env.pki.CA,
		"-etcd-cert", env.pki.ClientCert, "-etcd-key", env.pki.ClientKey}
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
