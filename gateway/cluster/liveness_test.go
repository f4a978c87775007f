package cluster

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func liveNames(t *testing.T, s *Store) []string {
	t.Helper()
	live, err := s.LiveGateways(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range live {
		names = append(names, l.Gateway)
	}
	return names
}

func TestRegisterAndClose(t *testing.T) {
	_, s := startStore(t)
	ctx := testContext(t)
	r1, err := s.Register(ctx, "gw1", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := s.Register(ctx, "gw2", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	live, err := s.LiveGateways(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != 2 || live[0].Gateway != "gw1" || live[0].Lease != int64(r1.Lease()) || live[0].Since.IsZero() {
		t.Fatalf("live %+v", live)
	}
	snap, _, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := snap.Live["gw2"]; !ok {
		t.Fatalf("snapshot live %v", snap.Live)
	}

	if err := r1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r1.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
	if r1.Lost() {
		t.Error("closed registration reported as lost")
	}
	if got := liveNames(t, s); !slices.Equal(got, []string{"gw2"}) {
		t.Fatalf("after close: %v", got)
	}
	if err := r2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Register(ctx, "bad/name", 5*time.Second); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad name: %v", err)
	}
	if _, err := s.Register(ctx, "gw3", 10*time.Millisecond); !errors.Is(err, ErrInvalid) {
		t.Errorf("tiny ttl: %v", err)
	}
}

// A daemon that stops keeping its lease alive (crash, partition) drops out
// of the live set once the TTL runs out, and watchers see it go.
func TestLeaseExpiryRemovesLiveness(t *testing.T) {
	e, s := startStore(t)
	ctx := testContext(t)
	gwCli := newClient(t, e.endpoint())
	gwStore := newStore(t, gwCli, Options{})
	ch := s.Watch(ctx, 0)
	nextChange(t, ch, 5*time.Second)

	const ttl = 2 * time.Second
	reg, err := gwStore.Register(ctx, "gw1", ttl)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, ch, 5*time.Second, nil, func(c Change) bool { _, ok := c.Snapshot.Live["gw1"]; return ok })

	// Keepalives stop without a revoke, as when the process dies.
	stopped := time.Now()
	gwCli.Close()
	<-reg.Done()

	c := waitFor(t, ch, 10*time.Second, nil, func(c Change) bool { _, ok := c.Snapshot.Live["gw1"]; return !ok })
	if gone := time.Since(stopped); gone < ttl/2 {
		t.Errorf("liveness vanished after %v, before the TTL could run out", gone)
	}
	if !slices.Equal(c.Keys, []Key{LiveKey("gw1")}) {
		t.Errorf("keys %v", c.Keys)
	}
	if got := liveNames(t, s); len(got) != 0 {
		t.Errorf("still live: %v", got)
	}
}

// When the lease is gone on the server (expired during a partition, or
// revoked), the registration reports the loss.
func TestRegistrationReportsLostLease(t *testing.T) {
	_, s := startStore(t)
	ctx := testContext(t)
	reg, err := s.Register(ctx, "gw1", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.cli.Revoke(ctx, reg.Lease()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reg.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("lost lease not reported")
	}
	if !reg.Lost() {
		t.Error("Lost() = false after the lease was revoked")
	}
	if err := reg.Close(ctx); err != nil {
		t.Errorf("Close after loss: %v", err)
	}
}

// A restarted daemon registers while its previous lease is still alive: it
// waits for that lease to end instead of failing or stealing the key.
func TestRegisterWaitsForPreviousLease(t *testing.T) {
	e, s := startStore(t)
	ctx := testContext(t)
	oldCli := newClient(t, e.endpoint())
	const ttl = 2 * time.Second
	if _, err := newStore(t, oldCli, Options{}).Register(ctx, "gw1", ttl); err != nil {
		t.Fatal(err)
	}
	oldCli.Close()

	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := s.Register(short, "gw1", ttl); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("register while taken: %v", err)
	}

	start := time.Now()
	reg, err := s.Register(ctx, "gw1", ttl)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close(ctx)
	if waited := time.Since(start); waited < 500*time.Millisecond {
		t.Errorf("took over a live registration after %v", waited)
	}
	live, err := s.LiveGateways(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != 1 || live[0].Lease != int64(reg.Lease()) {
		t.Fatalf("live %+v, want lease %d", live, reg.Lease())
	}
}
