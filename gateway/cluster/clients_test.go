package cluster

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// A recorded client is gone exactly when the lease it was recorded under
// is not the gateway's live lease.
func TestGoneClient(t *testing.T) {
	_, s := startStore(t)
	ctx := testContext(t)
	reg, err := s.Register(ctx, "gw-a", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	gone := func() string {
		t.Helper()
		addr, err := s.GoneClient(ctx, "gw-a")
		if err != nil {
			t.Fatal(err)
		}
		return addr
	}
	for _, step := range []struct {
		name string
		do   func() error
		want string
	}{
		{"nothing recorded", func() error { return nil }, ""},
		{"recorded under the live lease", func() error { return s.RecordClient(ctx, "gw-a", "10.0.0.1:0/1", reg.Lease()) }, ""},
		{"recorded under an older lease", func() error { return s.RecordClient(ctx, "gw-a", "10.0.0.1:0/2", reg.Lease()+1) }, "10.0.0.1:0/2"},
		{"recorded again under the live lease", func() error { return s.RecordClient(ctx, "gw-a", "10.0.0.1:0/3", reg.Lease()) }, ""},
		{"its lease ended", func() error { return reg.Close(ctx) }, "10.0.0.1:0/3"},
	} {
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got := gone(); got != step.want {
			t.Fatalf("%s: gone client %q, want %q", step.name, got, step.want)
		}
	}
}

// Resume keeps a lease etcd still holds with the gateway's live key, and
// refuses one that ended.
func TestResume(t *testing.T) {
	_, s := startStore(t)
	ctx := testContext(t)
	reg, err := s.Register(ctx, "gw-a", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Resume(ctx, "gw-a", reg.Lease())
	if err != nil {
		t.Fatalf("resume a live lease: %v", err)
	}
	if again.Lease() != reg.Lease() {
		t.Fatalf("resumed lease %x, want %x", again.Lease(), reg.Lease())
	}
	if err := again.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Resume(ctx, "gw-a", reg.Lease()); !errors.Is(err, ErrLeaseGone) {
		t.Fatalf("resume a revoked lease: %v", err)
	}
	// A live key of another lease (a newer run) is not this registration's.
	other, err := s.Register(ctx, "gw-a", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	l, err := s.cli.Grant(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Resume(ctx, "gw-a", l.ID); !errors.Is(err, ErrLeaseGone) {
		t.Fatalf("resume with a lease that holds no live key: %v", err)
	}
}

// Deleting a gateway deletes its client record with it only when nobody
// can need it to fence the gateway: not live, owning no disk. A record
// kept then goes through ForgetClient once that holds.
func TestDeleteGatewayClientRecord(t *testing.T) {
	_, s := startStore(t)
	ctx := testContext(t)
	for i, gw := range []string{"gw-a", "gw-b", "gw-c", "gw-d"} {
		if _, err := s.Apply(ctx, PutGateway(Gateway{Name: gw, Portals: []string{fmt.Sprintf("10.0.0.%d:3260", i+1)}})); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordClient(ctx, gw, "10.0.0.1:0/"+gw, 1); err != nil {
			t.Fatal(err)
		}
	}
	for _, img := range []string{"img", "other"} {
		if _, err := s.Apply(ctx, PutDisk(Disk{Pool: "rbd", Image: img, Size: 1 << 20})); err != nil {
			t.Fatal(err)
		}
	}
	recorded := func(gw string) bool {
		t.Helper()
		resp, err := s.cli.Get(ctx, s.full(ClientKey(gw)))
		if err != nil {
			t.Fatal(err)
		}
		return len(resp.Kvs) == 1
	}
	del := func(gw string) {
		t.Helper()
		if _, err := s.Apply(ctx, DeleteGateway(gw)); err != nil {
			t.Fatalf("delete %s: %v", gw, err)
		}
	}

	// Live: kept, whatever lease it recorded.
	reg, err := s.Register(ctx, "gw-a", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	del("gw-a")
	if !recorded("gw-a") {
		t.Fatal("record of a live gateway deleted")
	}
	if kept, err := s.ForgetClient(ctx, "gw-a"); err != nil || !strings.Contains(kept, "live") {
		t.Fatalf("forget the record of a live gateway: kept %q, %v", kept, err)
	}
	if err := reg.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if kept, err := s.ForgetClient(ctx, "gw-a"); err != nil || kept != "" || recorded("gw-a") {
		t.Fatalf("forget the record of a gateway gone: kept %q, %v, recorded %v", kept, err, recorded("gw-a"))
	}
	if _, err := s.ForgetClient(ctx, "gw-a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("forget again: %v, want not found", err)
	}

	// Owner of a disk (mapped or not): kept, its takeover fences it.
	if _, err := s.ClaimOwner(ctx, "rbd/img", "gw-b", 0); err != nil {
		t.Fatal(err)
	}
	del("gw-b")
	if !recorded("gw-b") {
		t.Fatal("record of a disk's owner deleted")
	}
	if kept, err := s.ForgetClient(ctx, "gw-b"); err != nil || !strings.Contains(kept, "rbd/img") {
		t.Fatalf("forget the record of a disk's owner: kept %q, %v", kept, err)
	}

	// Neither: deleted in the gateway's transaction, and listed.
	snap, _, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	changes, err := Preview(snap, DeleteGateway("gw-c"))
	if err != nil || !slices.ContainsFunc(changes, func(c KeyChange) bool { return c.Key == ClientKey("gw-c") && c.Delete }) {
		t.Fatalf("preview %v, %v: want clients/gw-c deleted", changes, err)
	}
	del("gw-c")
	if recorded("gw-c") {
		t.Fatal("record of a gateway nobody needs to fence kept")
	}
	if _, err := s.ForgetClient(ctx, "gw-d"); !errors.Is(err, ErrInUse) {
		t.Fatalf("forget the record of a configured gateway: %v", err)
	}

	// Registering or being given a disk after the snapshot the delete was
	// decided on makes it conflict; retried, it keeps the record.
	conflicts := func(change func() error) {
		t.Helper()
		snap, _, err := s.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := change(); err != nil {
			t.Fatal(err)
		}
		var conflict *ConflictError
		if _, err := s.Commit(ctx, snap, DeleteGateway("gw-d")); !errors.As(err, &conflict) {
			t.Fatalf("delete decided before the change: %v, want a conflict", err)
		}
	}
	var dreg *Registration
	conflicts(func() (err error) { dreg, err = s.Register(ctx, "gw-d", 5*time.Second); return err })
	if err := dreg.Close(ctx); err != nil {
		t.Fatal(err)
	}
	conflicts(func() error { _, err := s.ClaimOwner(ctx, "rbd/other", "gw-d", 0); return err })
	del("gw-d")
	if !recorded("gw-d") {
		t.Fatal("record of a gateway given a disk meanwhile deleted")
	}
}
