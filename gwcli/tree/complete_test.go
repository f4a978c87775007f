package tree

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/api/model"
)

func texts(s []Suggestion) []string {
	var out []string
	for _, x := range s {
		out = append(out, x.Text)
	}
	return out
}

func TestComplete(t *testing.T) {
	f, e, _, _ := fixture(t)
	f.addGateway("gw3", true, "10.0.0.3:3260")
	target := mustResolve(t, Root, "/iscsi-targets/"+tIQN)
	host := mustResolve(t, Root, "/iscsi-targets/"+tIQN+"/hosts/"+hIQN)
	tests := []struct {
		cwd  Path
		text string
		want []string // each must be offered
		not  []string // none of these
	}{
		{Root, "l", []string{"ls"}, []string{"cd"}},
		{Root, "cd /iscsi-t", []string{"/iscsi-targets/"}, nil},
		{Root, "cd /iscsi-targets/", []string{"/iscsi-targets/" + tIQN + "/"}, nil},
		{Root, "ls /disks/rbd/", []string{"/disks/rbd/disk_1", "/disks/rbd/disk_2"}, nil},
		{target, "cd ", []string{"disks/", "gateways/", "hosts/", "host-groups/"}, []string{"path="}},
		// A path or a command name is typed bare: no key= among them,
		// but the key form still completes.
		{Root, "info ", []string{"disks/", "iscsi-targets/"}, []string{"path="}},
		{Root, "ls ", []string{"disks/", "depth="}, []string{"path="}},
		{Root, "help ", []string{"ls", "cd"}, []string{"command="}},
		{Root, "cd path=/di", []string{"path=/disks/"}, nil},
		{Root, "export ", []string{"json", "format="}, nil},
		{target, "cd disks/rb", []string{"disks/rbd/disk_1"}, nil},
		{target, "cd disks/rbd/", []string{"disks/rbd/disk_1"}, nil},
		{target, "cd hosts/", []string{"hosts/" + hIQN + "/"}, nil},
		{Root, "/disks cr", []string{"create"}, nil},
		{mustResolve(t, Root, "/disks"), "create ", []string{"rbd/", "pool=", "size=", "count="}, nil},
		{mustResolve(t, Root, "/disks"), "create pool=", []string{"pool=rbd"}, nil},
		{mustResolve(t, Root, "/disks"), "attach rbd/", []string{"rbd/free_img"}, nil},
		{mustResolve(t, Root, "/disks"), "attach pool=rbd image=", []string{"image=free_img"}, nil},
		{mustResolve(t, Root, "/disks"), "resize ", []string{"rbd/disk_1", "rbd/disk_2"}, nil},
		{mustResolve(t, Root, "/iscsi-targets"), "delete ", []string{tIQN}, nil},
		{mustResolve(t, Root, "/iscsi-targets"), "discovery_auth ", []string{"nochap", "username=", "password="}, nil},
		{target, "auth n", []string{"nochap"}, nil},
		{mustResolve(t, Root, "/iscsi-targets/"+tIQN+"/gateways"), "create ", []string{"gw3"}, []string{"gw1"}},
		{mustResolve(t, Root, "/iscsi-targets/"+tIQN+"/gateways"), "create gw3 ", []string{"10.0.0.3:3260"}, nil},
		{mustResolve(t, Root, "/iscsi-targets/"+tIQN+"/gateways"), "delete ", []string{"gw1", "gw2"}, nil},
		// gateway= of sessions and top offers the target's own gateways too.
		{mustResolve(t, Root, "/iscsi-targets/"+tIQN+"/gateways"), "sessions gateway=", []string{"gateway=gw1", "gateway=gw2", "gateway=gw3"}, nil},
		{target, "top gateway=", []string{"gateway=gw1", "gateway=gw2"}, nil},
		{host, "sessions gateway=", []string{"gateway=gw1"}, nil},
		{mustResolve(t, Root, "/iscsi-targets/"+tIQN+"/disks"), "add ", []string{"rbd/disk_2"}, nil},
		{mustResolve(t, Root, "/iscsi-targets/"+tIQN+"/disks"), "add rbd/disk_2 ", []string{"1", "2"}, []string{"0"}},
		{mustResolve(t, Root, "/iscsi-targets/"+tIQN+"/disks"), "delete ", []string{"rbd/disk_1"}, []string{"rbd/disk_2"}},
		{mustResolve(t, Root, "/iscsi-targets/"+tIQN+"/hosts"), "delete ", []string{hIQN}, nil},
		{host, "disk ", []string{"add", "remove"}, nil},
		{host, "disk add ", []string{"rbd/disk_2"}, []string{"rbd/disk_1"}},
		{host, "disk remove ", []string{"rbd/disk_1"}, []string{"rbd/disk_2"}},
		{host, "cd ", []string{"lun0"}, nil},
		{Root, "", nil, []string{"ls"}},
	}
	for _, tc := range tests {
		e.Cwd = tc.cwd
		got := texts(e.Complete(tc.text))
		for _, w := range tc.want {
			if !contains(got, w) {
				t.Errorf("at %s, %q: %v lacks %q", tc.cwd, tc.text, got, w)
			}
		}
		for _, w := range tc.not {
			if contains(got, w) {
				t.Errorf("at %s, %q: %v offers %q", tc.cwd, tc.text, got, w)
			}
		}
	}
	// Every suggestion carries a description.
	e.Cwd = mustResolve(t, Root, "/disks")
	for _, s := range e.Complete("resize ") {
		if s.Desc == "" {
			t.Errorf("%q has no description", s.Text)
		}
	}
}

