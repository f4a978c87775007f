package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/api/model"
)

// bigCanned serves a cluster of n disks mapped to one target and n hosts.
func bigCanned(t testing.TB, n int) (string, *atomic.Int64) {
	var disks []model.Disk
	var luns []model.LUN
	var hosts []model.Host
	var hostNames []string
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("rbd/disk_%03d", i)
		d := model.Disk{ID: id, Pool: "rbd", Image: id[4:], Size: 10 * gib, BlockSize: 512}
		if i < 256 {
			d.Mapping, d.Owner = &model.DiskMapping{Target: tIQN, LUN: uint64(i)}, "ceph-gw-1"
			luns = append(luns, model.LUN{ID: uint64(i), Disk: id, Owner: "ceph-gw-1", Size: d.Size})
		}
		disks = append(disks, d)
		ini := fmt.Sprintf("iqn.1994-05.com.example:host%03d", i)
		hostNames = append(hostNames, ini)
		hosts = append(hosts, model.Host{Initiator: ini, LUNs: []uint64{uint64(i % 256)}, Addresses: []string{}, LoggedIn: []string{"ceph-gw-1"}})
	}
	target := model.Target{IQN: tIQN, Gateways: []string{"ceph-gw-1", "ceph-gw-2"}, LUNs: luns, Hosts: hostNames, HostGroups: []string{}}
	docs := map[string]any{
		"":                                  model.Info{Gateway: "ceph-gw-1"},
		"/cluster":                          model.Cluster{Health: "HEALTH_OK", Checks: []model.HealthCheck{}},
		"/pools":                            []model.Pool{{Name: "rbd", Type: "replicated", Size: 3, MaxAvail: 1 << 40}},
		"/disks":                            disks,
		"/gateways":                         []model.Gateway{{Name: "ceph-gw-1", Portals: []string{"10.0.0.1:3260"}, Live: true}, {Name: "ceph-gw-2", Portals: []string{"10.0.0.2:3260"}, Live: true}},
		"/discovery-auth":                   model.DiscoveryAuth{},
		"/targets":                          []model.Target{target},
		"/targets/" + tIQN + "/hosts":       hosts,
		"/targets/" + tIQN + "/host-groups": []model.HostGroup{},
	}
	bodies := map[string][]byte{}
	for k, v := range docs {
		b, _ := json.Marshal(v)
		bodies[k] = b
	}
	var count atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		count.Add(1)
		b, ok := bodies[strings.TrimPrefix(r.URL.Path, "/api/v1")]
		if !ok {
			w.WriteHeader(404)
			w.Write([]byte(`{"error":{"code":"not_found","message":"per-entity read: ` + r.URL.Path + `"}}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &count
}

// TestLsRootBigProcess times the whole gwcli process (start, requests,
// rendering) for ls / of 200 disks and 200 hosts.
func TestLsRootBigProcess(t *testing.T) {
	url, count := bigCanned(t, 200)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var best time.Duration
	for i := 0; i < 5; i++ {
		count.Store(0)
		cmd := exec.Command(exe, "ls", "/")
		cmd.Env = append(os.Environ(), "GWCLI_TEST_MAIN=1", "RBDGW_API_URL="+url, "RBDGW_API_TOKEN="+token, "HOME="+t.TempDir())
		start := time.Now()
		out, err := cmd.Output()
		d := time.Since(start)
		if err != nil {
			t.Fatalf("gwcli ls /: %v", err)
		}
		if n := strings.Count(string(out), "\n"); n < 800 {
			t.Fatalf("ls / printed %d lines", n)
		}
		if count.Load() > 8 {
			t.Errorf("ls / made %d requests", count.Load())
		}
		if best == 0 || d < best {
			best = d
		}
	}
	t.Logf("gwcli ls / with 200 disks and 200 hosts: %v (best of 5, whole process), %d requests", best, count.Load())
}
