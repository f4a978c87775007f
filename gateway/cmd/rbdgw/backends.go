package main

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/rbdgw/rbdgw/gateway/config"
	"github.com/rbdgw/rbdgw/gateway/node"
	"github.com/rbdgw/rbdgw/rbdbackend"
)

// backends opens disk images by backend name. The rados connection is made
// on the first rbd disk and shared by all of them (one client per gateway
// process, so one address to fence). It is the node.Backends of cluster
// mode.
type backends struct {
	log      *slog.Logger
	cephConf string
	cephID   string

	mu  sync.Mutex
	rbd rbdConnection
}

// rbdConnection is the process's librbd client (see backends_rbd.go).
type rbdConnection interface {
	open(pool, image string, size int64) (rbdbackend.Image, error)
	// The client as fencing sees it (node.CephClient).
	ClientAddr() string
	Fenced() bool
	Fence(addr string) error
	OnFenced(fn func(addr string))
	Reconnect() error
	close()
}

func newBackends(log *slog.Logger, cephConf, cephID string) *backends {
	return &backends{log: log, cephConf: cephConf, cephID: cephID}
}

var _ node.Backends = (*backends)(nil)

// Open opens a disk's image.
func (b *backends) Open(d config.Disk) (rbdbackend.Image, error) {
	switch d.Backend {
	case "memory":
		return rbdbackend.NewMemoryImage(d.Size), nil
	case "file":
		return rbdbackend.OpenFileImage(d.Path, rbdbackend.FileOptions{Size: d.Size, ReadOnly: d.ReadOnly})
	case "rbd":
		conn, err := b.connect()
		if err != nil {
			return nil, err
		}
		return conn.open(d.Pool, d.Image, d.Size)
	}
	return nil, fmt.Errorf("unknown backend %q", d.Backend)
}

// Ceph returns the rados connection (node.Backends), making it on first use.
func (b *backends) Ceph() (node.CephClient, error) {
	conn, err := b.connect()
	if err != nil {
		return nil, err
	}
	return conn, nil
}

// connect returns the rados connection, making it on first use.
func (b *backends) connect() (rbdConnection, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rbd == nil {
		conn, err := connectRBD(b.log, b.cephConf, b.cephID)
		if err != nil {
			return nil, err
		}
		b.rbd = conn
	}
	return b.rbd, nil
}

// Close closes the rados connection.
func (b *backends) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rbd != nil {
		b.rbd.close()
		b.rbd = nil
	}
}
