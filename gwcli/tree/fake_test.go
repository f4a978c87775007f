package tree

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rbdgw/rbdgw/api/model"
	"github.com/rbdgw/rbdgw/gwcli/client"
)

// fakeAPI is an in-memory stand-in for the REST API with the behaviour
// gwcli relies on: list endpoints, ETag/If-Match on hosts, groups, targets
// and disks, dry runs, error bodies. It exists only for unit tests.
type fakeAPI struct {
	t  testing.TB
	mu sync.Mutex

	token    string
	rev      int64
	modRev   map[string]int64 // entity key -> revision
	pools    []model.Pool
	images   map[string][]string
	disks    map[string]model.Disk
	snaps    map[string][]model.Snapshot
	gateways map[string]model.Gateway
	targets  map[string]*model.Target
	hosts    map[string]map[string]*model.Host // own LUNs in LUNs
	groups   map[string]map[string]*model.HostGroup
	disc     *model.CHAP
	sessions []model.Session
	noCeph   bool

	// fail412 makes the next n If-Match writes fail with 412.
	fail412 int
	// log of requests: "METHOD /path?query" and bodies; createOnly the
	// lines of the requests sent with If-None-Match: *.
	log        []string
	bodies     []string
	createOnly []string
	// lunKeyOnlyInLocation leaves the LUN key out of the changes of a
	// map, so that only the 201's Location names the id.
	lunKeyOnlyInLocation bool
	// downOnWait are the gateways a wait=applied answer lists as down.
	downOnWait []string
}

func newFake(t testing.TB) *fakeAPI {
	f := &fakeAPI{t: t, token: "t0k", rev: 100, modRev: map[string]int64{},
		images: map[string][]string{}, disks: map[string]model.Disk{}, snaps: map[string][]model.Snapshot{},
		gateways: map[string]model.Gateway{}, targets: map[string]*model.Target{},
		hosts: map[string]map[string]*model.Host{}, groups: map[string]map[string]*model.HostGroup{}}
	f.pools = []model.Pool{{Name: "rbd", Type: "replicated", Size: 3, RBD: true, MaxAvail: 100 << 30, Used: 3 << 20}}
	return f
}

// start serves f and returns a client of it.
func (f *fakeAPI) start(opts ...func(*client.Options)) (*client.Client, *httptest.Server) {
	srv := httptest.NewServer(f)
	f.t.Cleanup(srv.Close)
	o := client.Options{URL: srv.URL, Token: f.token}
	for _, fn := range opts {
		fn(&o)
	}
	c, err := client.New(o)
	if err != nil {
		f.t.Fatal(err)
	}
	return c, srv
}

func (f *fakeAPI) addDisk(pool, image string, size int64) {
	id := pool + "/" + image
	f.disks[id] = model.Disk{ID: id, Pool: pool, Image: image, Size: size, BlockSize: 512, Serial: "s" + image, WWN: "0123456789abcdef"}
	f.images[pool] = append(f.images[pool], image)
	f.touch("disks/" + id)
}

func (f *fakeAPI) addGateway(name string, live bool, portals ...string) {
	f.gateways[name] = model.Gateway{Name: name, Portals: portals, Live: live, Targets: []string{}}
}

func (f *fakeAPI) addTarget(iqn string, gws ...string) *model.Target {
	t := &model.Target{IQN: iqn, Gateways: gws, LUNs: []model.LUN{}, Hosts: []string{}, HostGroups: []string{}}
	f.targets[iqn] = t
	f.hosts[iqn] = map[string]*model.Host{}
	f.groups[iqn] = map[string]*model.HostGroup{}
	f.touch("targets/" + iqn)
	return t
}

func (f *fakeAPI) mapLUN(iqn, disk string, id uint64) {
	t := f.targets[iqn]
	t.LUNs = append(t.LUNs, model.LUN{ID: id, Disk: disk, Owner: "gw1", Size: f.disks[disk].Size})
	sort.Slice(t.LUNs, func(i, j int) bool { return t.LUNs[i].ID < t.LUNs[j].ID })
	d := f.disks[disk]
	d.Mapping, d.Owner = &model.DiskMapping{Target: iqn, LUN: id}, "gw1"
	f.disks[disk] = d
}

