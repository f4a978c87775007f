package cluster

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rbdgw/rbdgw/gateway/internal/clustertest"
)

func TestNewClientConfig(t *testing.T) {
	pki, err := clustertest.NewTLSFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tlsFiles := Security{CACert: pki.CA, Cert: pki.ClientCert, Key: pki.ClientKey}
	tests := []struct {
		name      string
		endpoints []string
		sec       Security
		want      []string // normalized endpoints
		tls       bool     // a TLS configuration with a client certificate
		err       string   // part of the error
	}{
		{"loopback without scheme", []string{"127.0.0.1:2379"}, Security{}, []string{"http://127.0.0.1:2379"}, false, ""},
		{"localhost", []string{"http://localhost:2379"}, Security{}, []string{"http://localhost:2379"}, false, ""},
		{"ipv6 loopback", []string{"http://[::1]:2379"}, Security{}, []string{"http://[::1]:2379"}, false, ""},
		{"other 127/8 address", []string{"127.0.0.2:2379"}, Security{}, []string{"http://127.0.0.2:2379"}, false, ""},
		{"empty entries dropped", []string{" ", "127.0.0.1:2379", ""}, Security{}, []string{"http://127.0.0.1:2379"}, false, ""},
		{"plain http off loopback", []string{"10.0.0.10:2379"}, Security{}, nil, false, "-etcd-insecure"},
		{"plain http by name", []string{"http://etcd.example:2379"}, Security{}, nil, false, "not on loopback"},
		{"one of several off loopback", []string{"127.0.0.1:2379", "10.0.0.11:2379"}, Security{}, nil, false, "10.0.0.11"},
		{"plain http off loopback, insecure", []string{"10.0.0.10:2379"}, Security{Insecure: true}, []string{"http://10.0.0.10:2379"}, false, ""},
		{"tls files make https", []string{"10.0.0.10:2379"}, tlsFiles, []string{"https://10.0.0.10:2379"}, true, ""},
		{"https with CA only", []string{"https://10.0.0.10:2379"}, Security{CACert: pki.CA}, []string{"https://10.0.0.10:2379"}, false, ""},
		{"https with system CAs", []string{"https://etcd.example:2379"}, Security{}, []string{"https://etcd.example:2379"}, false, ""},
		{"tls files with http://", []string{"http://127.0.0.1:2379"}, tlsFiles, nil, false, "need https://"},
		{"mixed schemes", []string{"https://10.0.0.10:2379", "http://127.0.0.1:2379"}, Security{}, nil, false, "mix"},
		{"cert without key", []string{"https://10.0.0.10:2379"}, Security{CACert: pki.CA, Cert: pki.ClientCert}, nil, false, "-etcd-key"},
		{"key without cert", []string{"https://10.0.0.10:2379"}, Security{Key: pki.ClientKey}, nil, false, "-etcd-cert"},
		{"missing CA file", []string{"https://10.0.0.10:2379"}, Security{CACert: filepath.Join(t.TempDir(), "none.pem")}, nil, false, "etcd CA"},
		{"CA file without PEM", []string{"https://10.0.0.10:2379"}, Security{CACert: pki.ClientKey}, nil, false, "no PEM certificate"},
		{"key of another certificate", []string{"https://10.0.0.10:2379"}, Security{Cert: pki.ClientCert, Key: pki.OtherClientKey}, nil, false, "client certificate"},
		{"user without password", []string{"127.0.0.1:2379"}, Security{Username: "root"}, nil, false, "both a user and a password"},
		{"user and password", []string{"127.0.0.1:2379"}, Security{Username: "root", Password: "pw"}, []string{"http://127.0.0.1:2379"}, false, ""},
		{"no endpoints", []string{""}, Security{}, nil, false, "no etcd endpoints"},
		{"not a URL", []string{"ftp://127.0.0.1:2379"}, Security{}, nil, false, "want host:port"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := NewClientConfig(tc.endpoints, tc.sec)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cfg.Endpoints, tc.want) {
				t.Fatalf("endpoints %v, want %v", cfg.Endpoints, tc.want)
			}
			if https := strings.HasPrefix(tc.want[0], "https://"); https != (cfg.TLS != nil) {
				t.Fatalf("TLS %v for %v", cfg.TLS != nil, cfg.Endpoints)
			}
			if tc.tls && (cfg.TLS.RootCAs == nil || len(cfg.TLS.Certificates) != 1) {
				t.Fatalf("TLS without the CA or the client certificate: %+v", cfg.TLS)
			}
			if cfg.Username != tc.sec.Username || cfg.Password != tc.sec.Password || cfg.AllowInsecure != tc.sec.Insecure {
				t.Fatalf("config %+v from %+v", cfg, tc.sec)
			}
		})
	}
}

// Dial enforces the same rule for configurations built by hand.
func TestDialRefusesPlainHTTPOffLoopback(t *testing.T) {
	_, err := Dial(ClientConfig{Endpoints: []string{"192.0.2.1:2379"}})
	if err == nil || !strings.Contains(err.Error(), "-etcd-insecure") {
		t.Fatalf("Dial: %v", err)
	}
}

func TestIsLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.1.2.3": true, "::1": true, "[::1]": true, "localhost": true, "LOCALHOST": true,
		"": false, "0.0.0.0": false, "10.0.0.1": false, "::": false, "localhost.example": false, "etcd": false,
	} {
		if got := IsLoopbackHost(host); got != want {
			t.Errorf("IsLoopbackHost(%q) = %v", host, got)
		}
	}
}

func TestReadEtcdAuth(t *testing.T) {
	dir := t.TempDir()
	file := func(content string) string {
		f, err := os.CreateTemp(dir, "auth")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(content); err != nil {
			t.Fatal(err)
		}
		f.Close()
		return f.Name()
	}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	both := env(map[string]string{EnvEtcdUser: "envuser", EnvEtcdPassword: "envpw"})
	tests := []struct {
		name       string
		file       string
		getenv     func(string) string
		user, pass string
		err        string
	}{
		{"nothing", "", env(nil), "", "", ""},
		{"environment", "", both, "envuser", "envpw", ""},
		{"environment user only", "", env(map[string]string{EnvEtcdUser: "u"}), "", "", EnvEtcdPassword},
		{"one line", file("gw:s3cr:et\n"), env(nil), "gw", "s3cr:et", ""},
		{"one line without newline", file("gw:pw"), env(nil), "gw", "pw", ""},
		{"two lines", file("gw\npass:word\n"), env(nil), "gw", "pass:word", ""},
		{"two lines, CRLF", file("gw\r\npw\r\n"), env(nil), "gw", "pw", ""},
		{"file wins over environment", file("gw:pw"), both, "gw", "pw", ""},
		{"no separator", file("onlyuser\n"), env(nil), "", "", "user:password"},
		{"three lines", file("a\nb\nc\n"), env(nil), "", "", "two lines"},
		{"empty password", file("gw:\n"), env(nil), "", "", "empty"},
		{"missing file", filepath.Join(dir, "none"), env(nil), "", "", "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			user, pass, err := ReadEtcdAuth(tc.file, tc.getenv)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || user != tc.user || pass != tc.pass {
				t.Fatalf("got %q, %q, %v", user, pass, err)
			}
		})
	}
}
