//go:build pacific

package main

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/rbdgw/rbdgw/rbdbackend"
	"github.com/rbdgw/rbdgw/rbdbackend/rbd"
)

// rbdClient embeds the cluster for ClientAddr, Fenced, OnFenced and
// Reconnect.
type rbdClient struct{ *rbd.Cluster }

// fenceExpiry is how long a client fenced by a takeover stays in the
// blocklist: far longer than any client outlives being fenced.
const fenceExpiry = time.Hour

// Fence puts addr in the OSD blocklist.
func (r *rbdClient) Fence(addr string) error { return r.Blocklist(addr, fenceExpiry) }

func connectRBD(log *slog.Logger, conf, id string) (rbdConnection, error) {
	c, err := rbd.Connect(rbd.Config{ConfPath: conf, User: id, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("connect to ceph: %w", err)
	}
	return &rbdClient{c}, nil
}

// open opens pool/image, creating it when it does not exist and a size is
// configured. Another gateway may create it at the same moment; then this
// one opens what the other created.
func (r *rbdClient) open(pool, image string, size int64) (rbdbackend.Image, error) {
	img, err := r.Open(pool, image)
	if err == nil {
		return img, nil
	}
	if size <= 0 || !errors.Is(err, rbd.ErrNotFound) {
		return nil, err
	}
	if err := r.Create(pool, image, size, rbd.CreateOptions{}); err != nil && !errors.Is(err, rbd.ErrExists) {
		return nil, fmt.Errorf("create %s/%s: %w", pool, image, err)
	}
	return r.Open(pool, image)
}

func (r *rbdClient) close() { r.Close() }