func (f *fakeAPI) addHost(iqn, ini string, luns ...uint64) *model.Host {
	h := &model.Host{Initiator: ini, LUNs: append([]uint64{}, luns...), Addresses: []string{}, LoggedIn: []string{}}
	f.hosts[iqn][ini] = h
	f.touch("targets/" + iqn + "/hosts/" + ini)
	return h
}

func (f *fakeAPI) touch(key string) int64 {
	f.rev++
	f.modRev[key] = f.rev
	return f.rev
}

func (f *fakeAPI) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log...)
}

func (f *fakeAPI) lastBody() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.bodies) == 0 {
		return ""
	}
	return f.bodies[len(f.bodies)-1]
}

type apiErr struct {
	status int
	code   string
	msg    string
}

func fail(status int, code, format string, args ...any) *apiErr {
	return &apiErr{status, code, fmt.Sprintf(format, args...)}
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	line := r.Method + " " + strings.TrimPrefix(r.URL.EscapedPath(), "/api/v1")
	if r.URL.RawQuery != "" {
		line += "?" + r.URL.RawQuery
	}
	f.log = append(f.log, line)
	if r.Header.Get("If-None-Match") == "*" {
		f.createOnly = append(f.createOnly, line)
	}
	if r.Method != http.MethodGet {
		f.bodies = append(f.bodies, string(body))
	}
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		writeJSON(w, 401, model.Error{Error: model.ErrorBody{Code: model.CodeUnauthenticated, Message: "unknown, revoked or expired token"}})
		return
	}
	path, err := url.PathUnescape(strings.TrimPrefix(r.URL.EscapedPath(), "/api/v1"))
	if err != nil || !strings.HasPrefix(r.URL.Path, "/api/v1") {
		writeJSON(w, 404, model.Error{Error: model.ErrorBody{Code: "not_found", Message: "no route"}})
		return
	}
	// Split keeping IQNs whole: they have no slashes.
	segs := strings.Split(strings.Trim(path, "/"), "/")
	if path == "" || path == "/" {
		segs = nil
	}
	status, v, etag, e := f.route(r, segs, body)
	if e != nil {
		writeJSON(w, e.status, model.Error{Error: model.ErrorBody{Code: e.code, Message: e.msg}})
		return
	}
	if etag != 0 {
		w.Header().Set("ETag", `"`+strconv.FormatInt(etag, 10)+`"`)
	}
	if lr, ok := v.(locatedResult); ok {
		w.Header().Set("Location", "/api/v1/"+lr.location)
		v = lr.WriteResult
	} else if wr, ok := v.(model.WriteResult); ok && status == http.StatusCreated && !wr.DryRun {
		for _, c := range wr.Changes {
			if c.Op == "put" {
				w.Header().Set("Location", "/api/v1/"+c.Key)
				break
			}
		}
	}
	writeJSON(w, status, v)
}

// locatedResult is a write result whose Location is set apart from its
// changes.
type locatedResult struct {
	model.WriteResult
	location string
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// present reports whether the entity of a key exists.
func (f *fakeAPI) present(key string) bool {
	s := strings.Split(key, "/")
	switch {
	case len(s) == 3 && s[0] == "disks":
		_, ok := f.disks[s[1]+"/"+s[2]]
		return ok
	case len(s) == 2 && s[0] == "targets":
		_, ok := f.targets[s[1]]
		return ok
	case len(s) == 4 && s[0] == "targets" && s[2] == "hosts":
		_, ok := f.hosts[s[1]][s[3]]
		return ok
	case len(s) == 4 && s[0] == "targets" && s[2] == "host-groups":
		_, ok := f.groups[s[1]][s[3]]
		return ok
	}
	return false
}

func (f *fakeAPI) write(r *http.Request, key string, apply func()) (int, any, int64, *apiErr) {
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		if inm != "*" {
			return 0, nil, 0, fail(400, model.CodeInvalid, "If-None-Match %q: only \"*\"", inm)
		}
		if f.present(key) {
			return 0, nil, 0, fail(412, model.CodePreconditionFailed, "%s already exists (If-None-Match: *)", key)
		}
	}
	if im := r.Header.Get("If-Match"); im != "" {
		if f.fail412 > 0 {
			f.fail412--
			f.touch(key)
			return 0, nil, 0, fail(412, model.CodePreconditionFailed, "%s changed since you read it", key)
		}
		want, _ := strconv.ParseInt(strings.Trim(im, `"`), 10, 64)
		if f.modRev[key] != want {
			return 0, nil, 0, fail(412, model.CodePreconditionFailed, "%s changed since you read it", key)
		}
	}
	op := "put"
	if r.Method == http.MethodDelete {
		op = "delete"
	}
	res := model.WriteResult{Revision: f.rev, Changes: []model.Change{{Op: op, Key: key}}}
	if r.URL.Query().Get("dry_run") == "true" {
		res.DryRun = true
		return 200, res, 0, nil
	}
	apply()
	res.Revision = f.touch(key)
	status := 200
	if r.URL.Query().Get("wait") == "applied" {
		res.Applied = &model.Applied{Done: true, Gateways: []string{"gw1"}, Pending: []string{}, Down: append([]string{}, f.downOnWait...)}
	}
	return status, res, res.Revision, nil
}

