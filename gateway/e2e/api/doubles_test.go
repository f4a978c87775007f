package api_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rbdgw/rbdgw/api"
	"github.com/rbdgw/rbdgw/api/model"
	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/events"
	"github.com/rbdgw/rbdgw/gateway/stats"
)

// fakeCeph is an in-memory Ceph with one pool, "rbd".
type fakeCeph struct {
	mu     sync.Mutex
	images map[string]*fakeImage // "pool/image"
}

type fakeImage struct {
	size     int64
	features []string
	snaps    []string
}

func newFakeCeph() *fakeCeph { return &fakeCeph{images: map[string]*fakeImage{}} }

func (f *fakeCeph) pool(p string) error {
	if p != "rbd" {
		return fmt.Errorf("pool %s: %w", p, api.ErrCephNotFound)
	}
	return nil
}

func (f *fakeCeph) get(pool, image string) (*fakeImage, error) {
	if err := f.pool(pool); err != nil {
		return nil, err
	}
	img, ok := f.images[pool+"/"+image]
	if !ok {
		return nil, fmt.Errorf("image %s/%s: %w", pool, image, api.ErrCephNotFound)
	}
	return img, nil
}

func (f *fakeCeph) CreateImage(pool, image string, size int64, opts api.ImageOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.pool(pool); err != nil {
		return err
	}
	if _, ok := f.images[pool+"/"+image]; ok {
		return fmt.Errorf("image %s/%s: %w", pool, image, api.ErrCephExists)
	}
	feats := opts.Features
	if feats == nil {
		feats = []string{"exclusive-lock", "layering"}
	}
	f.images[pool+"/"+image] = &fakeImage{size: size, features: feats}
	return nil
}

func (f *fakeCeph) ImageInfo(pool, image string) (api.ImageInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	img, err := f.get(pool, image)
	if err != nil {
		return api.ImageInfo{}, err
	}
	return api.ImageInfo{Size: img.size, Features: img.features}, nil
}

func (f *fakeCeph) ResizeImage(pool, image string, size int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	img, err := f.get(pool, image)
	if err != nil {
		return err
	}
	if size < img.size {
		return api.ErrCephShrink
	}
	img.size = size
	return nil
}

func (f *fakeCeph) RemoveImage(pool, image string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.get(pool, image); err != nil {
		return err
	}
	delete(f.images, pool+"/"+image)
	return nil
}

func (f *fakeCeph) ListImages(pool string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.pool(pool); err != nil {
		return nil, err
	}
	var out []string
	for k := range f.images {
		p, i, _ := cluster.SplitDiskID(k)
		if p == pool {
			out = append(out, i)
		}
	}
	return out, nil
}

func (f *fakeCeph) CreateSnapshot(pool, image, snap string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	img, err := f.get(pool, image)
	if err != nil {
		return err
	}
	if slices.Contains(img.snaps, snap) {
		return api.ErrCephExists
	}
	img.snaps = append(img.snaps, snap)
	return nil
}

func (f *fakeCeph) RemoveSnapshot(pool, image, snap string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	img, err := f.get(pool, image)
	if err != nil {
		return err
	}
	i := slices.Index(img.snaps, snap)
	if i < 0 {
		return api.ErrCephNotFound
	}
	img.snaps = slices.Delete(img.snaps, i, i+1)
	return nil
}

func (f *fakeCeph) ListSnapshots(pool, image string) ([]model.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	img, err := f.get(pool, image)
	if err != nil {
		return nil, err
	}
	var out []model.Snapshot
	for i, s := range img.snaps {
		out = append(out, model.Snapshot{Name: s, ID: uint64(i), Size: img.size})
	}
	return out, nil
}

func (f *fakeCeph) Health() (model.Cluster, error) {
	return model.Cluster{Health: "HEALTH_OK", Mons: 1, Quorum: 1, OSDs: 1, OSDsUp: 1, OSDsIn: 1}, nil
}

