package alua

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/rbdbackend"
)

// A takeover that fences reports it (the node records it for the event
// stream): the disk, the owner taken over from, the new epoch, the
// clients fenced and why.
func TestTakeoverReportsFencing(t *testing.T) {
	store := newStore(t)
	ctx := context.Background()
	if _, err := store.ClaimOwner(ctx, "rbd/d0", "gw-c", 0); err != nil {
		t.Fatal(err)
	}
	live := []string{"gw-a", "gw-b"}
	m := newManager(store, "gw-a", live)
	reports := make(chan FenceReport, 4)
	m.opts.OnFence = func(_ context.Context, f FenceReport) { reports <- f }
	defer m.Close()
	img := &lockImage{MemoryImage: rbdbackend.NewMemoryImage(1 << 20), holders: []string{clients["gw-c"]}}
	m.Wrap("rbd/d0", img)
	m.Update(load(t, store, live...))
	go m.Run(ctx)
	select {
	case f := <-reports:
		if f.Disk != "rbd/d0" || f.From != "gw-c" || f.Epoch != 2 || !slices.Equal(f.Clients, []string{clients["gw-c"]}) ||
			f.Reason != "owner gw-c is gone" || f.Err != nil {
			t.Fatalf("report: %+v", f)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no fencing reported")
	}
}

// A takeover that fences nobody reports nothing.
func TestTakeoverWithoutFencingReportsNothing(t *testing.T) {
	store := newStore(t)
	ctx := context.Background()
	if _, err := store.ClaimOwner(ctx, "rbd/d0", "gw-c", 0); err != nil {
		t.Fatal(err)
	}
	live := []string{"gw-a", "gw-b"}
	m := newManager(store, "gw-a", live)
	reports := make(chan FenceReport, 4)
	m.opts.OnFence = func(_ context.Context, f FenceReport) { reports <- f }
	defer m.Close()
	m.Wrap("rbd/d0", &lockImage{MemoryImage: rbdbackend.NewMemoryImage(1 << 20)})
	m.Update(load(t, store, live...))
	go m.Run(ctx)
	waitOwner(t, store, "gw-a", 2)
	time.Sleep(100 * time.Millisecond)
	select {
	case f := <-reports:
		t.Fatalf("reported %+v", f)
	default:
	}
}
