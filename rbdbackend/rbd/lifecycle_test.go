//go:build pacific

package rbd

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ceph/go-ceph/rados"
)

func TestCreateOptions(t *testing.T) {
	c := sharedCluster(t)
	tests := []struct {
		name         string
		opts         CreateOptions
		wantFeatures []string
		wantObject   int64
		wantErr      error
	}{
		{"defaults", CreateOptions{}, FeatureNames(61), 4 << 20, nil},
		{"layering only, 1 MiB objects", CreateOptions{Features: []string{"layering"}, ObjectSize: 1 << 20}, []string{"layering"}, 1 << 20, nil},
		{"exclusive lock only", CreateOptions{Features: []string{"exclusive-lock"}}, []string{"exclusive-lock"}, 4 << 20, nil},
		{"unknown feature", CreateOptions{Features: []string{"warp"}}, nil, 0, ErrInvalid},
		{"object map without exclusive lock", CreateOptions{Features: []string{"object-map"}}, nil, 0, ErrInvalid},
		{"object size not a power of two", CreateOptions{ObjectSize: 3 << 20}, nil, 0, ErrInvalid},
		{"missing data pool", CreateOptions{DataPool: "no-such-pool"}, nil, 0, ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := imageName(t)
			err := c.Create(testPool, name, 8<<20, tc.opts)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Create = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			t.Cleanup(func() { c.Remove(testPool, name) })
			info, err := c.Info(testPool, name)
			if err != nil {
				t.Fatalf("Info: %v", err)
			}
			if !slices.Equal(info.Features, tc.wantFeatures) || info.ObjectSize != tc.wantObject || info.Size != 8<<20 {
				t.Fatalf("Info = %+v, want features %v, object size %d", info, tc.wantFeatures, tc.wantObject)
			}
		})
	}
	if err := c.Create(testPool, "x", 0, CreateOptions{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Create of size 0 = %v, want ErrInvalid", err)
	}
}

func TestCreateExistingAndRemoveMissing(t *testing.T) {
	c := sharedCluster(t)
	name := createImage(t, c, 1<<20, CreateOptions{})
	if err := c.Create(testPool, name, 1<<20, CreateOptions{}); !errors.Is(err, ErrExists) {
		t.Errorf("second Create = %v, want ErrExists", err)
	}
	if err := c.Remove(testPool, name+"-missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Remove of a missing image = %v, want ErrNotFound", err)
	}
	if _, err := c.Open(testPool, name+"-missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open of a missing image = %v, want ErrNotFound", err)
	}
	if _, err := c.Open("no-such-pool", name); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open in a missing pool = %v, want ErrNotFound", err)
	}
	names, err := c.List(testPool)
	if err != nil || !slices.Contains(names, name) {
		t.Errorf("List = %v, %v; want it to contain %s", names, err, name)
	}
}

func TestInfoShowsOwnerAndWatchers(t *testing.T) {
	c := sharedCluster(t)
	name := createImage(t, c, 8<<20, CreateOptions{})
	info, err := c.Info(testPool, name)
	if err != nil || len(info.LockOwners) != 0 || len(info.Watchers) != 0 {
		t.Fatalf("Info of an unused image = %+v, %v", info, err)
	}
	img := openImage(t, c, name)
	if err := img.AcquireLock(); err != nil {
		t.Fatal(err)
	}
	info, err = c.Info(testPool, name)
	if err != nil {
		t.Fatal(err)
	}
	self := c.ClientAddr()
	if !slices.Equal(info.LockOwners, []string{self}) || len(info.Watchers) != 1 || info.Watchers[0].Addr != self {
		t.Fatalf("Info = %+v; want owner and single watcher %s", info, self)
	}
	// Remove refuses an image that is open.
	if err := c.Remove(testPool, name); !errors.Is(err, ErrBusy) {
		t.Fatalf("Remove of an open image = %v, want ErrBusy", err)
	}
}

