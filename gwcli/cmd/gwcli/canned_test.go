package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/rbdgw/rbdgw/api/model"
)

const (
	tIQN  = "iqn.2003-01.com.redhat.iscsi-gw:iscsi-igw"
	hIQN  = "iqn.1994-05.com.redhat:rh7-client"
	token = "t0k"
	gib   = int64(1) << 30
)

// canned serves fixed API answers (a unit-test fake): two disks, one
// target with two gateways, one logged-in host.
type canned struct {
	mu   sync.Mutex
	reqs []string
}

func (c *canned) requests() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.reqs...)
}

func startCanned(t testing.TB) (*canned, string) {
	c := &canned{}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return c, srv.URL
}

func (c *canned) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.reqs = append(c.reqs, r.Method+" "+r.URL.RequestURI())
	c.mu.Unlock()
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	fail := func(status int, code, msg string) {
		reply(status, model.Error{Error: model.ErrorBody{Code: code, Message: msg}})
	}
	if r.Header.Get("Authorization") != "Bearer "+token {
		fail(401, model.CodeUnauthenticated, "unknown, revoked or expired token")
		return
	}
	size := 90 * gib
	disks := []model.Disk{
		{ID: "rbd/disk_1", Pool: "rbd", Image: "disk_1", Size: size, BlockSize: 512, Mapping: &model.DiskMapping{Target: tIQN, LUN: 0}, Owner: "ceph-gw-1"},
		{ID: "rbd/disk_2", Pool: "rbd", Image: "disk_2", Size: size, BlockSize: 512},
	}
	luns := []model.LUN{{ID: 0, Disk: "rbd/disk_1", Owner: "ceph-gw-1", Size: size}}
	target := model.Target{IQN: tIQN, Gateways: []string{"ceph-gw-1", "ceph-gw-2"}, LUNs: luns, Hosts: []string{hIQN}, HostGroups: []string{}}
	path := strings.TrimPrefix(r.URL.Path, "/api/v1")
	switch {
	case r.Method == http.MethodGet && path == "":
		reply(200, model.Info{Version: "1.0-test", API: "v1", Gateway: "ceph-gw-1", Revision: 42})
	case r.Method == http.MethodGet && path == "/cluster":
		reply(200, model.Cluster{Health: "HEALTH_OK", Checks: []model.HealthCheck{}, Gateways: 2, Live: 1})
	case r.Method == http.MethodGet && path == "/pools":
		reply(200, []model.Pool{{Name: "rbd", Type: "replicated", Size: 3, MaxAvail: 100 * gib, Committed: 2 * size, Disks: 2}})
	case r.Method == http.MethodGet && path == "/pools/rbd/images":
		reply(200, []model.Image{{Name: "disk_1", Disk: true}, {Name: "disk_2", Disk: true}, {Name: "spare", Disk: false}})
	case r.Method == http.MethodGet && path == "/disks":
		reply(200, disks)
	case r.Method == http.MethodGet && path == "/gateways":
		reply(200, []model.Gateway{{Name: "ceph-gw-1", Portals: []string{"10.172.19.21:3260"}, Live: true, Targets: []string{tIQN}},
			{Name: "ceph-gw-2", Portals: []string{"10.172.19.22:3260"}, Live: false, Targets: []string{tIQN}}})
	case r.Method == http.MethodGet && path == "/discovery-auth":
		reply(200, model.DiscoveryAuth{})
	case r.Method == http.MethodGet && path == "/targets":
		reply(200, []model.Target{target})
	case r.Method == http.MethodGet && path == "/targets/"+tIQN:
		w.Header().Set("ETag", `"7"`)
		reply(200, target)
	case r.Method == http.MethodGet && path == "/targets/"+tIQN+"/luns":
		reply(200, luns)
	case r.Method == http.MethodGet && path == "/targets/"+tIQN+"/hosts":
		reply(200, []model.Host{{Initiator: hIQN, LUNs: []uint64{0}, Addresses: []string{}, LoggedIn: []string{"ceph-gw-1"}}})
	case r.Method == http.MethodGet && path == "/targets/"+tIQN+"/host-groups":
		reply(200, []model.HostGroup{})
	case r.Method == http.MethodDelete && path == "/disks/rbd/disk_1":
		fail(409, model.CodeInUse, "disk rbd/disk_1 is mapped as LUN 0 of "+tIQN+"; unmap it first")
	case r.Method == http.MethodGet && path == "/disks/rbd/disk_1":
		d := disks[0]
		d.ImageSize, d.Features = &size, []string{"exclusive-lock"}
		reply(200, d)
	case r.Method == http.MethodGet && path == "/disks/rbd/disk_1/snapshots":
		reply(200, []model.Snapshot{})
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/targets/"):
		iqn, _, _ := strings.Cut(strings.TrimPrefix(path, "/targets/"), "/")
		fail(404, model.CodeNotFound, "target "+iqn+" does not exist")
	default:
		fail(404, model.CodeNotFound, "no API route "+r.Method+" "+r.URL.Path)
	}
}
