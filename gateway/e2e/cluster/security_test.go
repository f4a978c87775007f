package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rbdgw/rbdgw/gateway/cluster"
)

// The suite's etcd requires client certificates (--client-cert-auth): the
// gateways of every test start and serve with theirs. Without a
// certificate, over plain HTTP, or plain HTTP off loopback, a gateway and
// rbdgw-admin refuse to start and say why.
func TestEtcdClientCertificates(t *testing.T) {
	c := newCluster(t, 1)
	a := c.gws[0]
	if out, err := iscsiLs(a.portal, "iqn.2024-01.io.test:tls-host", "", ""); err != nil || !strings.Contains(out, "Lun:0") {
		t.Fatalf("gw-a with certificates: %v\n%s", err, out)
	}
	base := []string{"-etcd-prefix", c.prefix, "-gateway", "gw-x", "-ceph-conf", env.cephConf, "-api", "off"}
	for _, tc := range []struct {
		name string
		etcd []string
		want string
	}{
		{"no client certificate", []string{"-etcd", etcdEndpoint(), "-etcd-cacert", env.pki.CA}, "client certificate"},
		{"certificate of another CA", []string{"-etcd", etcdEndpoint(), "-etcd-cacert", env.pki.CA,
			"-etcd-cert", env.pki.OtherClientCert, "-etcd-key", env.pki.OtherClientKey}, "client certificate"},
		{"plain HTTP", []string{"-etcd", etcdEndpoint()}, "speaks TLS"},
		{"plain HTTP off loopback", []string{"-etcd", "192.0.2.1:2379"}, "-etcd-insecure"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			out, err := exec.CommandContext(ctx, filepath.Join(env.bin, "rbdgw"), append(tc.etcd, base...)...).CombinedOutput()
			if err == nil || ctx.Err() != nil || !strings.Contains(string(out), tc.want) {
				t.Fatalf("rbdgw: %v after %v, want a refusal about %q:\n%s", err, time.Since(start), tc.want, out)
			}
			t.Logf("rbdgw refused in %v: %s", time.Since(start).Round(time.Millisecond), lastLine(string(out)))
			out, err = exec.CommandContext(ctx, filepath.Join(env.bin, "rbdgw-admin"), append(tc.etcd, "-etcd-prefix", c.prefix, "show")...).CombinedOutput()
			if err == nil || !strings.Contains(string(out), tc.want) {
				t.Fatalf("rbdgw-admin: %v, want a refusal about %q:\n%s", err, tc.want, out)
			}
		})
	}
}

// CHAP secrets encrypted at rest: gw-a and rbdgw-admin have the key file,
// gw-b has not. etcd holds only ciphertext; gw-a admits the host with its
// secret; gw-b cannot decrypt it and refuses the host, with or without
// CHAP, although the target admits any initiator (it fails closed).
func TestCHAPSecretsAtRest(t *testing.T) {
	c := newCluster(t, 2)
	a, b := c.gws[0], c.gws[1]
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "secret.key")
	if out := c.admin("secret-key", "create", keyFile); !strings.Contains(out, "ok (key ") {
		t.Fatalf("secret-key create: %s", out)
	}
	a.stop()
	a.args = append(a.args, "-secret-key-file", keyFile)
	a.start()
	c.waitReady()

	const host, user, secret = "iqn.2024-01.io.test:enc-host", "encuser", "enc-secret-12"
	secretFile := filepath.Join(dir, "chap")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.admin("-secret-key-file", keyFile, "host", "put", c.iqn, host, "-lun", "0", "-chap-user", user, "-chap-secret-file", secretFile)

	// What etcd holds.
	cfg, err := cluster.NewClientConfig([]string{env.etcd.Endpoint()},
		cluster.Security{CACert: env.pki.CA, Cert: env.pki.ClientCert, Key: env.pki.ClientKey})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := cluster.Dial(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	resp, err := cli.Get(context.Background(), c.prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, kv := range resp.Kvs {
		if strings.Contains(string(kv.Value), secret) {
			t.Fatalf("%s holds the CHAP secret in plain text", kv.Key)
		}
		found = found || strings.Contains(string(kv.Value), `"secret":"enc:v1:`)
	}
	if !found {
		t.Fatal("no encrypted secret in etcd")
	}

	// One portal at a time (iscsi-ls would log in to every portal that
	// discovery lists, gw-b's included).
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out, err := chapInq(a.portal, c.iqn, host, user, secret)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gw-a (with the key) did not admit the host with its secret: %v\n%s", err, out)
		}
	}
	if out, err := chapInq(a.portal, c.iqn, host, "", ""); err == nil {
		t.Fatalf("gw-a admitted the host without CHAP:\n%s", out)
	}
	// gw-b has applied the change (the host record is damaged there) and
	// admits the host neither way.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if log, _ := os.ReadFile(b.log); strings.Contains(string(log), "cannot be decrypted") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("gw-b did not report the undecryptable record")
		}
	}
	if out, err := chapInq(b.portal, c.iqn, host, user, secret); err == nil {
		t.Fatalf("gw-b (no key) admitted the host:\n%s", out)
	}
	if out, err := chapInq(b.portal, c.iqn, host, "", ""); err == nil {
		t.Fatalf("gw-b (no key) admitted the host without CHAP:\n%s", out)
	}
	out := c.admin("-secret-key-file", keyFile, "secret-key", "status")
	if !strings.Contains(out, `"plain": 0`) || strings.Contains(out, "undecryptable") {
		t.Fatalf("secret-key status:\n%s", out)
	}
}

// chapInq sends INQUIRY to LUN 0 of target iqn through one portal, logging
// in as initiator with CHAP when user is set.
func chapInq(portal, iqn, initiator, user, secret string) (string, error) {
	url := fmt.Sprintf("iscsi://%s/%s/0", portal, iqn)
	if user != "" {
		url = fmt.Sprintf("iscsi://%s%%%s@%s/%s/0", user, secret, portal, iqn)
	}
	out, err := exec.Command("timeout", "20", "iscsi-inq", "-i", initiator, url).CombinedOutput()
	return string(out), err
}

func lastLine(s string) string {
	lines := trimLines(s)
	if len(lines) == 0 {
		return ""
	}
	return lines[len(lines)-1]
}
