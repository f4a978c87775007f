package api_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/rbdgw/rbdgw/api"
	"github.com/rbdgw/rbdgw/api/model"
	"github.com/rbdgw/rbdgw/gateway/cluster"
)

// TestDiskPreconditionsBeforeCeph: a create-only PUT of a disk that
// exists, or one with a stale If-Match, is refused before Ceph is touched:
// the image keeps its size (it used to be grown first and the write
// refused after).
func TestDiskPreconditionsBeforeCeph(t *testing.T) {
	e := newEnv(t)
	e.must(201, "PUT", "/disks/rbd/d1", `{"size": "1G"}`)
	tag := e.must(200, "GET", "/disks/rbd/d1", nil).header.Get("ETag")
	before := e.export()
	size := func() int64 {
		t.Helper()
		info, err := e.ceph.ImageInfo("rbd", "d1")
		if err != nil {
			t.Fatal(err)
		}
		return info.Size
	}
	for _, tc := range []struct {
		name string
		hdr  []string
	}{
		{"create-only", []string{"If-None-Match", "*"}},
		{"stale If-Match", []string{"If-Match", `"1"`}},
	} {
		r := e.do(api.RoleOperator, "PUT", "/disks/rbd/d1", `{"size": "5G"}`, tc.hdr...)
		if r.status != 412 || r.err().Code != model.CodePreconditionFailed {
			t.Errorf("%s: %d %s, want 412", tc.name, r.status, r.body)
		}
		if got := size(); got != 1<<30 {
			t.Errorf("%s: the refused request resized the image to %d", tc.name, got)
		}
	}
	// A create-only PUT of a new disk with If-Match * (it must exist) does
	// not create its image either.
	if r := e.do(api.RoleOperator, "PUT", "/disks/rbd/d2", `{"size": "1G"}`, "If-Match", "*"); r.status != 412 {
		t.Errorf("If-Match * on a missing disk: %d %s", r.status, r.body)
	}
	if _, err := e.ceph.ImageInfo("rbd", "d2"); err == nil {
		t.Error("a refused create made the image")
	}
	if e.export() != before {
		t.Error("a refused request stored something")
	}
	// The current ETag still grows it.
	e.must(200, "PUT", "/disks/rbd/d1", `{"size": "2G"}`, "If-Match", tag)
	if got := size(); got != 2<<30 {
		t.Errorf("grow with If-Match: image size %d", got)
	}
}

// twin is a second API server (another gateway's) over the same etcd
// prefix, Ceph double and tokens; e.do's paths go to it with url.
func (e *env) twin() string {
	e.t.Helper()
	store, err := cluster.New(etcdCli, cluster.Options{Prefix: e.prefix})
	if err != nil {
		e.t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.Options{Store: store, Ceph: e.ceph, Gateways: liveGateways{store}, Tokens: e.toks,
		Audit: &memAudit{}, Gateway: "gw-twin", Version: "test"}).Handler())
	e.t.Cleanup(srv.Close)
	return srv.URL
}

// post sends an operator's POST to the API at base.
func (e *env) post(base, path, body string) (int, http.Header, string) {
	req, err := http.NewRequest("POST", base+api.APIPrefix+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err.Error()
	}
	req.Header.Set("Authorization", "Bearer "+e.tokens[api.RoleOperator])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestConcurrentLUNMaps: maps of different disks at the lowest free id,
// sent at once, do not conflict logically: every one succeeds, each with
// its own LUN id, through one gateway's API and through two. They used to
// exhaust the write's retries (every map guards the targets, so each
// commit makes the others start again) and answer 409.
func TestConcurrentLUNMaps(t *testing.T) {
	for _, tc := range []struct {
		name    string
		n       int
		servers int
	}{
		{"one API", 40, 1},
		{"two APIs", 40, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.must(200, "PUT", "/gateways/gw-a", model.GatewayPut{Portals: []string{"127.0.0.1:3260"}})
			e.must(200, "PUT", "/targets/"+tgt, model.TargetPut{Gateways: []string{"gw-a"}})
			for i := range tc.n {
				e.must(201, "PUT", fmt.Sprintf("/disks/rbd/c%d", i), `{"size": "1G"}`)
			}
			bases := []string{e.srv.URL, e.twin()}[:tc.servers]
			type result struct {
				status int
				loc    string
				body   string
			}
			results := make([]result, tc.n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range tc.n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					status, hdr, body := e.post(bases[i%len(bases)], "/targets/"+tgt+"/luns", fmt.Sprintf(`{"disk": "rbd/c%d"}`, i))
					results[i] = result{status, hdr.Get("Location"), body}
				}()
			}
			close(start)
			wg.Wait()
			seen := map[string]int{}
			failed := 0
			for i, r := range results {
				if r.status != 201 {
					failed++
					t.Errorf("map %d: %d %s", i, r.status, r.body)
					continue
				}
				if j, dup := seen[r.loc]; dup {
					t.Errorf("maps %d and %d both created %s", j, i, r.loc)
				}
				seen[r.loc] = i
			}
			if failed > 0 {
				t.Fatalf("%d of %d concurrent maps failed", failed, tc.n)
			}
			var luns []model.LUN
			e.must(200, "GET", "/targets/"+tgt+"/luns", nil).decode(t, &luns)
			disks := map[string]bool{}
			for i, l := range luns {
				if l.ID != uint64(i) {
					t.Errorf("LUN ids not 0..%d: %+v", tc.n-1, luns)
					break
				}
				disks[l.Disk] = true
			}
			if len(luns) != tc.n || len(disks) != tc.n {
				t.Errorf("%d LUNs of %d disks, want %d", len(luns), len(disks), tc.n)
			}
		})
	}
}
