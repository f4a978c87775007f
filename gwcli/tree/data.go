package tree

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/rbdgw/rbdgw/api/model"
	"github.com/rbdgw/rbdgw/gateway/config"
	"github.com/rbdgw/rbdgw/gwcli/client"
)

// State is what a listing is built from: the API's documents as they came,
// each from one list endpoint (never one request per disk or host).
type State struct {
	Cluster       *model.Cluster               `json:"cluster,omitempty" yaml:"cluster,omitempty"`
	Pools         []model.Pool                 `json:"pools,omitempty" yaml:"pools,omitempty"`
	Disks         []model.Disk                 `json:"disks,omitempty" yaml:"disks,omitempty"`
	Gateways      []model.Gateway              `json:"gateways,omitempty" yaml:"gateways,omitempty"`
	DiscoveryAuth *model.DiscoveryAuth         `json:"discovery_auth,omitempty" yaml:"discovery_auth,omitempty"`
	Targets       []model.Target               `json:"targets,omitempty" yaml:"targets,omitempty"`
	Hosts         map[string][]model.Host      `json:"hosts,omitempty" yaml:"hosts,omitempty"`             // by target IQN
	HostGroups    map[string][]model.HostGroup `json:"host_groups,omitempty" yaml:"host_groups,omitempty"` // by target IQN

	// Errors of the Ceph parts (a gateway without a Ceph client, Ceph
	// down): the listing shows them instead of failing.
	ClusterErr error `json:"-" yaml:"-"`
	PoolsErr   error `json:"-" yaml:"-"`
}

// need says which parts of the State a node's listing uses.
type need struct {
	cluster, pools, disks, gateways, discovery, targets bool
	// target limits targets (and their hosts and groups) to one IQN.
	target        string
	hosts, groups bool
}

// needFor is what listing p to the given depth (0: all) needs.
func needFor(p Path, depth int) need {
	deep := func(levels int) bool { return depth == 0 || depth >= levels }
	n := need{}
	switch p.Kind {
	case KRoot:
		n = need{cluster: true, pools: deep(2), disks: deep(1), gateways: deep(3), discovery: true, targets: deep(1),
			hosts: deep(3), groups: deep(3)}
		if deep(3) {
			n.disks = true // host summaries show disk sizes
		}
	case KCluster:
		n = need{cluster: true, pools: deep(1)}
	case KPools, KPool:
		n = need{pools: true}
	case KDisks, KDiskPool, KDisk:
		n = need{disks: true}
	case KTargets:
		n = need{discovery: true, targets: true, gateways: deep(2), hosts: deep(2), groups: deep(2)}
	default: // under one target
		n = need{targets: true, target: p.Target, gateways: true, hosts: true, groups: true}
	}
	return n
}

// maxParallel bounds the requests a listing has in flight.
const maxParallel = 8

// Load fetches what n needs, in parallel. Configuration reads that fail
// fail the load; the Ceph parts record their error.
func Load(ctx context.Context, c *client.Client, n need) (*State, error) {
	st := &State{Hosts: map[string][]model.Host{}, HostGroups: map[string][]model.HostGroup{}}
	var mu sync.Mutex
	var firstErr error
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	sem := make(chan struct{}, maxParallel)
	var wg sync.WaitGroup
	run := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			f()
		}()
	}
	if n.cluster {
		run(func() {
			v, err := c.Cluster(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				st.ClusterErr = err
				return
			}
			st.Cluster = &v
		})
	}
	if n.pools {
		run(func() {
			v, err := c.Pools(ctx)
			mu.Lock()
			defer mu.Unlock()
			st.Pools, st.PoolsErr = v, err
		})
	}
	if n.disks {
		run(func() {
			v, err := c.Disks(ctx)
			if err != nil {
				fail(err)
				return
			}
			mu.Lock()
			st.Disks = v
			mu.Unlock()
		})
	}
	if n.gateways {
		run(func() {
			v, err := c.Gateways(ctx)
			if err != nil {
				fail(err)
				return
			}
			mu.Lock()
			st.Gateways = v
			mu.Unlock()
		})
	}
	if n.discovery {
		run(func() {
			v, err := c.DiscoveryAuth(ctx)
			if err != nil {
				fail(err)
				return
			}
			mu.Lock()
			st.DiscoveryAuth = &v
			mu.Unlock()
		})
	}
	perTarget := func(iqn string) {
		if n.hosts {
			run(func() {
				v, err := c.Hosts(ctx, iqn)
				if err != nil {
					fail(err)
					return
				}
				mu.Lock()
				st.Hosts[iqn] = v
				mu.Unlock()
			})
		}
		if n.groups {
			run(func() {
				v, err := c.HostGroups(ctx, iqn)
				if err != nil {
					fail(err)
					return
				}
				mu.Lock()
				st.HostGroups[iqn] = v
				mu.Unlock()
			})
		}
	}
	if n.target != "" {
		// One target: its document and its children, all at once.
		run(func() {
			t, _, err := c.Target(ctx, n.target)
			if err != nil {
				fail(err)
				return
			}
			mu.Lock()
			st.Targets = []model.Target{t}
			mu.Unlock()
		})
		perTarget(n.target)
	} else if n.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			ts, err := c.Targets(ctx)
			<-sem
			if err != nil {
				fail(err)
				return
			}
			mu.Lock()
			st.Targets = ts
			mu.Unlock()
			for _, t := range ts {
				perTarget(t.IQN)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	// Cancelled (Ctrl-C in the shell): the cluster and the pools, which
	// may fail alone, would show as "unavailable: context canceled".
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return st, nil
}

