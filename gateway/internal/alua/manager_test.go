package alua

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/internal/clustertest"
	"github.com/rbdgw/rbdgw/rbdbackend"
)

var etcd *clustertest.Etcd

func TestMain(m *testing.M) {
	clustertest.MainWithEtcd(m, "alua", func(e *clustertest.Etcd) { etcd = e })
}

// lockImage is a memory image with an exclusive lock whose holders the
// test sets; BreakLock records what was fenced.
type lockImage struct {
	*rbdbackend.MemoryImage
	mu      sync.Mutex
	holders []string
	fenced  []string
	// block, when set, holds writes until closed.
	block chan struct{}
}

func (i *lockImage) LockOwners() ([]string, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return slices.Clone(i.holders), nil
}

func (i *lockImage) BreakLock(owner string) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.fenced = append(i.fenced, owner)
	i.holders = slices.DeleteFunc(i.holders, func(h string) bool { return h == owner })
	if i.block != nil && len(i.holders) == 0 {
		close(i.block)
		i.block = nil
	}
	return nil
}

func (i *lockImage) AcquireLock() error { return nil }
func (i *lockImage) ReleaseLock() error { return nil }

func (i *lockImage) WriteAt(p []byte, off int64) (int, error) {
	i.mu.Lock()
	b := i.block
	i.mu.Unlock()
	if b != nil {
		<-b
	}
	return i.MemoryImage.WriteAt(p, off)
}

func (i *lockImage) fencedList() []string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return slices.Clone(i.fenced)
}

type client struct {
	addr string
	bl   *blocklist // nil: Fence succeeds and records nothing
}

func (c client) ClientAddr() string { return c.addr }
func (c client) Fenced() bool       { return false }
func (c client) Fence(addr string) error {
	if c.bl == nil {
		return nil
	}
	c.bl.mu.Lock()
	defer c.bl.mu.Unlock()
	if c.bl.err != nil {
		return c.bl.err
	}
	c.bl.addrs = append(c.bl.addrs, addr)
	return nil
}

// blocklist records what a client fenced; err makes fencing fail.
type blocklist struct {
	mu    sync.Mutex
	addrs []string
	err   error
}

func (b *blocklist) list() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.addrs)
}

// clients of the gateways in the tests.
var clients = map[string]string{"gw-a": "127.0.0.1:0/1", "gw-b": "127.0.0.1:0/2", "gw-c": "127.0.0.1:0/3"}

