package node

import (
	"bytes"
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/config"
	"github.com/rbdgw/rbdgw/gateway/internal/clustertest"
	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
	"github.com/rbdgw/rbdgw/gateway/internal/login"
)

func TestNewChecksEtcdSecurity(t *testing.T) {
	b := &memBackends{}
	pki, err := clustertest.NewTLSFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	client := cluster.Security{CACert: pki.CA, Cert: pki.ClientCert, Key: pki.ClientKey}
	tests := []struct {
		name string
		opts Options
		want string // in the error; "" for success
	}{
		{"plain http off loopback", Options{Endpoints: []string{"10.0.0.10:2379"}}, "-etcd-insecure"},
		{"plain http off loopback, insecure", Options{Endpoints: []string{"10.0.0.10:2379"}, Etcd: cluster.Security{Insecure: true}}, ""},
		{"https off loopback", Options{Endpoints: []string{"10.0.0.10:2379"}, Etcd: client}, ""},
		{"embedded plain off loopback", Options{Endpoints: []string{"10.0.0.10:2379"}, EmbeddedDir: "/tmp/x"}, "-etcd-insecure"},
		{"embedded TLS off loopback", Options{Endpoints: []string{"10.0.0.10:2379"}, EmbeddedDir: "/tmp/x",
			EmbeddedCert: pki.ServerCert, EmbeddedKey: pki.ServerKey, Etcd: cluster.Security{CACert: pki.CA}}, ""},
		{"embedded cert without key", Options{EmbeddedDir: "/tmp/x", EmbeddedCert: pki.ServerCert}, "certificate and a key"},
		{"embedded client CA without cert", Options{EmbeddedDir: "/tmp/x", EmbeddedClientCA: pki.CA}, "needs its certificate"},
		{"embedded cert without server", Options{EmbeddedCert: pki.ServerCert, EmbeddedKey: pki.ServerKey}, "no embedded server"},
		{"embedded client auth, no own certificate", Options{EmbeddedDir: "/tmp/x", EmbeddedCert: pki.ServerCert,
			EmbeddedKey: pki.ServerKey, EmbeddedClientCA: pki.CA, Etcd: cluster.Security{CACert: pki.CA}}, "-etcd-cert"},
		{"embedded TLS, http:// endpoint", Options{Endpoints: []string{"http://127.0.0.1:2379"}, EmbeddedDir: "/tmp/x",
			EmbeddedCert: pki.ServerCert, EmbeddedKey: pki.ServerKey}, "serves https"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Gateway, tc.opts.Backends = "gw-a", b
			n, err := New(tc.opts)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tc.opts.EmbeddedCert != "" && !strings.HasPrefix(n.etcdCfg.Endpoints[0], "https://") {
					t.Fatalf("embedded TLS endpoint %v", n.etcdCfg.Endpoints)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one about %q", err, tc.want)
			}
		})
	}
}

// TestNodeClientCertEtcd runs a node against an etcd server that requires
// client certificates: with its certificate it registers, applies the
// configuration (CHAP secrets encrypted in etcd, decrypted by the node)
// and serves a CHAP login; without one it stops at once with the reason.
func TestNodeClientCertEtcd(t *testing.T) {
	e, pki := clustertest.StartForTest(t, true)
	certs := cluster.Security{CACert: pki.CA, Cert: pki.ClientCert, Key: pki.ClientKey}
	key, err := cluster.CreateSecretKeyFile(filepath.Join(t.TempDir(), "secret.key"))
	if err != nil {
		t.Fatal(err)
	}

	// Without a client certificate (or with plain HTTP) the node does not
	// start, and says why.
	for name, sec := range map[string]cluster.Security{
		"no client certificate": {CACert: pki.CA},
		"another CA":            {CACert: pki.CA, Cert: pki.OtherClientCert, Key: pki.OtherClientKey},
	} {
		n := newTestNode(t, Options{Endpoints: []string{e.Endpoint()}, Gateway: "gw-a", Etcd: sec})
		start := time.Now()
		err := n.Run(context.Background())
		if err == nil || !strings.Contains(err.Error(), "client certificate") || time.Since(start) > 5*time.Second {
			t.Fatalf("%s: Run: %v after %v", name, err, time.Since(start))
		}
	}
	plain := newTestNode(t, Options{Endpoints: []string{strings.TrimPrefix(e.Endpoint(), "https://")}, Gateway: "gw-a"})
	if err := plain.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "speaks TLS") {
		t.Fatalf("plain HTTP: Run: %v", err)
	}

	// With it: define the cluster through a store with the key, run the
	// node with the same key.
	cfg, err := cluster.NewClientConfig([]string{e.Endpoint()}, certs)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := cluster.Dial(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	const prefix = "/tls/"
	admin, err := cluster.New(cli, cluster.Options{Prefix: prefix, Logger: quiet, SecretKey: key})
	if err != nil {
		t.Fatal(err)
	}
	port, err := clustertest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	portal := "127.0.0.1:" + strconv.Itoa(port)
	const iqn, ini = "iqn.2024-01.io.test:tls", "iqn.2024-01.io.test:host1"
	chap := config.CHAP{User: "host1", Secret: "host1secret12", MutualUser: "tgt1", MutualSecret: "tgt1secret123"}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := admin.Apply(ctx,
		cluster.PutGateway(cluster.Gateway{Name: "gw-a", Portals: []string{portal}}),
		cluster.PutDisk(cluster.Disk{Pool: "rbd", Image: "d0", Size: 1 << 20}),
		cluster.PutTarget(cluster.Target{IQN: iqn, Gateways: []string{"gw-a"}}),
		cluster.PutLUN(cluster.LUN{Target: iqn, ID: 0, Disk: "rbd/d0"}),
		cluster.PutHost(cluster.Host{Target: iqn, Initiator: ini, CHAP: &chap})); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		if bytes.Contains(kv.Value, []byte(chap.Secret)) || bytes.Contains(kv.Value, []byte(chap.MutualSecret)) {
			t.Fatalf("%s holds a CHAP secret in plain text", kv.Key)
		}
	}

	n := newTestNode(t, Options{Endpoints: []string{strings.TrimPrefix(e.Endpoint(), "https://")}, Prefix: prefix,
		Gateway: "gw-a", LeaseTTL: 2 * time.Second, Etcd: certs, SecretKey: key})
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	ran := make(chan error, 1)
	go func() { ran <- n.Run(rctx) }()
	waitRegistered(t, n, ran)
	in, err := iscsitest.Dial(portal)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	in.Timeout = 5 * time.Second
	if err := in.Login(iscsitest.LoginOptions{InitiatorName: ini, TargetName: iqn,
		CHAP: &login.Credentials{User: chap.User, Secret: chap.Secret, MutualUser: chap.MutualUser, MutualSecret: chap.MutualSecret}}); err != nil {
		t.Fatalf("CHAP login with the secret stored encrypted: %v", err)
	}
	stop()
	if err := <-ran; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestNodeEmbeddedEtcdTLS runs the embedded server with a certificate and