// target finds a target in the state.
func (s *State) target(iqn string) (model.Target, bool) {
	for _, t := range s.Targets {
		if t.IQN == iqn {
			return t, true
		}
	}
	return model.Target{}, false
}

func (s *State) disk(id string) (model.Disk, bool) {
	for _, d := range s.Disks {
		if d.ID == id {
			return d, true
		}
	}
	return model.Disk{}, false
}

func (s *State) gateway(name string) (model.Gateway, bool) {
	for _, g := range s.Gateways {
		if g.Name == name {
			return g, true
		}
	}
	return model.Gateway{}, false
}

func (s *State) host(iqn, ini string) (model.Host, bool) {
	for _, h := range s.Hosts[iqn] {
		if h.Initiator == ini {
			return h, true
		}
	}
	return model.Host{}, false
}

func (s *State) group(iqn, name string) (model.HostGroup, bool) {
	for _, g := range s.HostGroups[iqn] {
		if g.Name == name {
			return g, true
		}
	}
	return model.HostGroup{}, false
}

// Cache keeps completion data for a few seconds so that typing never
// waits on the network: a stale entry is returned at once and refreshed
// in the background; a missing one is fetched, waiting at most ColdWait.
type Cache struct {
	c        *client.Client
	TTL      time.Duration
	ColdWait time.Duration

	mu      sync.Mutex
	entries map[string]*entry
}

type entry struct {
	val     any
	err     error
	at      time.Time
	loading bool
	done    chan struct{} // closed when the first load ends
}

// NewCache returns a cache with a 5 s TTL.
func NewCache(c *client.Client) *Cache {
	return &Cache{c: c, TTL: 5 * time.Second, ColdWait: 400 * time.Millisecond, entries: map[string]*entry{}}
}

// Invalidate drops every entry (after a write).
func (k *Cache) Invalidate() {
	if k == nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for key, e := range k.entries {
		if !e.loading {
			delete(k.entries, key)
		} else {
			e.at = time.Time{}
		}
	}
}

// get returns the cached value of key, loading it with f when missing or
// stale.
func (k *Cache) get(key string, f func(context.Context) (any, error)) (any, error) {
	k.mu.Lock()
	e, ok := k.entries[key]
	if !ok {
		e = &entry{done: make(chan struct{})}
		k.entries[key] = e
	}
	stale := time.Since(e.at) > k.TTL
	if stale && !e.loading {
		e.loading = true
		go k.load(key, e, f)
	}
	val, err, first := e.val, e.err, e.at.IsZero() && e.val == nil && e.err == nil
	done := e.done
	k.mu.Unlock()
	if !first {
		return val, err
	}
	select {
	case <-done:
	case <-time.After(k.ColdWait):
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return e.val, e.err
}

func (k *Cache) load(key string, e *entry, f func(context.Context) (any, error)) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := f(ctx)
	k.mu.Lock()
	defer k.mu.Unlock()
	if err == nil || e.val == nil {
		e.val, e.err = v, err
	}
	e.at = time.Now()
	e.loading = false
	select {
	case <-e.done:
	default:
		close(e.done)
	}
}

// Typed cache readers; each returns nil on error (completion shows what
// it has).

func (k *Cache) Pools() []model.Pool {
	v, _ := k.get("pools", func(ctx context.Context) (any, error) { return k.c.Pools(ctx) })
	p, _ := v.([]model.Pool)
	return p
}

func (k *Cache) Images(pool string) []model.Image {
	v, _ := k.get("images/"+pool, func(ctx context.Context) (any, error) { return k.c.Images(ctx, pool) })
	p, _ := v.([]model.Image)
	return p
}

func (k *Cache) Disks() []model.Disk {
	v, _ := k.get("disks", func(ctx context.Context) (any, error) { return k.c.Disks(ctx) })
	p, _ := v.([]model.Disk)
	return p
}

