package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
)

// Security is how an etcd client checks the server and proves who it is:
// the part of an etcd connection that rbdgw, rbdgw-admin and the node share
// (docs/operations.md, "etcd security").
type Security struct {
	// CACert is a PEM file of the CAs that sign the etcd servers'
	// certificates; the system's CAs when empty. Used with https endpoints.
	CACert string
	// Cert and Key are the client certificate and its key (PEM), for etcd
	// servers that require client certificates (--client-cert-auth).
	Cert, Key string
	// Username and Password authenticate to etcd when its authentication
	// is enabled. Never from a command line: see ReadEtcdAuth.
	Username, Password string
	// Insecure accepts plain-HTTP endpoints that are not on loopback.
	Insecure bool
}

// usesTLS reports whether the security settings only make sense over TLS.
func (s Security) usesTLS() bool { return s.CACert != "" || s.Cert != "" || s.Key != "" }

// NewClientConfig checks endpoints against sec and loads its files. An
// endpoint without a scheme gets https:// when a CA or a client certificate
// is given, http:// otherwise. It refuses plain HTTP to an address that is
// not loopback unless sec.Insecure, certificates with plain-HTTP endpoints
// (they would not be used), and a user without a password.
func NewClientConfig(endpoints []string, sec Security) (ClientConfig, error) {
	eps, err := normalizeEndpoints(endpoints, sec.usesTLS())
	if err != nil {
		return ClientConfig{}, err
	}
	cfg := ClientConfig{Endpoints: eps, Username: sec.Username, Password: sec.Password, AllowInsecure: sec.Insecure}
	if (sec.Username == "") != (sec.Password == "") {
		return ClientConfig{}, errors.New("etcd authentication needs both a user and a password")
	}
	if (sec.Cert == "") != (sec.Key == "") {
		return ClientConfig{}, errors.New("etcd client certificate: give both -etcd-cert and -etcd-key")
	}
	if !strings.HasPrefix(eps[0], "https://") {
		if sec.usesTLS() {
			return ClientConfig{}, fmt.Errorf("etcd endpoint %s is plain HTTP: -etcd-cacert, -etcd-cert and -etcd-key need https:// endpoints", eps[0])
		}
		return cfg, checkEndpoints(cfg)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if sec.CACert != "" {
		pem, err := os.ReadFile(sec.CACert)
		if err != nil {
			return ClientConfig{}, fmt.Errorf("etcd CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return ClientConfig{}, fmt.Errorf("etcd CA %s: no PEM certificate in it", sec.CACert)
		}
		tc.RootCAs = pool
	}
	if sec.Cert != "" {
		pair, err := tls.LoadX509KeyPair(sec.Cert, sec.Key)
		if err != nil {
			return ClientConfig{}, fmt.Errorf("etcd client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	cfg.TLS = tc
	return cfg, checkEndpoints(cfg)
}

// normalizeEndpoints adds the scheme to endpoints without one and drops
// empty ones.
func normalizeEndpoints(endpoints []string, tlsDefault bool) ([]string, error) {
	var out []string
	for _, e := range endpoints {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		if !strings.Contains(e, "://") {
			if tlsDefault {
				e = "https://" + e
			} else {
				e = "http://" + e
			}
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		return nil, errors.New("cluster: no etcd endpoints")
	}
	return out, nil
}

// checkEndpoints enforces the rules of Dial on normalized endpoints.
func checkEndpoints(cfg ClientConfig) error {
	var scheme string
	for _, e := range cfg.Endpoints {
		u, err := url.Parse(e)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return fmt.Errorf("etcd endpoint %q: want host:port, http://host:port or https://host:port", e)
		}
		if scheme != "" && u.Scheme != scheme {
			return fmt.Errorf("etcd endpoints %v mix http and https", cfg.Endpoints)
		}
		scheme = u.Scheme
		if u.Scheme == "http" && !cfg.AllowInsecure && !IsLoopbackHost(u.Hostname()) {
			return fmt.Errorf("etcd endpoint %s is plain HTTP and not on loopback: etcd traffic (CHAP secrets included) would cross the network unprotected; "+
				"use https:// with -etcd-cacert (and -etcd-cert/-etcd-key or a user), or give -etcd-insecure to accept it", e)
		}
	}
	if scheme == "http" && cfg.TLS != nil {
		return fmt.Errorf("etcd endpoints %v are plain HTTP but a TLS configuration is given: use https://", cfg.Endpoints)
	}
	return nil
}

// IsLoopbackHost reports whether host (a name or an address, without
// port) is this machine's loopback: "localhost" or a loopback address.
// Other names are not resolved: a name that resolves to loopback today may
// not tomorrow.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// Environment variables that ReadEtcdAuth reads.
const (
	EnvEtcdUser     = "RBDGW_ETCD_USER"
	EnvEtcdPassword = "RBDGW_ETCD_PASSWORD"
)

// ReadEtcdAuth returns the etcd user and password: from file when it is
// given ("user:password" on one line, or the user on the first line and
// the password on the second), else from the environment
// (RBDGW_ETCD_USER, RBDGW_ETCD_PASSWORD; getenv is os.Getenv outside
// tests). Both empty means no authentication. Errors never contain the
// password.
func ReadEtcdAuth(file string, getenv func(string) string) (user, password string, err error) {
	if file == "" {
		user, password = getenv(EnvEtcdUser), getenv(EnvEtcdPassword)
		if (user == "") != (password == "") {
			return "", "", fmt.Errorf("etcd authentication: set both %s and %s", EnvEtcdUser, EnvEtcdPassword)
		}
		return user, password, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", "", fmt.Errorf("etcd authentication: %w", err)
	}
	text := strings.TrimRight(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
	if first, second, two := strings.Cut(text, "\n"); two {
		if strings.Contains(second, "\n") {
			return "", "", fmt.Errorf("etcd authentication file %s: want \"user:password\" or two lines, user and password", file)
		}
		user, password = first, second
	} else {
		var ok bool
		if user, password, ok = strings.Cut(text, ":"); !ok {
			return "", "", fmt.Errorf("etcd authentication file %s: want \"user:password\" or two lines, user and password", file)
		}
	}
	if user == "" || password == "" {
		return "", "", fmt.Errorf("etcd authentication file %s: empty user or password", file)
	}
	return user, password, nil
}
