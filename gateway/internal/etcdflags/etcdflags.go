// Package etcdflags holds the command-line options of an etcd client that
// rbdgw and rbdgw-admin share: TLS files, the user and password (from a
// file or the environment, never from a flag), -etcd-insecure and the CHAP
// secret key file. Both turn them into the same cluster.Security, and every
// connection goes through cluster.Dial.
package etcdflags

import (
	"flag"
	"os"
	"strings"

	"github.com/rbdgw/rbdgw/gateway/cluster"
)

// Flags are the raw values.
type Flags struct {
	CACert, Cert, Key string
	AuthFile          string
	Insecure          bool
	SecretKeyFile     string
}

// Register defines the flags on fs; prefix starts every usage text (e.g.
// "cluster mode: ").
func (f *Flags) Register(fs *flag.FlagSet, prefix string) {
	fs.StringVar(&f.CACert, "etcd-cacert", "", prefix+"CA certificate (PEM) that signs the etcd servers' certificates; endpoints default to https:// with it")
	fs.StringVar(&f.Cert, "etcd-cert", "", prefix+"client certificate (PEM) for etcd's client-certificate authentication")
	fs.StringVar(&f.Key, "etcd-key", "", prefix+"key (PEM) of -etcd-cert")
	fs.StringVar(&f.AuthFile, "etcd-auth-file", "", prefix+"file with the etcd user and password (\"user:password\", or two lines); default: $"+cluster.EnvEtcdUser+" and $"+cluster.EnvEtcdPassword)
	fs.BoolVar(&f.Insecure, "etcd-insecure", false, prefix+"accept plain-HTTP etcd endpoints that are not on loopback")
	fs.StringVar(&f.SecretKeyFile, "secret-key-file", "", prefix+"key that encrypts CHAP secrets in etcd (rbdgw-admin secret-key create); the same file on every gateway and rbdgw-admin of the cluster")
}

// Security reads the user and password (from -etcd-auth-file, else from
// the environment through getenv) and returns the connection settings.
func (f *Flags) Security(getenv func(string) string) (cluster.Security, error) {
	user, password, err := cluster.ReadEtcdAuth(f.AuthFile, getenv)
	if err != nil {
		return cluster.Security{}, err
	}
	return cluster.Security{CACert: f.CACert, Cert: f.Cert, Key: f.Key,
		Username: user, Password: password, Insecure: f.Insecure}, nil
}

// ClientConfig checks endpoints (comma-separated) and the flags and
// returns what cluster.Dial takes. The environment is the process's.
func (f *Flags) ClientConfig(endpoints string) (cluster.ClientConfig, error) {
	sec, err := f.Security(os.Getenv)
	if err != nil {
		return cluster.ClientConfig{}, err
	}
	return cluster.NewClientConfig(SplitEndpoints(endpoints), sec)
}

// SecretKey loads -secret-key-file; nil without it.
func (f *Flags) SecretKey() (*cluster.SecretKey, error) {
	if f.SecretKeyFile == "" {
		return nil, nil
	}
	return cluster.LoadSecretKey(f.SecretKeyFile)
}

// SplitEndpoints splits a comma-separated list, dropping empty entries.
func SplitEndpoints(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}
