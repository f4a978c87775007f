package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rbdgw/rbdgw/gateway/cluster"
)

func TestLUNFlag(t *testing.T) {
	const iqn = "iqn.2024-01.io.test:t1"
	snap := &cluster.Snapshot{LUNs: map[string]map[uint64]cluster.LUN{
		iqn: {0: {Target: iqn, ID: 0}, 4: {Target: iqn, ID: 4}},
	}}
	tests := []struct {
		name string
		args []string
		cur  []uint64
		want []uint64
		err  bool
	}{
		{"not given: keep", nil, []uint64{4}, []uint64{4}, false},
		{"not given, new entry: none", nil, nil, nil, false},
		{"ids", []string{"4", "0", "4"}, []uint64{9}, []uint64{0, 4}, false},
		{"none", []string{"none"}, []uint64{4}, []uint64{}, false},
		{"all: the target's LUNs now", []string{"all"}, nil, []uint64{0, 4}, false},
		{"all and an id", []string{"all", "7"}, nil, []uint64{0, 4, 7}, false},
		{"none with an id", []string{"none", "0"}, nil, nil, true},
		{"an id then none", []string{"0", "none"}, nil, nil, true},
		{"not a number", []string{"x"}, nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFlags("host put")
			var f lunFlag
			fs.Var(&f, "lun", "")
			var args []string
			for _, a := range tt.args {
				args = append(args, "-lun", a)
			}
			err := fs.Parse(args)
			if tt.err {
				if err == nil {
					t.Fatalf("accepted %v", tt.args)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := f.resolve(snap, iqn, tt.cur)
			if !slices.Equal(got, tt.want) || (tt.want != nil && got == nil) {
				t.Errorf("resolve = %#v, want %#v", got, tt.want)
			}
		})
	}
}

// host and hostgroup commands against etcd, on a cluster a schema 1
// writer left: the first write migrates it.
func TestHostCommandsMasking(t *testing.T) {
	e := testEtcd(t)
	const (
		prefix = "/admin-mask/"
		iqn    = "iqn.2024-01.io.test:t1"
		h1     = "iqn.2024-01.io.test:h1"
		h2     = "iqn.2024-01.io.test:h2"
		h3     = "iqn.2024-01.io.test:h3"
	)
	cmd := func(args ...string) error {
		t.Helper()
		var b strings.Builder
		return run(append([]string{"-etcd", e.Endpoint(), "-etcd-prefix", prefix, "-timeout", "20s"}, args...), &b)
	}
	cli, err := cluster.Dial(cluster.ClientConfig{Endpoints: []string{e.Endpoint()}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	// Schema 1: h1 has no list (every LUN).
	for k, v := range map[cluster.Key]string{
		cluster.SchemaKey:          `{"version":1}`,
		cluster.GatewayKey("gw-a"): `{"name":"gw-a","portals":["127.0.0.1:3370"],"tpg_id":1}`,
		cluster.DiskKey("rbd/d0"):  `{"pool":"rbd","image":"d0","size":1048576,"block_size":512,"serial":"0123456789abcdef0123456789abcdef","wwn":"0123456789abcdef"}`,
		cluster.DiskKey("rbd/d1"):  `{"pool":"rbd","image":"d1","size":1048576,"block_size":512,"serial":"0123456789abcdef0123456789abcde1","wwn":"0123456789abcde1"}`,
		cluster.TargetKey(iqn):     `{"iqn":"` + iqn + `","gateways":["gw-a"]}`,
		cluster.LUNKey(iqn, 0):     `{"target":"` + iqn + `","id":0,"disk":"rbd/d0"}`,
		cluster.LUNKey(iqn, 1):     `{"target":"` + iqn + `","id":1,"disk":"rbd/d1"}`,
		cluster.HostKey(iqn, h1):   `{"target":"` + iqn + `","initiator":"` + h1 + `"}`,
	} {
		if _, err := cli.Put(ctx, prefix+string(k), v); err != nil {
			t.Fatal(err)
		}
	}
	store, err := cluster.New(cli, cluster.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	load := func() *cluster.Snapshot {
		t.Helper()
		s, _, err := store.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// Reading does not migrate.
	if err := cmd("show"); err != nil {
		t.Fatal(err)
	}
	if s := load(); s.SchemaVersion != 1 {
		t.Fatalf("show wrote the schema: %d", s.SchemaVersion)
	}
	steps := []struct {
		args []string
		host string // "" for the group g1
		want []uint64
	}{
		// The first write migrates: h1's "every LUN" becomes explicit, and
		// putting h2 without -lun maps it nothing.
		{[]string{"host", "put", iqn, h2}, h2, []uint64{}},
		{nil, h1, []uint64{0, 1}},
		{[]string{"host", "put", iqn, h2, "-lun", "1"}, h2, []uint64{1}},
		{[]string{"host", "put", iqn, h2, "-chap-user", "h2", "-chap-secret-file", writeSecret(t, "h2secret1234")}, h2, []uint64{1}},
		{[]string{"host", "put", iqn, h1, "-lun", "none"}, h1, []uint64{}},
		{[]string{"host", "put", iqn, h3, "-lun", "all"}, h3, []uint64{0, 1}},
		{[]string{"host", "put", iqn, h3, "-lun", "none"}, h3, []uint64{}},
		{[]string{"hostgroup", "put", iqn, "g1", "-member", h1, "-member", h3, "-lun", "0"}, "", []uint64{0}},
		{[]string{"hostgroup", "put", iqn, "g1", "-member", h1}, "", []uint64{0}},
		{[]string{"hostgroup", "put", iqn, "g1", "-member", h1, "-lun", "none"}, "", []uint64{}},
	}
	for _, st := range steps {
		if st.args != nil {
			if err := cmd(st.args...); err != nil {
				t.Fatalf("%v: %v", st.args, err)
			}
		}
		s := load()
		if s.SchemaVersion != cluster.SchemaVersion {
			t.Fatalf("%v: schema %d", st.args, s.SchemaVersion)
		}
		got := s.HostGroups[iqn]["g1"].LUNs
		if st.host != "" {
			got = s.Hosts[iqn][st.host].LUNs
		}
		if !slices.Equal(got, st.want) {
			t.Errorf("after %v: %s lists %v, want %v", st.args, st.host, got, st.want)
		}
	}
	if s := load(); !slices.Equal(s.HostGroups[iqn]["g1"].Members, []string{h1}) {
		t.Errorf("members %v", s.HostGroups[iqn]["g1"].Members)
	}
	// A host with its own list cannot join a group; a listed LUN cannot
	// be deleted; the group goes with hostgroup delete.
	if err := cmd("hostgroup", "put", iqn, "g2", "-member", h2); !errors.Is(err, cluster.ErrInvalid) {
		t.Errorf("group of a host with its own LUNs: %v", err)
	}
	if err := cmd("lun", "delete", iqn, "1"); !errors.Is(err, cluster.ErrInUse) {
		t.Errorf("delete a listed LUN: %v", err)
	}
	if err := cmd("hostgroup", "delete", iqn, "g1"); err != nil {
		t.Fatal(err)
	}
	if _, ok := load().HostGroups[iqn]["g1"]; ok {
		t.Error("hostgroup delete left the group")
	}
	if err := cmd("host", "put", iqn, h1, "-lun", "nine"); !errors.Is(err, errUsage) {
		t.Errorf("-lun nine: %v", err)
	}
}

// writeSecret writes a CHAP secret file and returns its path.
func writeSecret(t *testing.T, secret string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