func decode(body []byte, v any) *apiErr {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fail(400, model.CodeMalformed, "%v", err)
	}
	return nil
}

func (f *fakeAPI) route(r *http.Request, s []string, body []byte) (int, any, int64, *apiErr) {
	m := r.Method
	get := m == http.MethodGet
	nf := func(format string, args ...any) (int, any, int64, *apiErr) {
		return 0, nil, 0, fail(404, model.CodeNotFound, format, args...)
	}
	switch {
	case len(s) == 0 && get:
		return 200, model.Info{Version: "test", API: "v1", Gateway: "gw1", Revision: f.rev}, 0, nil
	case len(s) == 1 && s[0] == "cluster" && get:
		if f.noCeph {
			return 0, nil, 0, fail(501, model.CodeCephNotConfigured, "gateway gw1 has no Ceph client")
		}
		return 200, model.Cluster{FSID: "f5", Health: "HEALTH_OK", Checks: []model.HealthCheck{}, Mons: 1, Quorum: 1, OSDs: 1, OSDsUp: 1, OSDsIn: 1, Gateways: len(f.gateways), Live: len(f.gateways)}, 0, nil
	case len(s) == 1 && s[0] == "pools" && get:
		if f.noCeph {
			return 0, nil, 0, fail(501, model.CodeCephNotConfigured, "gateway gw1 has no Ceph client")
		}
		out := append([]model.Pool(nil), f.pools...)
		for i := range out {
			for _, d := range f.disks {
				if d.Pool == out[i].Name {
					out[i].Committed += d.Size
					out[i].Disks++
				}
			}
		}
		return 200, out, 0, nil
	case len(s) == 3 && s[0] == "pools" && s[2] == "images" && get:
		out := []model.Image{}
		for _, n := range f.images[s[1]] {
			_, isDisk := f.disks[s[1]+"/"+n]
			out = append(out, model.Image{Name: n, Disk: isDisk})
		}
		return 200, out, 0, nil
	case len(s) == 1 && s[0] == "gateways" && get:
		out := []model.Gateway{}
		for _, n := range sortedKeys(f.gateways) {
			out = append(out, f.gateway(n))
		}
		return 200, out, 0, nil
	case len(s) == 2 && s[0] == "gateways" && get:
		if _, ok := f.gateways[s[1]]; !ok {
			return nf("gateway %q does not exist", s[1])
		}
		return 200, f.gateway(s[1]), 0, nil
	case len(s) == 1 && s[0] == "disks" && get:
		out := []model.Disk{}
		for _, id := range sortedKeys(f.disks) {
			out = append(out, f.disks[id])
		}
		return 200, out, 0, nil
	case len(s) >= 3 && s[0] == "disks":
		return f.disk(r, s[1]+"/"+s[2], s[3:], body)
	case len(s) == 1 && s[0] == "targets" && get:
		out := []model.Target{}
		for _, iqn := range sortedKeys(f.targets) {
			out = append(out, f.target(iqn))
		}
		return 200, out, 0, nil
	case len(s) >= 2 && s[0] == "targets":
		return f.targetRoutes(r, s[1], s[2:], body)
	case len(s) == 1 && s[0] == "discovery-auth":
		switch m {
		case http.MethodGet:
			return 200, model.DiscoveryAuth{Enabled: f.disc != nil, CHAP: masked(f.disc)}, 0, nil
		case http.MethodPut:
			var c model.CHAP
			if e := decode(body, &c); e != nil {
				return 0, nil, 0, e
			}
			return f.write(r, "discovery-auth", func() { f.disc = &c })
		case http.MethodDelete:
			return f.write(r, "discovery-auth", func() { f.disc = nil })
		}
	case len(s) == 1 && s[0] == "sessions" && get:
		q := r.URL.Query()
		out := model.Sessions{Sessions: []model.Session{}, Down: []string{}}
		for _, ss := range f.sessions {
			if (q.Get("target") == "" || ss.Target == q.Get("target")) && (q.Get("initiator") == "" || ss.Initiator == q.Get("initiator")) &&
				(q.Get("gateway") == "" || ss.Gateway == q.Get("gateway")) {
				out.Sessions = append(out.Sessions, ss)
			}
		}
		return 200, out, 0, nil
	case len(s) == 2 && s[0] == "config" && s[1] == "export" && get:
		return 200, model.Export{Version: 1, Gateways: []model.ExportGateway{}, Disks: []model.ExportDisk{}, Targets: []model.ExportTarget{}}, f.rev, nil
	}
	return 0, nil, 0, fail(404, model.CodeNotFound, "no API route %s %s", m, r.URL.Path)
}

