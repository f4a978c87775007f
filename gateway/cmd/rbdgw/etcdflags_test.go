package main

import (
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/gateway/cluster"
)

// The etcd security flags reach the node options: user and password from
// the file, TLS files, the CHAP secret key.
func TestNodeOptionsEtcdSecurity(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	auth := filepath.Join(dir, "auth")
	if err := os.WriteFile(auth, []byte("gw-a:pass:word\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "secret.key")
	key, err := cluster.CreateSecretKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	f := clusterFlags{prefix: "/rbdgw/", gateway: "gw-a", leaseTTL: 10 * time.Second, stallTimeout: 3 * time.Second,
		etcd: "10.0.0.1:2379", embeddedCert: "s.pem", embeddedKey: "s-key.pem", embeddedClientCA: "ca.pem"}
	fs := flag.NewFlagSet("rbdgw", flag.ContinueOnError)
	f.etcdSecurity.Register(fs, "")
	if err := fs.Parse([]string{"-etcd-cacert", "ca.pem", "-etcd-cert", "c.pem", "-etcd-key", "k.pem",
		"-etcd-auth-file", auth, "-etcd-insecure", "-secret-key-file", keyFile}); err != nil {
		t.Fatal(err)
	}
	opts, err := nodeOptions(log, f, newBackends(log, "", ""))
	if err != nil {
		t.Fatal(err)
	}
	want := cluster.Security{CACert: "ca.pem", Cert: "c.pem", Key: "k.pem", Username: "gw-a", Password: "pass:word", Insecure: true}
	if opts.Etcd != want || opts.SecretKey == nil || opts.SecretKey.ID() != key.ID() ||
		opts.EmbeddedCert != "s.pem" || opts.EmbeddedKey != "s-key.pem" || opts.EmbeddedClientCA != "ca.pem" {
		t.Fatalf("options %+v", opts)
	}

	bad := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(bad, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.etcdSecurity.SecretKeyFile = bad
	if _, err := nodeOptions(log, f, newBackends(log, "", "")); err == nil || !strings.Contains(err.Error(), "-secret-key-file") {
		t.Fatalf("bad key file: %v", err)
	}
	f.etcdSecurity.SecretKeyFile = ""
	f.etcdSecurity.AuthFile = filepath.Join(dir, "missing")
	if _, err := nodeOptions(log, f, newBackends(log, "", "")); err == nil || !strings.Contains(err.Error(), "etcd authentication") {
		t.Fatalf("missing auth file: %v", err)
	}
}
