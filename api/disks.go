package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/rbdgw/rbdgw/api/model"
	"github.com/rbdgw/rbdgw/gateway/cluster"
)

// exclusiveLock is the RBD feature every disk needs: the owner gateway
// holds the lock, and fencing hands it over.
const exclusiveLock = "exclusive-lock"

// ceph returns the Ceph client, or fails the request when this gateway has
// none.
func (s *Server) ceph(c *gin.Context) (Ceph, bool) {
	if s.opts.Ceph == nil {
		s.fail(c, newError(http.StatusNotImplemented, model.CodeCephNotConfigured,
			"gateway %s has no Ceph client (start it with -ceph-conf); use another gateway's API", s.opts.Gateway))
		return nil, false
	}
	return s.opts.Ceph, true
}

func diskOut(snap *cluster.Snapshot, d cluster.Disk) model.Disk {
	out := model.Disk{ID: d.ID(), Pool: d.Pool, Image: d.Image, Size: d.Size, BlockSize: d.BlockSize, PhysicalBlockSize: d.ReportedPhysicalBlockSize(),
		Serial: d.Serial, WWN: d.WWN, ReadOnly: d.ReadOnly}
	if l, ok := snap.DiskMapping(d.ID()); ok {
		out.Mapping = &model.DiskMapping{Target: l.Target, LUN: l.ID}
	}
	if o, ok := snap.Owners[d.ID()]; ok {
		out.Owner, out.OwnerEpoch = o.Gateway, o.Epoch
	}
	return out
}

func (s *Server) listDisks(c *gin.Context) {
	snap, ok := s.load(c)
	if !ok {
		return
	}
	out := []model.Disk{}
	for _, id := range snap.DiskIDs() {
		out = append(out, diskOut(snap, snap.Disks[id]))
	}
	s.ok(c, http.StatusOK, out)
}

