//go:build pacific

package rbd

import (
	"cmp"
	"fmt"
	"math/bits"
	"slices"

	"github.com/ceph/go-ceph/rados"
	gorbd "github.com/ceph/go-ceph/rbd"
)

// DefaultFeatures are the features of a new image unless CreateOptions
// says otherwise (the same set as ceph-iscsi; exclusive-lock is what the
// gateway's failover needs).
var DefaultFeatures = []string{"layering", "exclusive-lock", "object-map", "fast-diff", "deep-flatten"}

// featureBits maps the feature names accepted at creation to their bits.
var featureBits = map[string]uint64{
	gorbd.FeatureNameLayering:      gorbd.FeatureLayering,
	gorbd.FeatureNameExclusiveLock: gorbd.FeatureExclusiveLock,
	gorbd.FeatureNameObjectMap:     gorbd.FeatureObjectMap,
	gorbd.FeatureNameFastDiff:      gorbd.FeatureFastDiff,
	gorbd.FeatureNameDeepFlatten:   gorbd.FeatureDeepFlatten,
	gorbd.FeatureNameJournaling:    gorbd.FeatureJournaling,
}

// FeatureMask converts feature names to a mask, rejecting unknown names.
func FeatureMask(names []string) (uint64, error) {
	var mask uint64
	for _, n := range names {
		bit, ok := featureBits[n]
		if !ok {
			return 0, fmt.Errorf("rbd: unknown image feature %q: %w", n, ErrInvalid)
		}
		mask |= bit
	}
	return mask, nil
}

// FeatureNames lists the names of the features in mask, sorted.
func FeatureNames(mask uint64) []string {
	fs := gorbd.FeatureSet(mask)
	names := fs.Names()
	slices.Sort(names)
	return names
}

// CreateOptions shape a new image.
type CreateOptions struct {
	// Features are feature names; nil means DefaultFeatures.
	Features []string
	// DataPool stores the data objects in another pool, typically an
	// erasure-coded one (it needs allow_ec_overwrites); the metadata stays
	// in the image's pool.
	DataPool string
	// ObjectSize is the RADOS object size: a power of two from 4 KiB to
	// 32 MiB, or 0 for 4 MiB.
	ObjectSize int64
}

// SnapshotInfo describes one snapshot.
type SnapshotInfo struct {
	ID   uint64
	Name string
	Size int64
}

// Watcher is a client that has the image open.
type Watcher struct {
	Addr   string
	ID     int64
	Cookie uint64
}

// ImageInfo describes an image.
type ImageInfo struct {
	Pool       string
	Name       string
	Size       int64
	ObjectSize int64
	Features   []string
	// LockOwners are the client addresses holding the exclusive lock.
	LockOwners []string
	// Watchers are the clients with the image open (gateways, qemu, ...).
	Watchers []Watcher
}

// withIOContext runs fn with an ioctx for pool on the current client.
func (c *Cluster) withIOContext(pool string, fn func(*rados.IOContext) error) error {
	return c.withConn(func(conn *rados.Conn, _ uint64) error {
		ioctx, err := conn.OpenIOContext(pool)
		if err != nil {
			return cephError("open pool", pool, err, ctxAdmin)
		}
		defer ioctx.Destroy()
		return fn(ioctx)
	})
}

// withImage runs fn on a short-lived handle of pool/name. Operations that
// need the exclusive lock while a gateway holds it are forwarded by librbd
// to that gateway (resize, snapshot create/remove) or refused (ErrBusy).
func (c *Cluster) withImage(pool, name string, readOnly bool, fn func(*gorbd.Image) error) error {
	return c.withIOContext(pool, func(ioctx *rados.IOContext) error {
		open := gorbd.OpenImage
		if readOnly {
			open = gorbd.OpenImageReadOnly
		}
		img, err := open(ioctx, name, gorbd.NoSnapshot)
		if err != nil {
			return cephError("open", pool+"/"+name, err, ctxAdmin)
		}
		defer img.Close()
		return fn(img)
	})
}

// Create creates pool/name with size bytes.
func (c *Cluster) Create(pool, name string, size int64, opts CreateOptions) error {
	spec := pool + "/" + name
	if size <= 0 {
		return fmt.Errorf("rbd: create %s: size %d: %w", spec, size, ErrInvalid)
	}
	names := opts.Features
	if names == nil {
		names = DefaultFeatures
	}
	mask, err := FeatureMask(names)
	if err != nil {
		return err
	}
	o := gorbd.NewRbdImageOptions()
	defer o.Destroy()
	if err := o.SetUint64(gorbd.ImageOptionFeatures, mask); err != nil {
		return cephError("create", spec, err, ctxAdmin)
	}
	if opts.ObjectSize != 0 {
		s := opts.ObjectSize
		if s < 4<<10 || s > 32<<20 || s&(s-1) != 0 {
			return fmt.Errorf("rbd: create %s: object size %d is not a power of two in [4 KiB, 32 MiB]: %w", spec, s, ErrInvalid)
		}
		if err := o.SetUint64(gorbd.ImageOptionOrder, uint64(bits.TrailingZeros64(uint64(s)))); err != nil {
			return cephError("create", spec, err, ctxAdmin)
		}
	}
	if opts.DataPool != "" {
		if err := o.SetString(gorbd.ImageOptionDataPool, opts.DataPool); err != nil {
			return cephError("create", spec, err, ctxAdmin)
		}
	}
	return c.withIOContext(pool, func(ioctx *rados.IOContext) error {
		return cephError("create", spec, gorbd.CreateImage(ioctx, name, uint64(size), o), ctxAdmin)
	})
}