// newStore defines gw-a..gw-c and disk rbd/d0 mapped by a target served
// by all three, under a prefix of the test's own.
func newStore(t *testing.T) *cluster.Store {
	t.Helper()
	if etcd == nil {
		t.Skip("etcd not available")
	}
	cli, err := cluster.Dial(cluster.ClientConfig{Endpoints: []string{etcd.Endpoint()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	// The time keeps a test run again (-count) off its earlier run's keys.
	prefix := fmt.Sprintf("/%s-%d/", strings.ReplaceAll(t.Name(), "/", "_"), time.Now().UnixNano())
	store, err := cluster.New(cli, cluster.Options{Prefix: prefix, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ops := []cluster.Op{cluster.PutDisk(cluster.Disk{Pool: "rbd", Image: "d0", Size: 1 << 20})}
	for i, g := range []string{"gw-a", "gw-b", "gw-c"} {
		ops = append(ops, cluster.PutGateway(cluster.Gateway{Name: g, TPGID: uint16(i + 1), Portals: []string{fmt.Sprintf("127.0.0.%d:3260", i+1)}}))
	}
	ops = append(ops, cluster.PutTarget(cluster.Target{IQN: iqn, Gateways: []string{"gw-a", "gw-b", "gw-c"}}),
		cluster.PutLUN(cluster.LUN{Target: iqn, ID: 0, Disk: "rbd/d0"}))
	if _, err := store.Apply(context.Background(), ops...); err != nil {
		t.Fatal(err)
	}
	return store
}

// load reads the state and marks live as the live gateways.
func load(t *testing.T, store *cluster.Store, live ...string) *cluster.Snapshot {
	t.Helper()
	s, _, err := store.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.Live = map[string]cluster.Live{}
	for _, g := range live {
		s.Live[g] = cluster.Live{Gateway: g}
	}
	return s
}

func newManager(store *cluster.Store, self string, live []string) *Manager {
	return newManagerWith(store, self, live, nil)
}

func newManagerWith(store *cluster.Store, self string, live []string, bl *blocklist) *Manager {
	return NewManager(ManagerOptions{
		Store: store, Gateway: self, Provider: NewProvider(self, 0, quiet), Client: client{clients[self], bl},
		LiveClients: func(context.Context) (map[string]string, error) {
			out := map[string]string{}
			for _, g := range live {
				out[g] = clients[g]
			}
			return out, nil
		},
		Grace: 100 * time.Millisecond, StallTimeout: 100 * time.Millisecond, Logger: quiet,
	})
}

// waitOwner waits until the stored owner of rbd/d0 is gateway at epoch.
func waitOwner(t *testing.T, store *cluster.Store, gateway string, epoch uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		o, err := store.Owners(context.Background())
		if err == nil && o["rbd/d0"].Gateway == gateway && o["rbd/d0"].Epoch == epoch {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("owner %+v, want %s at epoch %d", o["rbd/d0"], gateway, epoch)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNewDiskIsClaimedByThePlannedGatewayOnly(t *testing.T) {
	store := newStore(t)
	live := []string{"gw-a", "gw-b", "gw-c"}
	s := load(t, store, live...)
	for _, g := range live {
		m := newManager(store, g, live)
		defer m.Close()
		m.Update(s)
	}
	waitOwner(t, store, "gw-a", 1)
	time.Sleep(100 * time.Millisecond)
	waitOwner(t, store, "gw-a", 1) // nobody else claimed
}

func TestGoneOwnerIsReplacedAfterGraceAndFenced(t *testing.T) {
	store := newStore(t)
	ctx := context.Background()
	if _, err := store.ClaimOwner(ctx, "rbd/d0", "gw-c", 0); err != nil {
		t.Fatal(err)
	}
	live := []string{"gw-a", "gw-b"}
	m := newManager(store, "gw-a", live)
	defer m.Close()
	img := &lockImage{MemoryImage: rbdbackend.NewMemoryImage(1 << 20), holders: []string{clients["gw-c"]}}
	m.Wrap("rbd/d0", img)
	m.Update(load(t, store, live...))
	// Not before the grace period.
	time.Sleep(50 * time.Millisecond)
	if o, _ := store.Owners(ctx); o["rbd/d0"].Gateway != "gw-c" {
		t.Fatalf("owner moved before the grace period: %+v", o["rbd/d0"])
	}
	go m.Run(ctx)
	waitOwner(t, store, "gw-a", 2)
	deadline := time.Now().Add(time.Second)
	for len(img.fencedList()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := img.fencedList(); !slices.Equal(got, []string{clients["gw-c"]}) {
		t.Fatalf("fenced %v, want gw-c's client", got)
	}
}

func TestLiveLockHolderIsNotFencedOnTakeover(t *testing.T) {
	store := newStore(t)
	ctx := context.Background()
	if _, err := store.ClaimOwner(ctx, "rbd/d0", "gw-c", 0); err != nil {
		t.Fatal(err)
	}
	live := []string{"gw-a", "gw-b"}
	m := newManager(store, "gw-a", live)
	defer m.Close()
	// gw-b wrote last: it holds the lock and hands it over on request.
	img := &lockImage{MemoryImage: rbdbackend.NewMemoryImage(1 << 20), holders: []string{clients["gw-b"]}}
	m.Wrap("rbd/d0", img)
	m.takeover("rbd/d0", 1, true, "test")
	waitOwner(t, store, "gw-a", 2)
	if got := img.fencedList(); len(got) != 0 {
		t.Fatalf("fenced the live gateway's client: %v", got)
	}
}

// A write waiting for the lock fences its holder only when the holder
// belongs to no live gateway; how long the write waited is no evidence.
func TestBlockedWriteFencesOnlyAHolderOfNoLiveGateway(t *testing.T) {
	for _, tc := range []struct {
		name      string
		owner     string   // owner of rbd/d0 at epoch 1
		live      []string // live gateways besides gw-a
		holder    string
		fence     bool
		wantOwner string
		wantEpoch uint64
	}{
		{name: "live holder, slow handover or slow OSD", owner: "gw-b", live: []string{"gw-b"}, holder: "gw-b",
			wantOwner: "gw-b", wantEpoch: 1},
		{name: "holder's gateway gone, owner gone", owner: "gw-b", live: nil, holder: "gw-b",
			fence: true, wantOwner: "gw-a", wantEpoch: 2},
		{name: "holder's gateway gone, owner live", owner: "gw-b", live: []string{"gw-b"}, holder: "gw-c",
			fence: true, wantOwner: "gw-b", wantEpoch: 1},
		{name: "holder of no gateway, owned here", owner: "gw-a", live: []string{"gw-b"}, holder: "127.0.0.1:0/99",
			fence: true, wantOwner: "gw-a", wantEpoch: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := newStore(t)
			ctx := context.Background()
			if _, err := store.ClaimOwner(ctx, "rbd/d0", tc.owner, 0); err != nil {
				t.Fatal(err)
			}
			live := append([]string{"gw-a"}, tc.live...)
			m := newManager(store, "gw-a", live)
			defer m.Close()
			m.Update(load(t, store, live...))
			holder := tc.holder
			if a, ok := clients[holder]; ok {
				holder = a
			}
			img := &lockImage{MemoryImage: rbdbackend.NewMemoryImage(1 << 20), holders: []string{holder}, block: make(chan struct{})}
			w := m.Wrap("rbd/d0", img)
			done := make(chan error, 1)
			go func() { _, err := w.WriteAt(make([]byte, 512), 0); done <- err }()
			if !tc.fence {
				// Several stall periods pass; nobody is fenced.
				time.Sleep(350 * time.Millisecond)
				if got := img.fencedList(); len(got) != 0 {
					t.Fatalf("fenced %v", got)
				}
				img.BreakLock(holder) // the holder hands the lock over
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				img.fenced = nil
			} else if err := <-done; err != nil {
				t.Fatal(err)
			}
			waitOwner(t, store, tc.wantOwner, tc.wantEpoch)
			m.Close()
			if got := img.fencedList(); tc.fence != slices.Equal(got, []string{holder}) {
				t.Fatalf("fenced %v, want fenced %v", got, tc.fence)
			}
		})
	}
}

// The previous owner is fenced by the address it recorded, also when it
// does not hold the lock at the time of the takeover (it would get it back
// on its next write).
func TestGoneOwnerIsFencedWithoutHoldingTheLock(t *testing.T) {
	store := newStore(t)
	ctx := context.Background()
	if _, err := store.ClaimOwner(ctx, "rbd/d0", "gw-c", 0); err != nil {
		t.Fatal(err)
	}
	// gw-c recorded its client under a lease that is gone.
	if err := store.RecordClient(ctx, "gw-c", clients["gw-c"], 0x1234); err != nil {
		t.Fatal(err)
	}
	bl := &blocklist{}
	m := newManagerWith(store, "gw-a", []string{"gw-a", "gw-b"}, bl)
	defer m.Close()
	img := &lockImage{MemoryImage: rbdbackend.NewMemoryImage(1 << 20)} // nobody holds the lock
	m.Wrap("rbd/d0", img)
	m.takeover("rbd/d0", 1, true, "owner gw-c is gone")
	if got := bl.list(); !slices.Equal(got, []string{clients["gw-c"]}) {
		t.Fatalf("blocklisted %v, want gw-c's client", got)
	}
	waitOwner(t, store, "gw-a", 2)
}

// A takeover whose fencing failed records no move: the previous owner may
// still write.
func TestFailedFencingRecordsNoMove(t *testing.T) {
	store := newStore(t)
	ctx := context.Background()
	if _, err := store.ClaimOwner(ctx, "rbd/d0", "gw-c", 0); err != nil {
		t.Fatal(err)
	}
	if err := store.RecordClient(ctx, "gw-c", clients["gw-c"], 0x1234); err != nil {
		t.Fatal(err)
	}
	bl := &blocklist{err: errors.New("mon unreachable")}
	m := newManagerWith(store, "gw-a", []string{"gw-a", "gw-b"}, bl)
	defer m.Close()
	m.Wrap("rbd/d0", &lockImage{MemoryImage: rbdbackend.NewMemoryImage(1 << 20)})
	m.takeover("rbd/d0", 1, true, "owner gw-c is gone")
	waitOwner(t, store, "gw-c", 1)
	// Once fencing works, the next attempt moves the disk.
	bl.mu.Lock()
	bl.err = nil
	bl.mu.Unlock()
	m.takeover("rbd/d0", 1, true, "owner gw-c is gone")
	waitOwner(t, store, "gw-a", 2)
}

func TestSlowWriteWithoutAnotherHolderFencesNobody(t *testing.T) {
	store := newStore(t)
	m := newManager(store, "gw-a", []string{"gw-a"})
	defer m.Close()
	img := &lockImage{MemoryImage: rbdbackend.NewMemoryImage(1 << 20), holders: []string{clients["gw-a"]}}
	m.Wrap("rbd/d0", img)
	m.stalled("rbd/d0")
	m.Close()
	if got := img.fencedList(); len(got) != 0 {
		t.Fatalf("fenced %v", got)
	}
}

func TestLostClaimFencesNothing(t *testing.T) {
	store := newStore(t)
	ctx := context.Background()
	if _, err := store.ClaimOwner(ctx, "rbd/d0", "gw-b", 0); err != nil {
		t.Fatal(err)
	}
	m := newManager(store, "gw-a", nil)
	defer m.Close()
	img := &lockImage{MemoryImage: rbdbackend.NewMemoryImage(1 << 20), holders: []string{"127.0.0.1:0/99"}}
	m.Wrap("rbd/d0", img)
	m.takeover("rbd/d0", 0, true, "stale view") // epoch 0: someone claimed first
	if got := img.fencedList(); len(got) != 0 {
		t.Fatalf("a gateway that lost the claim fenced %v", got)
	}
	waitOwner(t, store, "gw-b", 1)
	if _, err := store.ClaimOwner(ctx, "rbd/d0", "gw-c", 0); !errors.Is(err, cluster.ErrConflict) {
		t.Fatalf("claim from a stale epoch: %v", err)
	}
}

func TestNewDiskWaitsForTheOtherGatewaysUpToTheGrace(t *testing.T) {
	store := newStore(t)
	ctx := context.Background()
	live := []string{"gw-a", "gw-b"} // gw-c serves the target but is not up yet
	m := newManager(store, "gw-a", live)
	defer m.Close()
	m.Update(load(t, store, live...))
	time.Sleep(50 * time.Millisecond)
	if o, _ := store.Owners(ctx); o["rbd/d0"].Gateway != "" {
		t.Fatalf("claimed before the grace period: %+v", o["rbd/d0"])
	}
	go m.Run(ctx)
	waitOwner(t, store, "gw-a", 1)
}