func masked(c *model.CHAP) *model.CHAP {
	if c == nil {
		return nil
	}
	out := *c
	out.Secret = model.Masked
	if out.MutualSecret != "" {
		out.MutualSecret = model.Masked
	}
	return &out
}

func (f *fakeAPI) gateway(n string) model.Gateway {
	g := f.gateways[n]
	g.Targets = []string{}
	for _, iqn := range sortedKeys(f.targets) {
		if contains(f.targets[iqn].Gateways, n) {
			g.Targets = append(g.Targets, iqn)
		}
	}
	return g
}

func (f *fakeAPI) target(iqn string) model.Target {
	t := *f.targets[iqn]
	t.CHAP = masked(t.CHAP)
	t.Hosts = sortedKeys(f.hosts[iqn])
	if t.Hosts == nil {
		t.Hosts = []string{}
	}
	t.HostGroups = sortedKeys(f.groups[iqn])
	if t.HostGroups == nil {
		t.HostGroups = []string{}
	}
	return t
}

func (f *fakeAPI) hostOut(iqn string, h *model.Host) model.Host {
	out := *h
	out.CHAP = masked(h.CHAP)
	out.LUNs = append([]uint64{}, h.LUNs...)
	for _, g := range f.groups[iqn] {
		if contains(g.Members, h.Initiator) {
			out.Group, out.LUNs = g.Name, append([]uint64{}, g.LUNs...)
		}
	}
	return out
}

