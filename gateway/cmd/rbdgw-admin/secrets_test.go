package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/config"
	"github.com/rbdgw/rbdgw/gateway/internal/clustertest"
)

func TestCHAPFlags(t *testing.T) {
	dir := t.TempDir()
	file := func(content string) string {
		// The name must not look like a secret: the errors name the file.
		f, err := os.CreateTemp(dir, "chapfile")
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(content)
		f.Close()
		return f.Name()
	}
	secret, mutual := file("host1secret12\n"), file("tgt1secret123\r\n")
	prompted := func(what string) (string, error) {
		if strings.HasPrefix(what, "mutual") {
			return "promptmutual1", nil
		}
		return "promptsecret1", nil
	}
	tests := []struct {
		name     string
		args     []string
		stdin    string
		prompt   func(string) (string, error)
		want     *config.CHAP
		err      string // in the error
		warn     bool   // a warning about a secret on the command line
		noSecret bool   // the error must not show the secret
	}{
		{"none", nil, "", nil, nil, "", false, false},
		{"files", []string{"-chap-user", "host1", "-chap-secret-file", secret, "-chap-mutual-user", "tgt1", "-chap-mutual-secret-file", mutual},
			"", nil, &config.CHAP{User: "host1", Secret: "host1secret12", MutualUser: "tgt1", MutualSecret: "tgt1secret123"}, "", false, false},
		{"stdin, both", []string{"-chap-user", "host1", "-chap-secret-file", "-", "-chap-mutual-user", "tgt1", "-chap-mutual-secret-file", "-"},
			"stdinsecret12\nstdinmutual12\n", nil, &config.CHAP{User: "host1", Secret: "stdinsecret12", MutualUser: "tgt1", MutualSecret: "stdinmutual12"}, "", false, false},
		{"stdin without newline", []string{"-chap-user", "host1", "-chap-secret-file", "-"},
			"stdinsecret12", nil, &config.CHAP{User: "host1", Secret: "stdinsecret12"}, "", false, false},
		{"stdin too short", []string{"-chap-user", "host1", "-chap-secret-file", "-", "-chap-mutual-user", "tgt1", "-chap-mutual-secret-file", "-"},
			"stdinsecret12\n", nil, nil, "mutual CHAP secret of tgt1 from standard input: no line left", false, false},
		{"prompt", []string{"-chap-user", "host1", "-chap-mutual-user", "tgt1"},
			"", prompted, &config.CHAP{User: "host1", Secret: "promptsecret1", MutualUser: "tgt1", MutualSecret: "promptmutual1"}, "", false, false},
		{"no terminal, no file", []string{"-chap-user", "host1"}, "", nil, nil, "not a terminal", false, false},
		{"legacy", []string{"-chap", "host1:host1secret12"}, "", nil, &config.CHAP{User: "host1", Secret: "host1secret12"}, "", true, false},
		{"legacy and new", []string{"-chap", "host1:host1secret12", "-chap-user", "h"}, "", nil, nil, "exclude", false, true},
		{"file without user", []string{"-chap-secret-file", secret}, "", nil, nil, "need -chap-user", false, false},
		{"mutual file without mutual user", []string{"-chap-user", "h", "-chap-secret-file", secret, "-chap-mutual-secret-file", mutual},
			"", nil, nil, "needs -chap-mutual-user", false, false},
		{"two-line file", []string{"-chap-user", "h", "-chap-secret-file", file("a-secret-1234\nmore\n")}, "", nil, nil, "one line", false, true},
		{"empty file", []string{"-chap-user", "h", "-chap-secret-file", file("\n")}, "", nil, nil, "one line", false, false},
		{"missing file", []string{"-chap-user", "h", "-chap-secret-file", filepath.Join(dir, "none")}, "", nil, nil, "no such file", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var warn strings.Builder
			a := &admin{errOut: &warn, in: strings.NewReader(tc.stdin), prompt: tc.prompt}
			fs := newFlags("host put")
			var cf chapFlags
			cf.register(fs, true)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			got, err := cf.resolve(a)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one about %q", err, tc.err)
				}
				if tc.noSecret && (strings.Contains(err.Error(), "host1secret12") || strings.Contains(err.Error(), "a-secret-1234")) {
					t.Fatalf("error shows the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if tc.warn != strings.Contains(warn.String(), "warning") {
				t.Fatalf("warning %q", warn.String())
			}
			if strings.Contains(warn.String(), "host1secret12") {
				t.Fatal("the warning shows the secret")
			}
		})
	}
}

func TestSecretKeyCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret.key")
	var b strings.Builder
	// No etcd is needed: the endpoint is not even valid.
	if err := run([]string{"-etcd", "192.0.2.1:1", "secret-key", "create", path}, &b); err != nil {
		t.Fatal(err)
	}
	k, err := cluster.LoadSecretKey(path)
	if err != nil || !strings.Contains(b.String(), k.ID()) {
		t.Fatalf("%q: %v", b.String(), err)
	}
	if err := run([]string{"secret-key", "create", path}, &b); err == nil {
		t.Fatal("an existing key file was overwritten")
	}
}

