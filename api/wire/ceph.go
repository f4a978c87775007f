//go:build pacific

// Package wire connects the REST API to the real parts of a gateway: Ceph
// through librbd, the tokens and audit log in etcd, and the status the
// gateways publish. The daemon builds an api.Options from it.
package wire

import (
	"errors"
	"fmt"

	"github.com/rbdgw/rbdgw/api"
	"github.com/rbdgw/rbdgw/api/model"
	"github.com/rbdgw/rbdgw/rbdbackend/rbd"
)

// Ceph is api.Ceph over a librbd client.
type Ceph struct{ C *rbd.Cluster }

var _ api.Ceph = Ceph{}

// cephErr maps the rbd package's errors onto the API's.
func cephErr(err error) error {
	if err == nil {
		return nil
	}
	var kind error
	switch {
	case errors.Is(err, rbd.ErrNotFound):
		kind = api.ErrCephNotFound
	case errors.Is(err, rbd.ErrExists):
		kind = api.ErrCephExists
	case errors.Is(err, rbd.ErrBusy), errors.Is(err, rbd.ErrHasSnapshots):
		kind = api.ErrCephBusy
	case errors.Is(err, rbd.ErrShrink):
		kind = api.ErrCephShrink
	case errors.Is(err, rbd.ErrInvalid):
		kind = api.ErrCephInvalid
	default:
		kind = api.ErrCephFailed
	}
	return fmt.Errorf("%w: %v", kind, err)
}

func (c Ceph) CreateImage(pool, image string, size int64, o api.ImageOptions) error {
	return cephErr(c.C.Create(pool, image, size, rbd.CreateOptions{Features: o.Features, DataPool: o.DataPool, ObjectSize: o.ObjectSize}))
}

func (c Ceph) ImageInfo(pool, image string) (api.ImageInfo, error) {
	info, err := c.C.Info(pool, image)
	if err != nil {
		return api.ImageInfo{}, cephErr(err)
	}
	return api.ImageInfo{Size: info.Size, Features: info.Features, LockOwners: info.LockOwners}, nil
}

func (c Ceph) ResizeImage(pool, image string, size int64) error {
	return cephErr(c.C.Resize(pool, image, size))
}

func (c Ceph) RemoveImage(pool, image string) error { return cephErr(c.C.Remove(pool, image)) }

func (c Ceph) ListImages(pool string) ([]string, error) {
	names, err := c.C.List(pool)
	return names, cephErr(err)
}

func (c Ceph) CreateSnapshot(pool, image, snap string) error {
	return cephErr(c.C.SnapshotCreate(pool, image, snap))
}

func (c Ceph) RemoveSnapshot(pool, image, snap string) error {
	return cephErr(c.C.SnapshotRemove(pool, image, snap))
}

func (c Ceph) ListSnapshots(pool, image string) ([]model.Snapshot, error) {
	snaps, err := c.C.SnapshotList(pool, image)
	if err != nil {
		return nil, cephErr(err)
	}
	out := make([]model.Snapshot, 0, len(snaps))
	for _, s := range snaps {
		out = append(out, model.Snapshot{Name: s.Name, ID: s.ID, Size: s.Size})
	}
	return out, nil
}

func (c Ceph) Health() (model.Cluster, error) {
	h, err := c.C.Health()
	if err != nil {
		return model.Cluster{}, cephErr(err)
	}
	out := model.Cluster{FSID: h.FSID, Health: h.Status, Checks: []model.HealthCheck{}, Mons: h.Mons,
		Quorum: len(h.Quorum), OSDs: h.OSDs, OSDsUp: h.OSDsUp, OSDsIn: h.OSDsIn}
	for _, ch := range h.Checks {
		out.Checks = append(out.Checks, model.HealthCheck{Name: ch.Name, Severity: ch.Severity, Summary: ch.Summary})
	}
	return out, nil
}

func (c Ceph) Pools() ([]model.Pool, error) {
	pools, err := c.C.Pools()
	if err != nil {
		return nil, cephErr(err)
	}
	out := make([]model.Pool, 0, len(pools))
	for _, p := range pools {
		mp := model.Pool{Name: p.Name, Type: p.Type, RBD: p.RBD, Stored: p.Stored, Used: p.Used, MaxAvail: p.MaxAvail}
		if p.Type == rbd.PoolErasure {
			mp.ECK, mp.ECM = p.ECK, p.ECM
		} else {
			mp.Size = p.Size
		}
		out = append(out, mp)
	}
	return out, nil
}