func (f *fakeAPI) disk(r *http.Request, id string, rest []string, body []byte) (int, any, int64, *apiErr) {
	d, exists := f.disks[id]
	key := "disks/" + id
	switch {
	case len(rest) == 0 && r.Method == http.MethodGet:
		if !exists {
			return 0, nil, 0, fail(404, model.CodeNotFound, "disk %s does not exist", id)
		}
		size := d.Size
		d.ImageSize, d.Features = &size, []string{"exclusive-lock", "layering"}
		return 200, d, f.modRev[key], nil
	case len(rest) == 0 && r.Method == http.MethodPut:
		var in model.DiskPut
		if e := decode(body, &in); e != nil {
			return 0, nil, 0, e
		}
		pool, image, _ := strings.Cut(id, "/")
		if in.Size == nil && !contains(f.images[pool], image) {
			return 0, nil, 0, fail(404, model.CodeImageMissing, "image %s does not exist in Ceph; give a size to create it", id)
		}
		if exists && in.Size != nil && int64(*in.Size) < d.Size {
			return 0, nil, 0, fail(400, model.CodeInvalid, "disk %s: size can only grow", id)
		}
		st, v, etag, e := f.write(r, key, func() {
			if !exists {
				d = model.Disk{ID: id, Pool: pool, Image: image, BlockSize: 512, PhysicalBlockSize: 4096, Serial: "gen", WWN: "0123456789abcdef"}
				if in.BlockSize != 0 {
					d.BlockSize = in.BlockSize
				}
				if in.PhysicalBlockSize != 0 {
					d.PhysicalBlockSize = in.PhysicalBlockSize
				}
				if !contains(f.images[pool], image) {
					f.images[pool] = append(f.images[pool], image)
				}
				d.Size = 1 << 30
			}
			if in.Size != nil {
				d.Size = int64(*in.Size)
			}
			d.ReadOnly = in.ReadOnly
			f.disks[id] = d
		})
		if e == nil && !exists && r.URL.Query().Get("dry_run") != "true" {
			st = 201
		}
		return st, v, etag, e
	case len(rest) == 0 && r.Method == http.MethodDelete:
		if !exists {
			return 0, nil, 0, fail(404, model.CodeNotFound, "disk %s does not exist", id)
		}
		if d.Mapping != nil {
			return 0, nil, 0, fail(409, model.CodeInUse, "disk %s is mapped as LUN %d of %s", id, d.Mapping.LUN, d.Mapping.Target)
		}
		return f.write(r, key, func() {
			delete(f.disks, id)
			if r.URL.Query().Get("remove_image") == "true" {
				pool, image, _ := strings.Cut(id, "/")
				f.images[pool] = removeString(f.images[pool], image)
			}
		})
	case len(rest) >= 1 && rest[0] == "snapshots":
		if !exists {
			return 0, nil, 0, fail(404, model.CodeNotFound, "disk %s does not exist", id)
		}
		switch {
		case r.Method == http.MethodGet:
			return 200, append([]model.Snapshot{}, f.snaps[id]...), 0, nil
		case r.Method == http.MethodPost:
			var in model.SnapshotCreate
			if e := decode(body, &in); e != nil {
				return 0, nil, 0, e
			}
			f.snaps[id] = append(f.snaps[id], model.Snapshot{Name: in.Name, ID: uint64(len(f.snaps[id]) + 1), Size: d.Size})
			return 201, model.WriteResult{Changes: []model.Change{{Op: "put", Key: "ceph:" + id + "@" + in.Name}}}, 0, nil
		case r.Method == http.MethodDelete && len(rest) == 2:
			return 200, model.WriteResult{Changes: []model.Change{{Op: "delete", Key: "ceph:" + id + "@" + rest[1]}}}, 0, nil
		}
	}
	return 0, nil, 0, fail(405, model.CodeMethodNotAllowed, "not allowed")
}