// client-certificate authentication: the node reaches it with its own
// certificate, a client without one is refused.
func TestNodeEmbeddedEtcdTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an etcd server")
	}
	pki, err := clustertest.NewTLSFiles(filepath.Join(t.TempDir(), "pki"))
	if err != nil {
		t.Fatal(err)
	}
	cport, err := clustertest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	pport, err := clustertest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	iport, err := clustertest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	client := "127.0.0.1:" + strconv.Itoa(cport)
	n := newTestNode(t, Options{Endpoints: []string{client}, EmbeddedDir: t.TempDir(),
		EmbeddedPeer: "127.0.0.1:" + strconv.Itoa(pport), Gateway: "gw-a", LeaseTTL: 2 * time.Second,
		EmbeddedCert: pki.ServerCert, EmbeddedKey: pki.ServerKey, EmbeddedClientCA: pki.CA,
		Etcd: cluster.Security{CACert: pki.CA, Cert: pki.ClientCert, Key: pki.ClientKey}})
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	ran := make(chan error, 1)
	go func() { ran <- n.Run(ctx) }()
	select {
	case <-n.Ready():
	case err := <-ran:
		t.Fatalf("Run: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("embedded etcd not ready")
	}
	if _, err := n.Store().Apply(ctx, cluster.PutGateway(cluster.Gateway{Name: "gw-a",
		Portals: []string{"127.0.0.1:" + strconv.Itoa(iport)}})); err != nil {
		t.Fatal(err)
	}
	waitRegistered(t, n, ran)

	for name, sec := range map[string]cluster.Security{
		"no client certificate": {CACert: pki.CA},
		"another CA":            {CACert: pki.CA, Cert: pki.OtherClientCert, Key: pki.OtherClientKey},
	} {
		cfg, err := cluster.NewClientConfig([]string{"https://" + client}, sec)
		if err != nil {
			t.Fatal(err)
		}
		if cli, err := cluster.Dial(cfg); err == nil || !strings.Contains(err.Error(), "client certificate") {
			if err == nil {
				cli.Close()
			}
			t.Fatalf("%s: Dial: %v", name, err)
		}
	}
	cfg, err := cluster.NewClientConfig([]string{client}, cluster.Security{})
	if err != nil {
		t.Fatal(err)
	}
	if cli, err := cluster.Dial(cfg); err == nil || !strings.Contains(err.Error(), "speaks TLS") {
		if err == nil {
			cli.Close()
		}
		t.Fatalf("plain HTTP: Dial: %v", err)
	}
	stop()
	if err := <-ran; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// waitRegistered waits until the node holds its lease and applied a
// configuration.
func waitRegistered(t *testing.T, n *Node, ran <-chan error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for s := n.Status(); !s.Etcd.LeaseHeld || s.Applied.Revision == 0 || !s.Applied.Complete; s = n.Status() {
		select {
		case err := <-ran:
			t.Fatalf("Run: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not registered: %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
