package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/api/model"
)

func TestNewURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:5000":        "http://127.0.0.1:5000/api/v1",
		"http://127.0.0.1:5000/":       "http://127.0.0.1:5000/api/v1",
		"127.0.0.1:5000":               "http://127.0.0.1:5000/api/v1",
		"https://gw.example/api/v1/":   "https://gw.example/api/v1",
		"https://gw.example/proxy?x=1": "https://gw.example/proxy/api/v1",
		" http://[::1]:5000 ":          "http://[::1]:5000/api/v1",
	} {
		c, err := New(Options{URL: in})
		if err != nil || c.URL() != want {
			t.Errorf("New(%q) = %v, %v; want %s", in, c, err, want)
		}
	}
	for _, bad := range []string{"", "ftp://x", "http://"} {
		if _, err := New(Options{URL: bad}); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
}

type seen struct {
	method, uri, ifMatch, auth, body, ctype, ifNoneMatch string
}

func serve(t *testing.T, status int, body string, headers map[string]string) (*Client, *seen) {
	t.Helper()
	s := &seen{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		*s = seen{r.Method, r.URL.RequestURI(), r.Header.Get("If-Match"), r.Header.Get("Authorization"), string(b), r.Header.Get("Content-Type"), r.Header.Get("If-None-Match")}
		for k, v := range headers {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	c, err := New(Options{URL: srv.URL, Token: "tok", DryRun: true, Wait: true, WaitTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

func TestWriteRequest(t *testing.T) {
	c, s := serve(t, 202, `{"revision":9,"changes":[{"op":"put","key":"targets/x/hosts/y"}],"applied":{"done":false,"gateways":["a"],"pending":["b"],"down":[]}}`, nil)
	r, err := c.PutHost(context.Background(), "iqn.2003-01.com.x:t", "iqn.1994-05.com.y:h", model.HostPut{LUNs: []uint64{0, 3}}, `"41"`)
	if err != nil {
		t.Fatal(err)
	}
	if s.method != "PUT" || s.uri != "/api/v1/targets/iqn.2003-01.com.x:t/hosts/iqn.1994-05.com.y:h?dry_run=true&timeout=10s&wait=applied" {
		t.Errorf("request %s %s", s.method, s.uri)
	}
	if s.ifMatch != `"41"` || s.auth != "Bearer tok" || s.body != `{"luns":[0,3]}` || s.ctype != "application/json" {
		t.Errorf("headers/body %+v", s)
	}
	if !r.Pending() || r.Revision != 9 || r.Applied.Pending[0] != "b" {
		t.Errorf("result %+v", r)
	}
	// Reads carry neither dry_run nor wait.
	c2, s2 := serve(t, 200, `[]`, nil)
	if _, err := c2.Disks(context.Background()); err != nil || s2.uri != "/api/v1/disks" {
		t.Errorf("GET %s: %v", s2.uri, err)
	}
	c3, s3 := serve(t, 200, `{}`, nil)
	c3.opts.DryRun, c3.opts.Wait = false, false
	if _, err := c3.DeleteDisk(context.Background(), "rbd/a b", true); err != nil || s3.uri != "/api/v1/disks/rbd/a%20b?remove_image=true" {
		t.Errorf("DELETE %s: %v", s3.uri, err)
	}
}

func TestErrors(t *testing.T) {
	c, _ := serve(t, 409, `{"error":{"code":"in_use","message":"disk rbd/d is mapped","details":{"revision":3}}}`, nil)
	_, err := c.DeleteDisk(context.Background(), "rbd/d", false)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 409 || ae.Code != "in_use" || err.Error() != "disk rbd/d is mapped" || ae.Details["revision"] != 3.0 {
		t.Errorf("API error %#v", err)
	}
	c, _ = serve(t, 404, `{"error":{"code":"not_found","message":"no"}}`, nil)
	if _, _, err := c.Target(context.Background(), "iqn.2003-01.com.x:t"); !IsNotFound(err) {
		t.Errorf("not found: %v", err)
	}
	c, _ = serve(t, 412, `{"error":{"code":"precondition_failed","message":"changed"}}`, nil)
	if _, err := c.PutTarget(context.Background(), "iqn.2003-01.com.x:t", model.TargetPut{}, `"1"`); !IsPreconditionFailed(err) {
		t.Errorf("412: %v", err)
	}
	// Something else on the port.
	c, _ = serve(t, 502, `<html>bad gateway</html>`, nil)
	_, err = c.Disks(context.Background())
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "GET http://127.0.0.1") || !strings.Contains(err.Error(), "HTTP 502 Bad Gateway") {
		t.Errorf("non-API error: %v", err)
	}
	c, _ = serve(t, 401, `{"error":{"code":"unauthenticated","message":"unknown, revoked or expired token"}}`, nil)
	_, err = c.Disks(context.Background())
	var au *AuthError
	if !errors.As(err, &au) || !strings.HasPrefix(err.Error(), "token rejected by http://127.0.0.1:") || !strings.HasSuffix(err.Error(), ": unknown, revoked or expired token") {
		t.Errorf("401: %v", err)
	}
	c.opts.Token = ""
	if _, err = c.Disks(context.Background()); !strings.Contains(err.Error(), "needs a token") {
		t.Errorf("401 without token: %v", err)
	}
	// A document that does not decode.
	c, _ = serve(t, 200, `{"disks":1}`, nil)
	if _, err := c.Disks(context.Background()); err == nil || !strings.Contains(err.Error(), "cannot read") {
		t.Errorf("bad document: %v", err)
	}
}

func TestUnreachableAndETag(t *testing.T) {
	c, _ := New(Options{URL: "http://127.0.0.1:1", Timeout: time.Second})
	_, err := c.Disks(context.Background())
	var ue *UnreachableError
	if !errors.As(err, &ue) || !strings.HasPrefix(err.Error(), "cannot reach the API at http://127.0.0.1:1: ") {
		t.Errorf("unreachable: %v", err)
	}
	c2, _ := serve(t, 200, `{"id":"rbd/d","size":1024}`, map[string]string{"ETag": `"77"`})
	d, etag, err := c2.Disk(context.Background(), "rbd/d")
	if err != nil || etag != `"77"` || d.Size != 1024 {
		t.Errorf("Disk: %+v %q %v", d, etag, err)
	}
	if c2.Requests() != 1 {
		t.Errorf("requests %d", c2.Requests())
	}
}

func TestCreateOnlyAndLocation(t *testing.T) {
	const iqn = "iqn.2024-01.io.example:t1"
	c, s := serve(t, 201, `{"revision": 7, "changes": [{"op": "put", "key": "targets/`+iqn+`/luns/3"}]}`,
		map[string]string{"Location": "/api/v1/targets/" + iqn + "/luns/3"})
	r, err := c.MapLUN(context.Background(), iqn, "rbd/d1", nil)
	if err != nil || s.method != "POST" || s.ifNoneMatch != "" {
		t.Fatalf("map: %v %+v", err, s)
	}
	if id, ok := LUNOf(r); !ok || id != 3 || r.Created() != "targets/"+iqn+"/luns/3" {
		t.Errorf("LUNOf %d %v, Created %q", id, ok, r.Created())
	}
	for _, create := range []func() (Result, error){
		func() (Result, error) { return c.CreateTarget(context.Background(), iqn, model.TargetPut{}) },
		func() (Result, error) {
			return c.CreateHost(context.Background(), iqn, "iqn.1994-05.com.redhat:c1", model.HostPut{})
		},
		func() (Result, error) {
			return c.CreateHostGroup(context.Background(), iqn, "g1", model.HostGroupPut{})
		},
		func() (Result, error) { return c.CreateDisk(context.Background(), "rbd/d1", model.DiskPut{}) },
	} {
		if _, err := create(); err != nil || s.method != "PUT" || s.ifNoneMatch != "*" || s.ifMatch != "" {
			t.Errorf("create: %v %+v", err, s)
		}
	}
	// A 200 created nothing: no id, whatever the headers.
	c2, _ := serve(t, 200, `{"revision": 7, "changes": []}`, map[string]string{"Location": "/api/v1/targets/" + iqn + "/luns/3"})
	r, _ = c2.MapLUN(context.Background(), iqn, "rbd/d1", nil)
	if _, ok := LUNOf(r); ok {
		t.Errorf("LUNOf a 200: %+v", r)
	}
	// Exists: 412 from If-None-Match, 409 exists from a concurrent create;
	// not a 409 in_use, not a 404.
	for status, want := range map[string]bool{
		`412 {"error": {"code": "precondition_failed", "message": "x"}}`: true,
		`409 {"error": {"code": "exists", "message": "x"}}`:              true,
		`409 {"error": {"code": "in_use", "message": "x"}}`:              false,
		`404 {"error": {"code": "not_found", "message": "x"}}`:           false,
	} {
		code, body, _ := strings.Cut(status, " ")
		n := map[string]int{"412": 412, "409": 409, "404": 404}[code]
		c3, _ := serve(t, n, body, nil)
		_, err := c3.CreateTarget(context.Background(), iqn, model.TargetPut{})
		if IsExists(err) != want {
			t.Errorf("%s: IsExists %v", status, !want)
		}
	}
}