// rbdgw-admin against etcd with client-certificate auth: refused without
// its certificate (and over plain HTTP off loopback), working with it;
// CHAP secrets from a file, encrypted with the key file, migrated.
func TestAdminTLSAndSecretKey(t *testing.T) {
	e, pki := clustertest.StartForTest(t, true)
	const prefix = "/admin-tls/"
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "secret.key")
	key, err := cluster.CreateSecretKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	tlsArgs := []string{"-etcd", e.Endpoint(), "-etcd-cacert", pki.CA, "-etcd-cert", pki.ClientCert, "-etcd-key", pki.ClientKey}
	cmd := func(extra []string, args ...string) (string, error) {
		var b strings.Builder
		err := run(append(append(append([]string{"-etcd-prefix", prefix, "-timeout", "20s"}, tlsArgs...), extra...), args...), &b)
		return b.String(), err
	}
	withKey := []string{"-secret-key-file", keyFile}

	// Refused without the certificate, and over plain HTTP off loopback.
	var b strings.Builder
	if err := run([]string{"-etcd", e.Endpoint(), "-etcd-cacert", pki.CA, "-etcd-prefix", prefix, "show"}, &b); err == nil ||
		!strings.Contains(err.Error(), "client certificate") {
		t.Fatalf("without a client certificate: %v", err)
	}
	if err := run([]string{"-etcd", "192.0.2.1:2379", "show"}, &b); err == nil || !strings.Contains(err.Error(), "-etcd-insecure") {
		t.Fatalf("plain HTTP off loopback: %v", err)
	}

	// A plain secret first (no key file), then encrypted ones.
	secretFile := filepath.Join(dir, "host.secret")
	if err := os.WriteFile(secretFile, []byte("host1secret12\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const iqn = "iqn.2024-01.io.test:t1"
	for _, c := range [][]string{
		{"gateway", "put", "gw-a", "-portal", "127.0.0.1:3260"},
		{"target", "put", iqn, "-gateway", "gw-a"},
	} {
		if out, err := cmd(nil, c...); err != nil {
			t.Fatalf("%v: %v %s", c, err, out)
		}
	}
	if out, err := cmd(nil, "host", "put", iqn, "iqn.2024-01.io.test:h0", "-chap-user", "h0", "-chap-secret-file", secretFile); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if out, err := cmd(withKey, "host", "put", iqn, "iqn.2024-01.io.test:h1", "-chap-user", "h1", "-chap-secret-file", secretFile); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if out, err := cmd(withKey, "discovery-auth", "put", "-chap-user", "disco", "-chap-secret-file", secretFile); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	status := func(extra []string) secretStatus {
		t.Helper()
		out, err := cmd(extra, "secret-key", "status")
		if err != nil {
			t.Fatalf("%v %s", err, out)
		}
		var st secretStatus
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return st
	}
	if st := status(withKey); st.Key != key.ID() || st.Plain != 1 || st.Encrypted[key.ID()] != 2 || len(st.Undecryptable) != 0 {
		t.Fatalf("status %+v", st)
	}
	// Without the key: the encrypted records are undecryptable, and no
	// secret may be written in plain text any more.
	if st := status(nil); st.Plain != 1 || len(st.Undecryptable) != 2 {
		t.Fatalf("status without the key %+v", st)
	}
	if _, err := cmd(nil, "host", "put", iqn, "iqn.2024-01.io.test:h2", "-chap-user", "h2", "-chap-secret-file", secretFile); err == nil ||
		!strings.Contains(err.Error(), "-secret-key-file") {
		t.Fatalf("plain write into an encrypted cluster: %v", err)
	}
	// show (with the key) still masks the secrets.
	if out, err := cmd(withKey, "show"); err != nil || strings.Contains(out, "host1secret12") || strings.Contains(out, "enc:v1") {
		t.Fatalf("show: %v %s", err, out)
	}

	// migrate encrypts the plain record; -plain turns encryption off.
	if out, err := cmd(withKey, "secret-key", "migrate"); err != nil || !strings.Contains(out, "1 records rewritten") {
		t.Fatalf("migrate: %v %s", err, out)
	}
	if st := status(withKey); st.Plain != 0 || st.Encrypted[key.ID()] != 3 {
		t.Fatalf("after migrate %+v", st)
	}
	raw := etcdValues(t, pki, e.Endpoint(), prefix)
	if strings.Contains(raw, "host1secret12") {
		t.Fatalf("a secret in plain text after migrate:\n%s", raw)
	}
	if out, err := cmd(withKey, "secret-key", "migrate", "-plain"); err != nil || !strings.Contains(out, "3 records rewritten") {
		t.Fatalf("migrate -plain: %v %s", err, out)
	}
	if st := status(nil); st.Plain != 3 || len(st.Encrypted) != 0 || len(st.Undecryptable) != 0 {
		t.Fatalf("after migrate -plain %+v", st)
	}
	if _, err := cmd(nil, "secret-key", "migrate"); !errors.Is(err, errUsage) {
		t.Fatalf("migrate without a key: %v", err)
	}
}

// etcdValues returns every value under prefix, one a line.
func etcdValues(t *testing.T, pki *clustertest.TLSFiles, endpoint, prefix string) string {
	t.Helper()
	cfg, err := cluster.NewClientConfig([]string{endpoint}, cluster.Security{CACert: pki.CA, Cert: pki.ClientCert, Key: pki.ClientKey})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := cluster.Dial(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	resp, err := cli.Get(context.Background(), prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, kv := range resp.Kvs {
		b.Write(kv.Value)
		b.WriteByte('\n')
	}
	return b.String()
}
