package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rbdgw/rbdgw/gateway/internal/clustertest"
)

// startTLSEtcd runs etcd with client-certificate authentication
// (--client-cert-auth, --trusted-ca-file) on loopback.
func startTLSEtcd(t *testing.T) (*clustertest.Etcd, *clustertest.TLSFiles) {
	t.Helper()
	return clustertest.StartForTest(t, true)
}

// Against etcd with client-certificate auth, a client with the CA and a
// certificate works, and every wrong configuration fails at Dial with the
// reason, instead of gRPC retrying in silence.
func TestDialClientCertAuth(t *testing.T) {
	e, pki := startTLSEtcd(t)
	hostPort := strings.TrimPrefix(e.Endpoint(), "https://")
	good := Security{CACert: pki.CA, Cert: pki.ClientCert, Key: pki.ClientKey}
	tests := []struct {
		name     string
		endpoint string
		sec      Security
		err      string // "" for success
	}{
		{"certificates", e.Endpoint(), good, ""},
		{"certificates, no scheme", hostPort, good, ""},
		{"localhost", "https://localhost:" + strings.Split(hostPort, ":")[1], good, ""},
		{"no client certificate", e.Endpoint(), Security{CACert: pki.CA}, "requires a client certificate"},
		{"certificate of another CA", e.Endpoint(), Security{CACert: pki.CA, Cert: pki.OtherClientCert, Key: pki.OtherClientKey}, "requires a client certificate"},
		{"server CA unknown", e.Endpoint(), Security{Cert: pki.ClientCert, Key: pki.ClientKey}, "certificate signed by unknown authority"},
		{"plain http", hostPort, Security{}, "the server speaks TLS"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := NewClientConfig([]string{tc.endpoint}, tc.sec)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			cli, err := Dial(cfg)
			if tc.err != "" {
				if err == nil {
					cli.Close()
				}
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Dial: %v, want an error about %q", err, tc.err)
				}
				if d := time.Since(start); d > 3*time.Second {
					t.Fatalf("refused after %v", d)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := cli.Put(ctx, "/tls-test/"+tc.name, "x"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// etcd's user authentication over TLS: the user and password come from the
// configuration; a wrong password fails at Dial.
func TestDialPasswordAuth(t *testing.T) {
	e, pki := startTLSEtcd(t)
	certs := Security{CACert: pki.CA, Cert: pki.ClientCert, Key: pki.ClientKey}
	admin := dialSec(t, e.Endpoint(), certs)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The client certificate's CN is "root"; with auth enabled etcd takes
	// the user from the certificate unless a password is given.
	if _, err := admin.UserAdd(ctx, "root", "rootpw-123"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.AuthEnable(ctx); err != nil {
		t.Fatal(err)
	}
	withPassword := certs
	withPassword.Username, withPassword.Password = "root", "rootpw-123"
	cli := dialSec(t, e.Endpoint(), withPassword)
	if _, err := cli.Put(ctx, "/auth-test", "x"); err != nil {
		t.Fatal(err)
	}
	wrong := certs
	wrong.Username, wrong.Password = "root", "wrong-password"
	cfg, err := NewClientConfig([]string{e.Endpoint()}, wrong)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := Dial(cfg); err == nil || !strings.Contains(err.Error(), "authentication failed") || strings.Contains(err.Error(), "wrong-password") {
		if err == nil {
			c.Close()
		}
		t.Fatalf("wrong password: %v", err)
	}
}

// The store through a TLS connection with a secret key: what etcd holds is
// encrypted, what the store reads is plain, and a store without the key
// reports the records as damaged.
func TestStoreSecretsAtRest(t *testing.T) {
	e, pki := startTLSEtcd(t)
	certs := Security{CACert: pki.CA, Cert: pki.ClientCert, Key: pki.ClientKey}
	cli := dialSec(t, e.Endpoint(), certs)
	key := testKey(t, 7)
	store := newStore(t, cli, Options{Prefix: "/secrets/", SecretKey: key})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := store.Apply(ctx,
		PutGateway(Gateway{Name: "gw1", Portals: []string{"127.0.0.1:3260"}}),
		PutTarget(Target{IQN: tIQN, Gateways: []string{"gw1"}, CHAP: &targetCHAP}),
		PutHost(Host{Target: tIQN, Initiator: ini1, CHAP: &hostCHAP}),
		PutDiscoveryAuth(discoCHAP),
	); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(ctx, "/secrets/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		for _, s := range []string{hostCHAP.Secret, hostCHAP.MutualSecret, targetCHAP.Secret, discoCHAP.Secret} {
			if strings.Contains(string(kv.Value), s) {
				t.Fatalf("%s holds a secret in plain text: %s", kv.Key, kv.Value)
			}
		}
	}
	snap, _, err := store.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Damaged) != 0 || *snap.Hosts[tIQN][ini1].CHAP != hostCHAP || *snap.DiscoveryAuth != discoCHAP {
		t.Fatalf("read back: %v", snap.Damaged)
	}
	keyless := newStore(t, cli, Options{Prefix: "/secrets/"})
	snap, _, err = keyless.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Damaged) != 3 || snap.Gateways["gw1"].Name != "gw1" {
		t.Fatalf("without the key: damaged %v", snap.Damaged)
	}
	if _, err := keyless.Apply(ctx, PutDiscoveryAuth(discoCHAP)); !errors.Is(err, ErrSecretKey) {
		t.Fatalf("keyless plain write into an encrypted cluster: %v", err)
	}
}

func dialSec(t *testing.T, endpoint string, sec Security) *clientv3.Client {
	t.Helper()
	cfg, err := NewClientConfig([]string{endpoint}, sec)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := Dial(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}