// Remove deletes pool/name. It fails with ErrBusy while any client has the
// image open and with ErrHasSnapshots while it has snapshots.
func (c *Cluster) Remove(pool, name string) error {
	return c.withIOContext(pool, func(ioctx *rados.IOContext) error {
		return cephError("remove", pool+"/"+name, gorbd.RemoveImage(ioctx, name), ctxAdmin)
	})
}

// List returns the names of the images in pool.
func (c *Cluster) List(pool string) ([]string, error) {
	var names []string
	err := c.withIOContext(pool, func(ioctx *rados.IOContext) error {
		var err error
		names, err = gorbd.GetImageNames(ioctx)
		return cephError("list", pool, err, ctxAdmin)
	})
	slices.Sort(names)
	return names, err
}

// Resize grows pool/name to size bytes; shrinking is refused (ErrShrink).
// Gateways with the image open see the new size through header updates.
func (c *Cluster) Resize(pool, name string, size int64) error {
	spec := pool + "/" + name
	return c.withImage(pool, name, false, func(img *gorbd.Image) error {
		cur, err := img.GetSize()
		if err != nil {
			return cephError("resize", spec, err, ctxAdmin)
		}
		switch {
		case size < int64(cur):
			return fmt.Errorf("rbd: resize %s from %d to %d bytes: %w", spec, cur, size, ErrShrink)
		case size == int64(cur):
			return nil
		}
		// allowShrink=false: librbd refuses, should the image have grown
		// past size since GetSize. go-ceph insists on a progress callback.
		noProgress := func(uint64, uint64, any) int { return 0 }
		return cephError("resize", spec, img.Resize2(uint64(size), false, noProgress, nil), ctxAdmin)
	})
}

// SnapshotCreate takes a snapshot of pool/name.
func (c *Cluster) SnapshotCreate(pool, image, snap string) error {
	return c.withImage(pool, image, false, func(img *gorbd.Image) error {
		_, err := img.CreateSnapshot(snap)
		return cephError("snapshot create", pool+"/"+image+"@"+snap, err, ctxAdmin)
	})
}

// SnapshotRemove deletes a snapshot (ErrBusy if it is protected).
func (c *Cluster) SnapshotRemove(pool, image, snap string) error {
	return c.withImage(pool, image, false, func(img *gorbd.Image) error {
		return cephError("snapshot remove", pool+"/"+image+"@"+snap, img.GetSnapshot(snap).Remove(), ctxAdmin)
	})
}

// SnapshotRollback returns pool/name to a snapshot's content. It needs the
// exclusive lock, so it fails with ErrBusy while a gateway holds it: detach
// the LUN first.
func (c *Cluster) SnapshotRollback(pool, image, snap string) error {
	return c.withImage(pool, image, false, func(img *gorbd.Image) error {
		return cephError("snapshot rollback", pool+"/"+image+"@"+snap, img.GetSnapshot(snap).Rollback(), ctxAdmin)
	})
}

// SnapshotList returns the snapshots of pool/name in creation order.
func (c *Cluster) SnapshotList(pool, image string) ([]SnapshotInfo, error) {
	var out []SnapshotInfo
	err := c.withImage(pool, image, true, func(img *gorbd.Image) error {
		snaps, err := img.GetSnapshotNames()
		if err != nil {
			return cephError("snapshot list", pool+"/"+image, err, ctxAdmin)
		}
		for _, s := range snaps {
			out = append(out, SnapshotInfo{ID: s.Id, Name: s.Name, Size: int64(s.Size)})
		}
		slices.SortFunc(out, func(a, b SnapshotInfo) int { return cmp.Compare(a.ID, b.ID) })
		return nil
	})
	return out, err
}

// Info describes pool/name, including who holds its lock and who has it
// open.
func (c *Cluster) Info(pool, name string) (ImageInfo, error) {
	spec := pool + "/" + name
	info := ImageInfo{Pool: pool, Name: name}
	err := c.withImage(pool, name, true, func(img *gorbd.Image) error {
		st, err := img.Stat()
		if err != nil {
			return cephError("stat", spec, err, ctxAdmin)
		}
		info.Size, info.ObjectSize = int64(st.Size), int64(st.Obj_size)
		mask, err := img.GetFeatures()
		if err != nil {
			return cephError("get features", spec, err, ctxAdmin)
		}
		info.Features = FeatureNames(mask)
		watchers, err := img.ListWatchers()
		if err != nil {
			return cephError("list watchers", spec, err, ctxAdmin)
		}
		for _, w := range watchers {
			info.Watchers = append(info.Watchers, Watcher{Addr: w.Addr, ID: w.Id, Cookie: w.Cookie})
		}
		return nil
	})
	if err != nil {
		return info, err
	}
	if !slices.Contains(info.Features, gorbd.FeatureNameExclusiveLock) {
		return info, nil // no lock to own (librbd would say EINVAL)
	}
	// librbd answers lock queries only on a writable handle (EINVAL on a
	// read-only one); opening one does not take the lock.
	err = c.withImage(pool, name, false, func(img *gorbd.Image) error {
		owners, err := img.LockGetOwners()
		if err != nil {
			return cephError("lock owners", spec, err, ctxAdmin)
		}
		for _, o := range owners {
			info.LockOwners = append(info.LockOwners, o.Owner)
		}
		return nil
	})
	return info, err
}