func TestSnapshotLifecycle(t *testing.T) {
	c := sharedCluster(t)
	name := createImage(t, c, 8<<20, CreateOptions{})
	img := openImage(t, c, name)
	v1 := randomBytes(1, 64<<10)
	mustWrite(t, img, v1, 4096)

	if err := c.SnapshotCreate(testPool, name, "one"); err != nil {
		t.Fatalf("SnapshotCreate: %v", err)
	}
	if err := c.SnapshotCreate(testPool, name, "one"); !errors.Is(err, ErrExists) {
		t.Fatalf("second SnapshotCreate = %v, want ErrExists", err)
	}
	v2 := randomBytes(2, 64<<10)
	mustWrite(t, img, v2, 4096)
	if err := c.SnapshotCreate(testPool, name, "two"); err != nil {
		t.Fatalf("SnapshotCreate: %v", err)
	}
	snaps, err := c.SnapshotList(testPool, name)
	if err != nil || len(snaps) != 2 || snaps[0].Name != "one" || snaps[1].Name != "two" || snaps[0].Size != 8<<20 {
		t.Fatalf("SnapshotList = %+v, %v", snaps, err)
	}
	if err := c.Remove(testPool, name); !errors.Is(err, ErrHasSnapshots) && !errors.Is(err, ErrBusy) {
		t.Fatalf("Remove with snapshots = %v, want ErrHasSnapshots (or ErrBusy: it is open)", err)
	}

	// Rollback needs the exclusive lock: refused while a gateway holds it.
	if err := img.AcquireLock(); err != nil {
		t.Fatal(err)
	}
	if err := c.SnapshotRollback(testPool, name, "one"); !errors.Is(err, ErrBusy) {
		t.Fatalf("SnapshotRollback while locked = %v, want ErrBusy", err)
	}
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.SnapshotRollback(testPool, name, "one"); err != nil {
		t.Fatalf("SnapshotRollback: %v", err)
	}
	img = openImage(t, c, name)
	checkBytes(t, img, 4096, v1)
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}

	if err := c.Remove(testPool, name); !errors.Is(err, ErrHasSnapshots) {
		t.Fatalf("Remove with snapshots = %v, want ErrHasSnapshots", err)
	}
	for _, s := range []string{"one", "two"} {
		if err := c.SnapshotRemove(testPool, name, s); err != nil {
			t.Fatalf("SnapshotRemove %s: %v", s, err)
		}
	}
	if err := c.SnapshotRemove(testPool, name, "one"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("SnapshotRemove of a removed snapshot = %v, want ErrNotFound", err)
	}
	if snaps, err := c.SnapshotList(testPool, name); err != nil || len(snaps) != 0 {
		t.Fatalf("SnapshotList = %+v, %v; want none", snaps, err)
	}
	if err := c.Remove(testPool, name); err != nil {
		t.Fatalf("Remove: %v", err)
	}
}

// TestDataPool puts an image's data into a second pool (where an
// erasure-coded pool would go; one OSD cannot hold an EC pool, so the data
// pool here is replicated: librbd treats both alike).
func TestDataPool(t *testing.T) {
	c := sharedCluster(t)
	const dataPool = "rbdgw-test-data"
	mon := func(cmd string) error { return c.monCommand(cmd, cmd, nil) }
	if err := mon(`{"prefix":"osd pool create","pool":"` + dataPool + `","pg_num":8}`); err != nil {
		t.Fatalf("create pool: %v", err)
	}
	t.Cleanup(func() {
		mon(`{"prefix":"osd pool rm","pool":"` + dataPool + `","pool2":"` + dataPool + `","yes_i_really_really_mean_it":true}`)
	})
	if err := mon(`{"prefix":"osd pool application enable","pool":"` + dataPool + `","app":"rbd"}`); err != nil {
		t.Fatalf("enable rbd on pool: %v", err)
	}
	img := newImage(t, c, 8<<20, CreateOptions{DataPool: dataPool})
	data := randomBytes(1, 1<<20)
	mustWrite(t, img, data, 0)
	checkBytes(t, img, 0, data)

	var objects []string
	err := c.withIOContext(dataPool, func(ioctx *rados.IOContext) error {
		return ioctx.ListObjects(func(oid string) { objects = append(objects, oid) })
	})
	isData := func(oid string) bool { return strings.HasPrefix(oid, "rbd_data.") }
	if err != nil || !slices.ContainsFunc(objects, isData) {
		t.Fatalf("objects in the data pool = %v, %v; want rbd_data.*", objects, err)
	}
	info, err := c.Info(testPool, img.name)
	if err != nil || !slices.Contains(info.Features, "data-pool") {
		t.Fatalf("Info = %+v, %v; want the data-pool feature", info, err)
	}
}

// The client's librbd settings are the gateway's, whatever ceph.conf says.
func TestClientOptions(t *testing.T) {
	c := connect(t)
	want := map[string]string{
		"rbd_cache":                   "false",
		"rbd_skip_partial_discard":    "false",
		"rbd_non_blocking_aio":        "false",
		"rbd_blocklist_on_break_lock": "true",
	}
	if err := c.withConn(func(conn *rados.Conn, _ uint64) error {
		for k, v := range want {
			got, err := conn.GetConfigOption(k)
			if err != nil {
				return err
			}
			if got != v {
				t.Errorf("%s = %q, want %q", k, got, v)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