// getDisk adds what Ceph says of the image; when Ceph cannot be asked the
// configuration is still served, with the reason.
func (s *Server) getDisk(c *gin.Context) {
	snap, ok := s.load(c)
	if !ok {
		return
	}
	id, err := diskParam(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	d, found := snap.Disks[id]
	if !found {
		s.fail(c, notFoundf("disk %s does not exist", id))
		return
	}
	out := diskOut(snap, d)
	if s.opts.Ceph == nil {
		out.CephError = "this gateway has no Ceph client"
	} else if info, err := s.opts.Ceph.ImageInfo(d.Pool, d.Image); err != nil {
		out.CephError = err.Error()
	} else {
		size := info.Size
		out.ImageSize, out.Features, out.LockOwners = &size, info.Features, info.LockOwners
	}
	s.entity(c, snap, cluster.DiskKey(id), out)
}

// putDisk creates a disk with a new image (size given and no image yet),
// imports an existing image (size absent: read from Ceph), or changes a
// disk (grow, read-only). Ceph's errors come back in this response.
func (s *Server) putDisk(c *gin.Context) {
	id, err := diskParam(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	var in model.DiskPut
	if err := bindJSON(c, &in); err != nil {
		s.fail(c, err)
		return
	}
	ceph, ok := s.ceph(c)
	if !ok {
		return
	}
	dryRun, err := boolQuery(c, "dry_run")
	if err != nil {
		s.fail(c, err)
		return
	}
	pool, image, _ := cluster.SplitDiskID(id)
	ctx, cancel := s.ctx(c)
	snap, _, err := s.opts.Store.Load(ctx)
	cancel()
	if err != nil {
		s.fail(c, err)
		return
	}
	// If-Match and If-None-Match before Ceph is touched: a refused request
	// must not have created or grown the image.
	pre, err := parsePreconditions(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if err := pre.check(snap, cluster.DiskKey(id)); err != nil {
		s.fail(c, err)
		return
	}
	existing, inConfig := snap.Disks[id]
	info, err := ceph.ImageInfo(pool, image)
	imageExists := err == nil
	if err != nil && !errors.Is(err, ErrCephNotFound) {
		s.fail(c, err)
		return
	}
	var size int64
	created := false
	switch {
	case in.Size == nil && !imageExists:
		s.fail(c, newError(http.StatusNotFound, model.CodeImageMissing,
			"image %s does not exist in Ceph; give a size to create it", id))
		return
	case in.Size == nil:
		// Import at the image's size (or keep a larger configured one).
		if !slices.Contains(info.Features, exclusiveLock) {
			s.fail(c, newError(http.StatusBadRequest, model.CodeExclusiveLockFeat,
				"image %s lacks the exclusive-lock feature, which gateways need to hand a disk over safely (rbd feature enable %s exclusive-lock)", id, id))
			return
		}
		size = max(info.Size, existing.Size)
	case !imageExists:
		size = int64(*in.Size)
		if err := s.checkNewDisk(snap, id, size, in); err != nil {
			s.fail(c, err)
			return
		}
		if !dryRun {
			var objectSize int64
			if in.ObjectSize != nil {
				objectSize = int64(*in.ObjectSize)
			}
			if err := ceph.CreateImage(pool, image, size, ImageOptions{Features: in.Features, DataPool: in.DataPool, ObjectSize: objectSize}); err != nil {
				s.fail(c, err)
				return
			}
			created = true
		}
	case !inConfig && int64(*in.Size) != info.Size:
		s.fail(c, newError(http.StatusConflict, model.CodeImageExists,
			"image %s already exists with %d bytes; omit size to import it as it is", id, info.Size))
		return
	default:
		size = int64(*in.Size)
		if inConfig && size < existing.Size {
			s.fail(c, invalidf("disk %s: size can only grow (now %s, asked %s)", id, model.FormatSize(existing.Size), model.FormatSize(size)))
			return
		}
		if size > info.Size && !dryRun {
			if err := ceph.ResizeImage(pool, image, size); err != nil {
				s.fail(c, err)
				return
			}
		}
	}
	d := cluster.Disk{Pool: pool, Image: image, Size: size, BlockSize: in.BlockSize, PhysicalBlockSize: in.PhysicalBlockSize, ReadOnly: in.ReadOnly,
		Serial: in.Serial, WWN: in.WWN}
	res, status, err := s.commitChange(c, change{entity: cluster.DiskKey(id), build: func(*cluster.Snapshot) ([]cluster.Op, error) {
		return []cluster.Op{cluster.PutDisk(d)}, nil
	}})
	if err != nil {
		if created {
			// The configuration refused the disk: do not leave an image
			// behind that nobody asked to keep.
			if rerr := ceph.RemoveImage(pool, image); rerr != nil {
				s.log.Warn("cannot remove the image created for a refused disk", "disk", id, "err", rerr)
			}
		}
		s.fail(c, err)
		return
	}
	if status == 0 {
		status = http.StatusOK
		if !inConfig && !dryRun {
			status = http.StatusCreated
		}
	}
	setETag(c, res)
	setLocation(c, status, res)
	s.ok(c, status, res)
}

// checkNewDisk validates a disk before its image is created, so that a
// disk the configuration would refuse leaves no image behind.
func (s *Server) checkNewDisk(snap *cluster.Snapshot, id string, size int64, in model.DiskPut) error {
	pool, image, _ := cluster.SplitDiskID(id)
	_, err := cluster.Preview(snap, cluster.PutDisk(cluster.Disk{Pool: pool, Image: image, Size: size,
		BlockSize: in.BlockSize, PhysicalBlockSize: in.PhysicalBlockSize, ReadOnly: in.ReadOnly, Serial: in.Serial, WWN: in.WWN}))
	return err
}

// Image removal after a disk is deleted waits for the gateways to close it.
const (
	removeImageWait  = 30 * time.Second
	removeImageRetry = 500 * time.Millisecond
)

func (s *Server) deleteDisk(c *gin.Context) {
	id, err := diskParam(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	removeImage, err := boolQuery(c, "remove_image")
	if err != nil {
		s.fail(c, err)
		return
	}
	var ceph Ceph
	if removeImage {
		var ok bool
		if ceph, ok = s.ceph(c); !ok {
			return
		}
	}
	res, status, err := s.commitChange(c, change{entity: cluster.DiskKey(id), build: func(snap *cluster.Snapshot) ([]cluster.Op, error) {
		if _, ok := snap.Disks[id]; !ok {
			return nil, notFoundf("disk %s does not exist", id)
		}
		return []cluster.Op{cluster.DeleteDisk(id)}, nil
	}})
	if err != nil {
		s.fail(c, err)
		return
	}
	if removeImage && !res.DryRun {
		pool, image, _ := cluster.SplitDiskID(id)
		if err := s.removeImage(c.Request.Context(), ceph, pool, image, res.Revision); err != nil {
			e := newError(http.StatusBadGateway, model.CodeCeph,
				"disk %s was removed from the configuration (revision %d) but its image was not deleted: %v", id, res.Revision, err)
			e.Details = map[string]any{"revision": res.Revision}
			s.fail(c, e)
			return
		}
	}
	if status == 0 {
		status = http.StatusOK
	}
	setETag(c, res) // as every other delete
	s.ok(c, status, res)
}

// removeImage deletes an image once the gateways have closed it: it waits
// for them to apply the deletion, then retries while the image is busy.
func (s *Server) removeImage(ctx context.Context, ceph Ceph, pool, image string, rev int64) error {
	ctx, cancel := context.WithTimeout(ctx, removeImageWait)
	defer cancel()
	if s.opts.Gateways != nil {
		if snap, _, err := s.opts.Store.Load(ctx); err == nil {
			_, _, _ = s.opts.Gateways.WaitApplied(ctx, rev, snap.GatewayNames())
		}
	}
	for {
		err := ceph.RemoveImage(pool, image)
		if err == nil || errors.Is(err, ErrCephNotFound) {
			return nil
		}
		if !errors.Is(err, ErrCephBusy) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(removeImageRetry):
		}
	}
}

// diskForSnapshots checks that the URL names a configured disk.
func (s *Server) diskForSnapshots(c *gin.Context) (Ceph, string, string, bool) {
	ceph, ok := s.ceph(c)
	if !ok {
		return nil, "", "", false
	}
	snap, ok := s.load(c)
	if !ok {
		return nil, "", "", false
	}
	id, err := diskParam(c)
	if err != nil {
		s.fail(c, err)
		return nil, "", "", false
	}
	if _, found := snap.Disks[id]; !found {
		s.fail(c, notFoundf("disk %s does not exist", id))
		return nil, "", "", false
	}
	pool, image, _ := cluster.SplitDiskID(id)
	return ceph, pool, image, true
}

func (s *Server) listSnapshots(c *gin.Context) {
	ceph, pool, image, ok := s.diskForSnapshots(c)
	if !ok {
		return
	}
	snaps, err := ceph.ListSnapshots(pool, image)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.ok(c, http.StatusOK, nonNil(snaps))
}

func (s *Server) createSnapshot(c *gin.Context) {
	var in model.SnapshotCreate
	if err := bindJSON(c, &in); err != nil {
		s.fail(c, err)
		return
	}
	if err := validateSnapshotName(in.Name); err != nil {
		s.fail(c, err)
		return
	}
	ceph, pool, image, ok := s.diskForSnapshots(c)
	if !ok {
		return
	}
	dryRun, err := boolQuery(c, "dry_run")
	if err != nil {
		s.fail(c, err)
		return
	}
	if !dryRun {
		if err := ceph.CreateSnapshot(pool, image, in.Name); err != nil {
			s.fail(c, err)
			return
		}
	}
	s.ok(c, http.StatusCreated, model.WriteResult{DryRun: dryRun, Changes: []model.Change{
		{Op: "put", Key: "ceph:" + pool + "/" + image + "@" + in.Name}}})
}

func (s *Server) deleteSnapshot(c *gin.Context) {
	name := c.Param("snap")
	if err := validateSnapshotName(name); err != nil {
		s.fail(c, err)
		return
	}
	ceph, pool, image, ok := s.diskForSnapshots(c)
	if !ok {
		return
	}
	dryRun, err := boolQuery(c, "dry_run")
	if err != nil {
		s.fail(c, err)
		return
	}
	if !dryRun {
		if err := ceph.RemoveSnapshot(pool, image, name); err != nil {
			s.fail(c, err)
			return
		}
	}
	s.ok(c, http.StatusOK, model.WriteResult{DryRun: dryRun, Changes: []model.Change{
		{Op: "delete", Key: "ceph:" + pool + "/" + image + "@" + name}}})
}

// validateSnapshotName accepts what rbd accepts in a snapshot spec.
func validateSnapshotName(n string) error {
	if n == "" || len(n) > 255 {
		return invalidf("snapshot name must be 1-255 characters")
	}
	for _, r := range n {
		if r == '/' || r == '@' || r < 0x21 || r == 0x7f {
			return invalidf("snapshot name %q: '/', '@', spaces and control characters are not allowed", n)
		}
	}
	return nil
}
