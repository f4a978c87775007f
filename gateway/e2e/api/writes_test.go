package api_test

import (
	"testing"

	"github.com/rbdgw/rbdgw/api"
	"github.com/rbdgw/rbdgw/api/model"
)

// TestDiskPreconditionsBeforeCeph: a create-only PUT of a disk that
// exists, or one with a stale If-Match, is refused before Ceph is touched:
// the image keeps its size (it used to be grown first and the write
// refused after).
func TestDiskPreconditionsBeforeCeph(t *testing.T) {
	e := newEnv(t)
	e.must(201, "PUT", "/disks/rbd/d1", `{"size": "1G"}`)
	tag := e.must(200, "GET", "/disks/rbd/d1", nil).header.Get("ETag")
	before := e.export()
	size := func() int64 {
		t.Helper()
		info, err := e.ceph.ImageInfo("rbd", "d1")
		if err != nil {
			t.Fatal(err)
		}
		return info.Size
	}
	for _, tc := range []struct {
		name string
		hdr  []string
	}{
		{"create-only", []string{"If-None-Match", "*"}},
		{"stale If-Match", []string{"If-Match", `"1"`}},
	} {
		r := e.do(api.RoleOperator, "PUT", "/disks/rbd/d1", `{"size": "5G"}`, tc.hdr...)
		if r.status != 412 || r.err().Code != model.CodePreconditionFailed {
			t.Errorf("%s: %d %s, want 412", tc.name, r.status, r.body)
		}
		if got := size(); got != 1<<30 {
			t.Errorf("%s: the refused request resized the image to %d", tc.name, got)
		}
	}
	// A create-only PUT of a new disk with If-Match * (it must exist) does
	// not create its image either.
	if r := e.do(api.RoleOperator, "PUT", "/disks/rbd/d2", `{"size": "1G"}`, "If-Match", "*"); r.status != 412 {
		t.Errorf("If-Match * on a missing disk: %d %s", r.status, r.body)
	}
	if _, err := e.ceph.ImageInfo("rbd", "d2"); err == nil {
		t.Error("a refused create made the image")
	}
	if e.export() != before {
		t.Error("a refused request stored something")
	}
	// The current ETag still grows it.
	e.must(200, "PUT", "/disks/rbd/d1", `{"size": "2G"}`, "If-Match", tag)
	if got := size(); got != 2<<30 {
		t.Errorf("grow with If-Match: image size %d", got)
	}
}