func (f *fakeCeph) Pools() ([]model.Pool, error) {
	return []model.Pool{{Name: "rbd", Type: "replicated", Size: 1, RBD: true, MaxAvail: 8 << 30}}, nil
}

// memTokens keeps tokens in memory.
type memTokens struct {
	mu     sync.Mutex
	tokens map[string]model.Token
	roles  map[string]api.Role
}

func newMemTokens() *memTokens {
	return &memTokens{tokens: map[string]model.Token{}, roles: map[string]api.Role{}}
}

func (m *memTokens) Verify(_ context.Context, tok string) (api.Principal, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[tok]
	if !ok {
		return api.Principal{}, api.ErrBadToken
	}
	return api.Principal{TokenID: t.ID, Name: t.Name, Role: m.roles[tok]}, nil
}

func (m *memTokens) Create(_ context.Context, name string, role api.Role, _ time.Duration) (string, model.Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	tok := "rbdgw_test_" + hex.EncodeToString(b)
	info := model.Token{ID: hex.EncodeToString(b[:6]), Name: name, Role: role.String(), Created: time.Now()}
	m.tokens[tok], m.roles[tok] = info, role
	return tok, info, nil
}

func (m *memTokens) List(context.Context) ([]model.Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []model.Token
	for _, t := range m.tokens {
		out = append(out, t)
	}
	return out, nil
}

func (m *memTokens) Revoke(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for tok, t := range m.tokens {
		if t.ID == id {
			delete(m.tokens, tok)
			return nil
		}
	}
	return api.ErrTokenNotFound
}

// memAudit keeps entries in memory.
type memAudit struct {
	mu      sync.Mutex
	entries []model.AuditEntry
}

func (a *memAudit) Record(_ context.Context, e model.AuditEntry) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.entries = append(a.entries, e)
	return nil
}

func (a *memAudit) List(_ context.Context, limit int, _ string) ([]model.AuditEntry, string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := slices.Clone(a.entries)
	slices.Reverse(out)
	return out[:min(limit, len(out))], "", nil
}

// liveGateways reports gateways from the store: no daemon runs in these
// tests, so every gateway is down and nothing is waited for.
type liveGateways struct{ store *cluster.Store }

func (l liveGateways) Status(ctx context.Context) ([]api.GatewayStatus, error) {
	snap, _, err := l.store.Load(ctx)
	if err != nil {
		return nil, err
	}
	var out []api.GatewayStatus
	for _, n := range snap.GatewayNames() {
		_, live := snap.Live[n]
		out = append(out, api.GatewayStatus{Name: n, Live: live})
	}
	return out, nil
}

func (l liveGateways) WaitApplied(_ context.Context, rev int64, names []string) ([]string, []string, error) {
	waitedFor.Store(rev)
	return nil, names, nil
}

// waitedFor is the revision the last wait=applied waited for.
var waitedFor atomic.Int64

// etcdStats and etcdEvents are what api/wire's Stats and Events do (the
// daemon wires those), without the gateway daemon's packages.
type etcdStats struct {
	cli    *clientv3.Client
	prefix string
}

func (s etcdStats) Windows(ctx context.Context, window time.Duration) (map[string]stats.Window, error) {
	return stats.Read(ctx, s.cli, s.prefix, window, time.Now())
}

type etcdEvents struct {
	cli    *clientv3.Client
	prefix string
}

func (e etcdEvents) Follow(ctx context.Context, since int64, start func(int64) error, send func([]model.Event) error) error {
	return events.Follow(ctx, e.cli, events.Options{Prefix: e.prefix, Since: since, Start: start,
		Send: func(evs []events.Event) error {
			out := make([]model.Event, len(evs))
			for i, ev := range evs {
				b, _ := json.Marshal(ev)
				if err := json.Unmarshal(b, &out[i]); err != nil {
					return err
				}
			}
			return send(out)
		}})
}