func TestCompletionCache(t *testing.T) {
	f, e, _, _ := fixture(t)
	e.Cwd = mustResolve(t, Root, "/disks")
	e.Complete("resize ")
	n := len(f.requests())
	for i := 0; i < 20; i++ {
		e.Complete("resize rbd/d")
	}
	if got := len(f.requests()) - n; got != 0 {
		t.Errorf("completion within the TTL made %d requests", got)
	}
	// A write forgets the cache.
	mustRun(t, e, "create rbd/disk_7 1G")
	if got := texts(e.Complete("resize ")); !contains(got, "rbd/disk_7") {
		t.Errorf("after a write: %v", got)
	}
	// A slow API does not hold completion up beyond the cold wait.
	e.Cache = NewCache(e.Client)
	e.Cache.ColdWait = 50 * time.Millisecond
	f.mu.Lock()
	start := time.Now()
	go func() { time.Sleep(300 * time.Millisecond); f.mu.Unlock() }()
	e.Complete("resize ")
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Errorf("completion waited %v on a slow API", d)
	}
}

// bigFixture is a cluster with n disks mapped to one target and n hosts.
func bigFixture(tb testing.TB, n int) (*fakeAPI, *Env) {
	f := newFake(tb)
	f.addGateway("gw1", true, "10.0.0.1:3260")
	f.addGateway("gw2", true, "10.0.0.2:3260")
	f.addTarget(tIQN, "gw1", "gw2")
	for i := 0; i < n; i++ {
		f.addDisk("rbd", fmt.Sprintf("disk_%03d", i), 10*gib)
		if i < 256 {
			f.mapLUN(tIQN, fmt.Sprintf("rbd/disk_%03d", i), uint64(i))
		}
	}
	for i := 0; i < n; i++ {
		h := f.addHost(tIQN, fmt.Sprintf("iqn.1994-05.com.example:host%03d", i), uint64(i%256))
		if i%2 == 0 {
			h.LoggedIn = []string{"gw1"}
		}
	}
	f.sessions = []model.Session{}
	c, _ := f.start()
	var out, errb strings.Builder
	return f, NewEnv(c, &out, &errb)
}

func TestLsRootBig(t *testing.T) {
	f, e := bigFixture(t, 200)
	start := time.Now()
	if err := e.Line(context.Background(), "ls /"); err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	out := e.Out.(*strings.Builder).String()
	if got := strings.Count(out, "\n"); got < 600 {
		t.Errorf("ls / printed %d lines", got)
	}
	if n := len(f.requests()); n > 8 {
		t.Errorf("ls / with 200 disks and 200 hosts made %d requests", n)
	}
	t.Logf("ls / with 200 disks, 200 hosts: %v, %d requests, %d lines", d, len(f.requests()), strings.Count(out, "\n"))
}

func BenchmarkLsRoot200(b *testing.B) {
	_, e := bigFixture(b, 200)
	out := e.Out.(*strings.Builder)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out.Reset()
		if err := e.Line(context.Background(), "ls /"); err != nil {
			b.Fatal(err)
		}
	}
}
