package node

import (
	"log/slog"
	"time"

	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/config"
	"github.com/rbdgw/rbdgw/gateway/internal/alua"
	"github.com/rbdgw/rbdgw/rbdbackend"
)

// Defaults of Options.
const (
	DefaultEndpoint     = "127.0.0.1:2379"
	DefaultEmbeddedPeer = "127.0.0.1:2380"
	DefaultLeaseTTL     = 10 * time.Second
	DefaultStallTimeout = alua.DefaultStallTimeout
	// MinLeaseTTL is the shortest liveness lease accepted.
	MinLeaseTTL = 2 * time.Second
)

// Options configure a Node. Zero values take the defaults above.
type Options struct {
	// Endpoints are the etcd endpoints, "host:port" or URLs ("http://" is
	// added when no scheme is given, "https://" with TLS settings in Etcd
	// or EmbeddedCert).
	Endpoints []string
	// Etcd is how the node checks etcd and authenticates to it: CA, client
	// certificate, user and password, and whether plain HTTP off loopback
	// is accepted (cluster.NewClientConfig; checked by New).
	Etcd cluster.Security
	// SecretKey encrypts the CHAP secrets the node writes and decrypts
	// those it reads (nil: plain text; see cluster.SecretKey).
	SecretKey *cluster.SecretKey
	// Prefix is the cluster's key prefix (cluster.DefaultPrefix when empty).
	Prefix string
	// Gateway is this gateway's name in the cluster (the host name when
	// empty).
	Gateway string
	// EmbeddedDir, when set, makes the node run a single-member etcd server
	// with its data in EmbeddedDir/etcd, serving the one endpoint;
	// EmbeddedPeer is that server's peer address.
	EmbeddedDir, EmbeddedPeer string
	// EmbeddedCert and EmbeddedKey (PEM files) make the embedded server
	// serve https; with EmbeddedClientCA it also requires client
	// certificates signed by that CA (etcd's --client-cert-auth), and the
	// node's own client then needs Etcd.Cert and Etcd.Key.
	EmbeddedCert, EmbeddedKey, EmbeddedClientCA string
	// LeaseTTL is the liveness lease: a gateway silent this long is gone.
	LeaseTTL time.Duration
	// StallTimeout: how often a write waiting for the RBD lock looks at
	// its holder; only a holder of no live gateway is fenced.
	StallTimeout time.Duration
	// Version is the daemon's version, reported in the status and (its
	// first four characters) as the INQUIRY product revision.
	Version string
	// APIURL is where this gateway's REST API is reachable; it is
	// published for the other gateways and their clients. Empty when the
	// gateway serves no API.
	APIURL string
	// Backends opens disk images and holds the process's Ceph client.
	// Required.
	Backends Backends
	// Logger receives the node's logs (slog.Default() when nil).
	Logger *slog.Logger
}

// Backends opens the images of disks. Every disk of a cluster is an RBD
// image; the Ceph connection is shared by all of them, so that a gateway
// has one client address to fence.
type Backends interface {
	// Open opens a disk's image.
	Open(disk config.Disk) (rbdbackend.Image, error)
	// Ceph returns the Ceph client, connecting on first use.
	Ceph() (CephClient, error)
	// Close closes every connection; the node calls it once its sessions
	// and images are closed.
	Close()
}

// CephClient is the gateway's Ceph client, as fencing sees it.
type CephClient interface {
	// ClientAddr is the address other gateways put in the OSD blocklist.
	ClientAddr() string
	// Fenced reports that this client was blocklisted and is not
	// replaced yet.
	Fenced() bool
	// Fence puts a client address in the OSD blocklist.
	Fence(addr string) error
	// OnFenced makes the client report that it was blocklisted to fn
	// instead of replacing itself; Reconnect replaces it (new address,
	// every image reopened).
	OnFenced(fn func(addr string))
	Reconnect() error
}
