package cluster

import (
	"errors"
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