func (k *Cache) Targets() []model.Target {
	v, _ := k.get("targets", func(ctx context.Context) (any, error) { return k.c.Targets(ctx) })
	p, _ := v.([]model.Target)
	return p
}

func (k *Cache) Target(iqn string) (model.Target, bool) {
	for _, t := range k.Targets() {
		if t.IQN == iqn {
			return t, true
		}
	}
	return model.Target{}, false
}

func (k *Cache) Gateways() []model.Gateway {
	v, _ := k.get("gateways", func(ctx context.Context) (any, error) { return k.c.Gateways(ctx) })
	p, _ := v.([]model.Gateway)
	return p
}

func (k *Cache) Hosts(iqn string) []model.Host {
	v, _ := k.get("hosts/"+iqn, func(ctx context.Context) (any, error) { return k.c.Hosts(ctx, iqn) })
	p, _ := v.([]model.Host)
	return p
}

func (k *Cache) HostGroups(iqn string) []model.HostGroup {
	v, _ := k.get("groups/"+iqn, func(ctx context.Context) (any, error) { return k.c.HostGroups(ctx, iqn) })
	p, _ := v.([]model.HostGroup)
	return p
}

func (k *Cache) Snapshots(disk string) []model.Snapshot {
	v, _ := k.get("snaps/"+disk, func(ctx context.Context) (any, error) { return k.c.Snapshots(ctx, disk) })
	p, _ := v.([]model.Snapshot)
	return p
}

// Prefetch warms the entries the first completions use.
func (k *Cache) Prefetch() {
	go k.Targets()
	go k.Disks()
	go k.Gateways()
	go k.Pools()
}

// Children lists the names of p's children from the cache, with a one-line
// description each, for path completion.
func (k *Cache) Children(p Path) []Named {
	var out []Named
	switch p.Kind {
	case KRoot:
		out = []Named{{"cluster", "Ceph health and pools"}, {"disks", "RBD images exported as LUNs"}, {"iscsi-targets", "targets, their gateways, disks and hosts"}}
	case KCluster:
		out = []Named{{"pools", "Ceph pools"}}
	case KPools:
		for _, pl := range k.Pools() {
			out = append(out, Named{pl.Name, poolSummary(pl)})
		}
	case KDisks:
		seen := map[string]int{}
		for _, d := range k.Disks() {
			seen[d.Pool]++
		}
		for _, pool := range sortedKeys(seen) {
			out = append(out, Named{pool, plural(seen[pool], "disk")})
		}
	case KDiskPool:
		for _, d := range k.Disks() {
			if d.Pool == p.Pool {
				out = append(out, Named{d.Image, diskDesc(d)})
			}
		}
	case KTargets:
		for _, t := range k.Targets() {
			out = append(out, Named{t.IQN, targetSummary(t)})
		}
	case KTarget:
		out = []Named{{"disks", "LUNs of the target"}, {"gateways", "gateways serving the target"}, {"host-groups", "groups of hosts sharing LUNs"}, {"hosts", "initiators admitted"}}
	case KTGateways:
		if t, ok := k.Target(p.Target); ok {
			gws := k.Gateways()
			for _, n := range t.Gateways {
				desc := ""
				for _, g := range gws {
					if g.Name == n {
						desc = gatewaySummary(g)
					}
				}
				out = append(out, Named{n, desc})
			}
		}
	case KTDisks:
		if t, ok := k.Target(p.Target); ok {
			for _, l := range t.LUNs {
				out = append(out, Named{l.Disk, lunSummary(l)})
			}
		}
	case KHosts:
		for _, h := range k.Hosts(p.Target) {
			out = append(out, Named{h.Initiator, hostSummary(h, nil)})
		}
	case KHost:
		for _, h := range k.Hosts(p.Target) {
			if h.Initiator == p.Name {
				for _, id := range h.LUNs {
					out = append(out, Named{"lun" + itoa(id), "LUN " + itoa(id)})
				}
			}
		}
	case KGroups:
		for _, g := range k.HostGroups(p.Target) {
			out = append(out, Named{g.Name, groupSummary(g)})
		}
	case KGroup:
		for _, g := range k.HostGroups(p.Target) {
			if g.Name != p.Name {
				continue
			}
			for _, m := range g.Members {
				out = append(out, Named{m, "host"})
			}
			if t, ok := k.Target(p.Target); ok {
				for _, l := range t.LUNs {
					for _, id := range g.LUNs {
						if id == l.ID {
							out = append(out, Named{l.Disk, "disk, LUN " + itoa(id)})
						}
					}
				}
			}
		}
	}
	return out
}

// Named is a child name with a description.
type Named struct {
	Name, Desc string
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// canonical is the stored form of an iSCSI name.
func canonical(s string) string { return config.CanonicalName(s) }
