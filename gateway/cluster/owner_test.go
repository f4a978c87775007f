package cluster

import (
	"encoding/binary"
	"errors"
	"sync"
	"testing"
)

func TestClaimOwner(t *testing.T) {
	_, s := startStore(t)
	ctx := testContext(t)
	seed(t, s, 3)
	o, err := s.ClaimOwner(ctx, "rbd/a", gwName(0), 0)
	if err != nil || o != (Owner{Disk: "rbd/a", Gateway: gwName(0), Epoch: 1}) {
		t.Fatalf("first claim: %+v, %v", o, err)
	}
	// A claim from a stale epoch loses.
	var conflict *ConflictError
	if _, err := s.ClaimOwner(ctx, "rbd/a", gwName(1), 0); !errors.As(err, &conflict) || conflict.Key != OwnerKey("rbd/a") {
		t.Fatalf("stale claim: %v", err)
	}
	if _, err := s.ClaimOwner(ctx, "rbd/zz", gwName(1), 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing disk: %v", err)
	}
	if _, err := s.ClaimOwner(ctx, "rbd/a", "gw-none", 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing gateway: %v", err)
	}
	if _, err := s.ClaimOwner(ctx, "bad", gwName(1), 1); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad disk id: %v", err)
	}

	// Racing failovers from the same epoch: exactly one new owner.
	const racers = 8
	results := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() { _, results[i] = s.ClaimOwner(ctx, "rbd/a", gwName(1+i%2), 1) })
	}
	wg.Wait()
	wins := 0
	for _, err := range results {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, ErrConflict):
			t.Fatalf("claim: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d claims won", wins)
	}
	owners, err := s.Owners(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := owners["rbd/a"]; got.Epoch != 2 || got.Gateway == gwName(0) {
		t.Fatalf("owners %+v", owners)
	}
	snap, _, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Owners["rbd/a"] != owners["rbd/a"] {
		t.Errorf("snapshot owner %+v", snap.Owners)
	}
}

func TestPersistentReservationCAS(t *testing.T) {
	_, s := startStore(t)
	ctx := testContext(t)
	seed(t, s, 1)
	data, rev, err := s.GetPR(ctx, "rbd/a")
	if err != nil || data != nil || rev != 0 {
		t.Fatalf("empty state: %q %d %v", data, rev, err)
	}
	rev1, err := s.CASPR(ctx, "rbd/a", 0, []byte("one"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CASPR(ctx, "rbd/a", 0, []byte("other")); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale create: %v", err)
	}
	if _, err := s.CASPR(ctx, "rbd/zz", 0, []byte("x")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing disk: %v", err)
	}
	data, rev, err = s.GetPR(ctx, "rbd/a")
	if err != nil || string(data) != "one" || rev != rev1 {
		t.Fatalf("read back: %q %d %v", data, rev, err)
	}

	// Gateways updating the same reservation state concurrently, each
	// retrying on conflict: every update counts.
	const writers, each = 6, 5
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			for range each {
				for {
					cur, rev, err := s.GetPR(ctx, "rbd/a")
					if err != nil {
						errs[i] = err
						return
					}
					var n uint64
					if len(cur) == 8 {
						n = binary.BigEndian.Uint64(cur)
					}
					_, err = s.CASPR(ctx, "rbd/a", rev, binary.BigEndian.AppendUint64(nil, n+1))
					if err == nil {
						break
					}
					if !errors.Is(err, ErrConflict) {
						errs[i] = err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	data, rev, err = s.GetPR(ctx, "rbd/a")
	if err != nil {
		t.Fatal(err)
	}
	if n := binary.BigEndian.Uint64(data); n != writers*each {
		t.Fatalf("counter %d, want %d", n, writers*each)
	}

	// Empty data clears the state.
	if _, err := s.CASPR(ctx, "rbd/a", rev, nil); err != nil {
		t.Fatal(err)
	}
	if data, rev, _ := s.GetPR(ctx, "rbd/a"); data != nil || rev != 0 {
		t.Fatalf("after clear: %q %d", data, rev)
	}
}

// Ownership and reservations die with their disk.
func TestDeleteDiskRemovesOwnerAndReservations(t *testing.T) {
	_, s := startStore(t)
	ctx := testContext(t)
	seed(t, s, 1)
	if _, err := s.Apply(ctx, PutDisk(Disk{Pool: "rbd", Image: "b", Size: 512})); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimOwner(ctx, "rbd/b", gwName(0), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CASPR(ctx, "rbd/b", 0, []byte("state")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, DeleteDisk("rbd/b")); err != nil {
		t.Fatal(err)
	}
	owners, err := s.Owners(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := owners["rbd/b"]; ok {
		t.Error("owner outlived its disk")
	}
	if data, _, _ := s.GetPR(ctx, "rbd/b"); data != nil {
		t.Error("reservations outlived their disk")
	}
}
