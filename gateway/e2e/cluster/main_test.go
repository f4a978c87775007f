// Package cluster runs two or more gateway daemons against one etcd and
// one Ceph cluster, as separate processes, and drives them with real
// initiators: libiscsi's tools and the mpio test initiator. It covers what
// only a cluster shows: discovery across gateways, ALUA, reservations
// shared by the gateways, failover with data integrity, configuration
// changes while a gateway is down, and an etcd outage.
//
// Ceph: the tests use $CEPH_CONF when it is set, start a throw-away
// cluster with deploy/microceph.sh when the Ceph daemons are installed,
// and skip otherwise. etcd: /usr/bin/etcd (Debian's etcd-server), serving
// https with client-certificate authentication (--client-cert-auth): every
// daemon and rbdgw-admin is given its CA and a client certificate
// (etcdArgs); security_test.go shows that they are refused without.
//
//	go test -tags pacific -timeout 15m ./gateway/e2e/cluster/          (about 3 minutes)
//	go test -tags pacific -short ./gateway/e2e/cluster/                (skips the 30 s etcd outage)
package cluster

import (
	"errors"
	"fmt"
	"github.com/rbdgw/rbdgw/gateway/internal/clustertest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// env is what every test shares: binaries, Ceph and etcd.
var env struct {
	skip     string // why the package is skipped; "" when it runs
	bin      string // directory of rbdgw, rbdgw-admin, mpio
	root     string // repository root
	cephConf string
	etcd     *clustertest.Etcd
	pki      *clustertest.TLSFiles // the etcd server's CA and certificates
}

func TestMain(m *testing.M) {
	code := 0
	if err := setup(); err != nil {
		fmt.Fprintln(os.Stderr, "cluster tests:", err)
		code = 1
	} else {
		code = m.Run()
	}
	teardown()
	os.Exit(code)
}

func setup() error {
	root, err := filepath.Abs("../../..")
	if err != nil {
		return err
	}
	env.root = root
	if env.bin, err = os.MkdirTemp("", "rbdgw-cluster-test"); err != nil {
		return err
	}
	for _, tool := range []string{"iscsi-ls", "iscsi-test-cu"} {
		if _, err := exec.LookPath(tool); err != nil {
			env.skip = tool + " not installed (apt-get install libiscsi-bin)"
			return nil
		}
	}
	if env.skip = cephAvailable(); env.skip != "" {
		return nil
	}
	if err := build(); err != nil {
		return err
	}
	if env.pki, err = clustertest.NewTLSFiles(filepath.Join(env.bin, "pki")); err != nil {
		return err
	}
	if env.etcd, err = clustertest.StartEtcdTLS(filepath.Join(env.bin, "etcd"), env.pki); err != nil {
		if errors.Is(err, clustertest.ErrNoEtcd) {
			env.skip = err.Error()
			return nil
		}
		return err
	}
	return startCeph()
}

func teardown() {
	if env.etcd != nil {
		env.etcd.Stop()
	}
	stopCeph()
	if env.bin != "" {
		os.RemoveAll(env.bin)
	}
}

// build compiles the daemon (with librbd), the admin tool, mpio and gwcli.
func build() error {
	for _, b := range []struct{ out, pkg, tags string }{
		{"rbdgw", "./gateway/cmd/rbdgw", "pacific"},
		{"rbdgw-admin", "./gateway/cmd/rbdgw-admin", ""},
		{"mpio", "./gateway/internal/clustertest/mpio", ""},
		{"gwcli", "./gwcli/cmd/gwcli", ""},
	} {
		args := []string{"build", "-o", filepath.Join(env.bin, b.out)}
		if b.tags != "" {
			args = append(args, "-tags", b.tags)
		}
		cmd := exec.Command("go", append(args, b.pkg)...)
		cmd.Dir = env.root
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build %s: %w", b.pkg, err)
		}
	}
	return nil
}

// need skips the test when the package cannot run here.
func need(t *testing.T) {
	t.Helper()
	if env.skip != "" {
		t.Skip("skipping: " + env.skip)
	}
}
