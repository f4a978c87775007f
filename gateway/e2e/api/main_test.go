// Package api_test runs the REST API in process against a real etcd
// server and the real cluster store, with a Ceph double and in-memory
// tokens only where a test says so. The tests with real gateways, Ceph and
// initiators are in gateway/e2e/cluster.
package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rbdgw/rbdgw/api"
	"github.com/rbdgw/rbdgw/api/model"
	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/internal/clustertest"
)

var etcdCli *clientv3.Client

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rbdgw-api-etcd")
	if err != nil {
		panic(err)
	}
	e, err := clustertest.StartEtcd(dir)
	if err == clustertest.ErrNoEtcd {
		fmt.Println("skipping: ", err)
		os.Exit(0)
	}
	if err != nil {
		panic(err)
	}
	if err := e.Start(); err != nil {
		panic(err)
	}
	etcdCli, err = clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint()}, DialTimeout: 5 * time.Second})
	if err != nil {
		panic(err)
	}
	code := m.Run()
	etcdCli.Close()
	e.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one test's API server over its own etcd prefix.
type env struct {
	t      *testing.T
	srv    *httptest.Server
	prefix string
	store  *cluster.Store
	toks   *memTokens
	ceph   *fakeCeph
	tokens map[api.Role]string
	// statuses records every (route, status) served, checked against the
	// OpenAPI document at the end of the test.
	mu       sync.Mutex
	statuses map[string]bool
	api      *api.Server
}

func newEnv(t *testing.T) *env {
	t.Helper()
	prefix := fmt.Sprintf("/apitest-%s-%d/", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
	store, err := cluster.New(etcdCli, cluster.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, prefix: prefix, store: store, ceph: newFakeCeph(), statuses: map[string]bool{}}
	toks := newMemTokens()
	e.toks = toks
	e.tokens = map[api.Role]string{}
	for _, r := range []api.Role{api.RoleViewer, api.RoleOperator, api.RoleAdmin} {
		tok, _, err := toks.Create(context.Background(), r.String(), r, 0)
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[r] = tok
	}
	e.api = api.New(api.Options{Store: store, Ceph: e.ceph, Gateways: liveGateways{store}, Tokens: toks,
		Audit: &memAudit{}, Gateway: "gw-test", Version: "test",
		Stats: etcdStats{etcdCli, prefix}, Events: etcdEvents{etcdCli, prefix}})
	e.srv = httptest.NewServer(e.recording(e.api.Handler()))
	t.Cleanup(func() {
		e.srv.Close()
		e.checkDocumented()
	})
	return e
}

// recording notes the status of every response.
func (e *env) recording(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: 200}
		h.ServeHTTP(rec, r)
		e.mu.Lock()
		e.statuses[r.Method+" "+r.URL.Path+" "+fmt.Sprint(rec.status)] = true
		e.mu.Unlock()
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(s int) { r.status = s; r.ResponseWriter.WriteHeader(s) }

// Flush and Unwrap let streams (GET /events) through.
func (r *statusRecorder) Flush()                      { r.ResponseWriter.(http.Flusher).Flush() }
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// checkDocumented fails the test when a response had a status the OpenAPI
// document does not list for its route.
func (e *env) checkDocumented() {
	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]any `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(e.api.OpenAPI(), &doc); err != nil {
		e.t.Fatal(err)
	}
	for k := range e.statuses {
		parts := strings.SplitN(k, " ", 3)
		method, path, status := strings.ToLower(parts[0]), parts[1], parts[2]
		tmpl := matchPath(doc.Paths, path)
		if tmpl == "" {
			if status != "404" && status != "405" {
				e.t.Errorf("%s %s answered %s but matches no documented path", method, path, status)
			}
			continue
		}
		op, ok := doc.Paths[tmpl][method]
		if !ok {
			if status != "405" {
				e.t.Errorf("%s %s (%s) answered %s but the method is not documented", method, path, tmpl, status)
			}
			continue
		}
		if _, ok := op.Responses[status]; !ok {
			e.t.Errorf("%s %s answered %s, not documented for %s", method, path, status, tmpl)
		}
	}
}

func matchPath[T any](paths map[string]T, path string) string {
	segs := strings.Split(path, "/")
	for tmpl := range paths {
		ts := strings.Split(tmpl, "/")
		if len(ts) != len(segs) {
			continue
		}
		ok := true
		for i := range ts {
			if !strings.HasPrefix(ts[i], "{") && ts[i] != segs[i] {
				ok = false
				break
			}
		}
		if ok {
			return tmpl
		}
	}
	return ""
}

// response is a decoded answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) err() model.ErrorBody {
	var e model.Error
	_ = json.Unmarshal(r.body, &e)
	return e.Error
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// do sends a request with the token of role (0: none).
func (e *env) do(role api.Role, method, path string, body any, hdr ...string) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+api.APIPrefix+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if role != 0 {
		req.Header.Set("Authorization", "Bearer "+e.tokens[role])
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// must sends a request as operator (viewer for GET) and fails unless it
// answered want.
func (e *env) must(want int, method, path string, body any, hdr ...string) response {
	e.t.Helper()
	role := api.RoleOperator
	r := e.do(role, method, path, body, hdr...)
	if r.status != want {
		e.t.Fatalf("%s %s: %d %s, want %d", method, path, r.status, r.body, want)
	}
	return r
}

// live registers gateway as live (its lease) for the rest of the test.
func (e *env) live(gateway string) {
	e.t.Helper()
	reg, err := e.store.Register(context.Background(), gateway, 10*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = reg.Close(context.Background()) })
}