func (f *fakeAPI) targetRoutes(r *http.Request, iqn string, rest []string, body []byte) (int, any, int64, *apiErr) {
	m := r.Method
	t, exists := f.targets[iqn]
	key := "targets/" + iqn
	if !exists && !(len(rest) == 0 && m == http.MethodPut) {
		return 0, nil, 0, fail(404, model.CodeNotFound, "target %s does not exist", iqn)
	}
	switch {
	case len(rest) == 0 && m == http.MethodGet:
		return 200, f.target(iqn), f.modRev[key], nil
	case len(rest) == 0 && m == http.MethodPut:
		var in model.TargetPut
		if e := decode(body, &in); e != nil {
			return 0, nil, 0, e
		}
		return f.write(r, key, func() {
			if !exists {
				t = f.addTarget(iqn)
			}
			t.Gateways, t.AllowAnyInitiator = append([]string{}, in.Gateways...), in.AllowAnyInitiator
			if in.CHAP == nil {
				t.CHAP = nil
			} else if in.CHAP.Secret != model.Masked {
				c := *in.CHAP
				t.CHAP = &c
			}
		})
	case len(rest) == 0 && m == http.MethodDelete:
		return f.write(r, key, func() {
			for _, l := range t.LUNs { // the cascade unmaps its disks
				if d, ok := f.disks[l.Disk]; ok {
					d.Mapping, d.Owner = nil, ""
					f.disks[l.Disk] = d
				}
			}
			delete(f.targets, iqn)
			delete(f.hosts, iqn)
			delete(f.groups, iqn)
		})
	case len(rest) == 1 && rest[0] == "gateways" && m == http.MethodGet:
		out := []model.Gateway{}
		for _, n := range t.Gateways {
			out = append(out, f.gateway(n))
		}
		return 200, out, 0, nil
	case len(rest) == 2 && rest[0] == "gateways" && m == http.MethodPut:
		var in model.TargetGatewayPut
		if e := decode(body, &in); e != nil {
			return 0, nil, 0, e
		}
		g, ok := f.gateways[rest[1]]
		if !ok && len(in.Portals) == 0 {
			return 0, nil, 0, fail(400, model.CodeInvalid, "gateway %q does not exist yet: give its portals (ip:port) to create it", rest[1])
		}
		if ok && len(in.Portals) > 0 && strings.Join(in.Portals, ",") != strings.Join(g.Portals, ",") {
			return 0, nil, 0, fail(409, model.CodeExists, "gateway %q is registered with portals %v, not %v", rest[1], g.Portals, in.Portals)
		}
		return f.write(r, key, func() {
			if !ok {
				f.addGateway(rest[1], true, in.Portals...)
			}
			if !contains(t.Gateways, rest[1]) {
				t.Gateways = append(t.Gateways, rest[1])
			}
		})
	case len(rest) == 2 && rest[0] == "gateways" && m == http.MethodDelete:
		if !contains(t.Gateways, rest[1]) {
			return 0, nil, 0, fail(404, model.CodeNotFound, "gateway %q does not serve target %s", rest[1], iqn)
		}
		return f.write(r, key, func() { t.Gateways = removeString(t.Gateways, rest[1]) })
	case len(rest) == 1 && rest[0] == "luns" && m == http.MethodGet:
		return 200, append([]model.LUN{}, t.LUNs...), 0, nil
	case len(rest) >= 1 && rest[0] == "luns" && (m == http.MethodPost || m == http.MethodPut):
		var in model.LUNPut
		if e := decode(body, &in); e != nil {
			return 0, nil, 0, e
		}
		d, ok := f.disks[in.Disk]
		if !ok {
			return 0, nil, 0, fail(404, model.CodeNotFound, "disk %s does not exist (create it under /disks first)", in.Disk)
		}
		if d.Mapping != nil {
			if d.Mapping.Target == iqn {
				return 200, model.WriteResult{Revision: f.rev, Changes: []model.Change{}}, 0, nil
			}
			return 0, nil, 0, fail(409, model.CodeInUse, "disk %s is already mapped as LUN %d of %s", in.Disk, d.Mapping.LUN, d.Mapping.Target)
		}
		var id uint64
		if len(rest) == 2 {
			id, _ = strconv.ParseUint(rest[1], 10, 64)
		} else {
			used := map[uint64]bool{}
			for _, l := range t.LUNs {
				used[l.ID] = true
			}
			for used[id] {
				id++
			}
		}
		r2 := r.Clone(r.Context())
		r2.Header.Del("If-Match")
		st, v, etag, e := f.write(r2, fmt.Sprintf("targets/%s/luns/%d", iqn, id), func() { f.mapLUN(iqn, in.Disk, id) })
		if e == nil && m == http.MethodPost && r.URL.Query().Get("dry_run") != "true" {
			st = 201
			if f.lunKeyOnlyInLocation {
				wr := v.(model.WriteResult)
				loc := wr.Changes[0].Key
				wr.Changes = []model.Change{{Op: "put", Key: "targets/" + iqn}}
				return st, locatedResult{wr, loc}, etag, e
			}
		}
		return st, v, etag, e
	case len(rest) == 2 && rest[0] == "luns" && m == http.MethodDelete:
		id, _ := strconv.ParseUint(rest[1], 10, 64)
		var disk string
		for _, l := range t.LUNs {
			if l.ID == id {
				disk = l.Disk
			}
		}
		if disk == "" {
			return 0, nil, 0, fail(404, model.CodeNotFound, "target %s has no LUN %d", iqn, id)
		}
		return f.write(r, fmt.Sprintf("targets/%s/luns/%d", iqn, id), func() {
			var keep []model.LUN
			for _, l := range t.LUNs {
				if l.ID != id {
					keep = append(keep, l)
				}
			}
			t.LUNs = append([]model.LUN{}, keep...)
			d := f.disks[disk]
			d.Mapping, d.Owner = nil, ""
			f.disks[disk] = d
		})
	case len(rest) == 1 && rest[0] == "hosts" && m == http.MethodGet:
		out := []model.Host{}
		for _, ini := range sortedKeys(f.hosts[iqn]) {
			out = append(out, f.hostOut(iqn, f.hosts[iqn][ini]))
		}
		return 200, out, 0, nil
	case len(rest) == 2 && rest[0] == "hosts":
		ini := rest[1]
		h, ok := f.hosts[iqn][ini]
		hkey := key + "/hosts/" + ini
		switch m {
		case http.MethodGet:
			if !ok {
				return 0, nil, 0, fail(404, model.CodeNotFound, "target %s has no host %s", iqn, ini)
			}
			return 200, f.hostOut(iqn, h), f.modRev[hkey], nil
		case http.MethodPut:
			var in model.HostPut
			if e := decode(body, &in); e != nil {
				return 0, nil, 0, e
			}
			for _, g := range f.groups[iqn] {
				if contains(g.Members, ini) && len(in.LUNs) > 0 {
					return 0, nil, 0, fail(400, model.CodeInvalid, "host %s: member of host group %s, which sets its LUNs", ini, g.Name)
				}
			}
			if in.CHAP != nil && in.CHAP.Secret == model.Masked && (h == nil || h.CHAP == nil) {
				return 0, nil, 0, fail(400, model.CodeInvalid, "secret is masked but none is stored")
			}
			return f.write(r, hkey, func() {
				if !ok {
					h = f.addHost(iqn, ini)
				}
				if in.CHAP == nil {
					h.CHAP = nil
				} else if in.CHAP.Secret != model.Masked {
					c := *in.CHAP
					h.CHAP = &c
				}
				h.LUNs = append([]uint64{}, in.LUNs...)
			})
		case http.MethodDelete:
			if !ok {
				return 0, nil, 0, fail(404, model.CodeNotFound, "target %s has no host %s", iqn, ini)
			}
			return f.write(r, hkey, func() { delete(f.hosts[iqn], ini) })
		}
	case len(rest) == 1 && rest[0] == "host-groups" && m == http.MethodGet:
		out := []model.HostGroup{}
		for _, n := range sortedKeys(f.groups[iqn]) {
			out = append(out, *f.groups[iqn][n])
		}
		return 200, out, 0, nil
	case len(rest) == 2 && rest[0] == "host-groups":
		name := rest[1]
		g, ok := f.groups[iqn][name]
		gkey := key + "/host-groups/" + name
		switch m {
		case http.MethodGet:
			if !ok {
				return 0, nil, 0, fail(404, model.CodeNotFound, "target %s has no host group %q", iqn, name)
			}
			return 200, *g, f.modRev[gkey], nil
		case http.MethodPut:
			var in model.HostGroupPut
			if e := decode(body, &in); e != nil {
				return 0, nil, 0, e
			}
			for _, mbr := range in.Members {
				if h, ok := f.hosts[iqn][mbr]; !ok {
					return 0, nil, 0, fail(400, model.CodeInvalid, "host group %s: target %s has no host %s", name, iqn, mbr)
				} else if len(h.LUNs) > 0 {
					return 0, nil, 0, fail(400, model.CodeInvalid, "host group %s: host %s has its own LUN list; clear it first", name, mbr)
				}
			}
			return f.write(r, gkey, func() {
				if !ok {
					g = &model.HostGroup{Name: name}
					f.groups[iqn][name] = g
				}
				g.Members, g.LUNs = append([]string{}, in.Members...), append([]uint64{}, in.LUNs...)
			})
		case http.MethodDelete:
			if !ok {
				return 0, nil, 0, fail(404, model.CodeNotFound, "target %s has no host group %q", iqn, name)
			}
			return f.write(r, gkey, func() { delete(f.groups[iqn], name) })
		}
	}
	return 0, nil, 0, fail(404, model.CodeNotFound, "no API route %s %s", m, r.URL.Path)
}
