package main

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestAddressFlag(t *testing.T) {
	tests := []struct {
		name string
		args []string
		cur  []string
		want []string
		err  bool
	}{
		{"not given: keep", nil, []string{"10.0.0.0/8"}, []string{"10.0.0.0/8"}, false},
		{"not given, new entry: any", nil, nil, nil, false},
		{"addresses", []string{"192.0.2.7", "2001:db8::/32"}, []string{"10.0.0.0/8"}, []string{"192.0.2.7", "2001:db8::/32"}, false},
		{"any", []string{"any"}, []string{"10.0.0.0/8"}, nil, false},
		{"any with an address", []string{"any", "10.0.0.1"}, nil, nil, true},
		{"an address then any", []string{"10.0.0.1", "any"}, nil, nil, true},
		{"host name", []string{"client1"}, nil, nil, true},
		{"bad cidr", []string{"10.0.0.0/40"}, nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFlags("host put")
			var f addressFlag
			fs.Var(&f, "address", "")
			var args []string
			for _, a := range tt.args {
				args = append(args, "-address", a)
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
			if got := f.resolve(tt.cur); !slices.Equal(got, tt.want) {
				t.Errorf("resolve = %#v, want %#v", got, tt.want)
			}
		})
	}
}

// host put -address against etcd: stored canonical, kept when not given,
// cleared with any, shown by show.
func TestHostAddressCommands(t *testing.T) {
	const (
		prefix = "/admin-addr/"
		iqn    = "iqn.2024-01.io.test:t1"
		h1     = "iqn.2024-01.io.test:h1"
	)
	cmd, _, store := adminEtcd(t, prefix, "20s")
	addresses := func() []string {
		t.Helper()
		s, _, err := store.Load(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return s.Hosts[iqn][h1].Addresses
	}
	for _, args := range [][]string{
		{"gateway", "put", "gw-a", "-portal", "127.0.0.1:3390"},
		{"target", "put", iqn, "-gateway", "gw-a"},
	} {
		if _, err := cmd(args...); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	steps := []struct {
		args []string
		want []string
	}{
		{[]string{"host", "put", iqn, h1, "-address", "192.0.2.0/24", "-address", "10.1.2.3/32"}, []string{"10.1.2.3", "192.0.2.0/24"}},
		{[]string{"host", "put", iqn, h1, "-lun", "none"}, []string{"10.1.2.3", "192.0.2.0/24"}}, // kept
		{[]string{"host", "put", iqn, h1, "-address", "2001:db8::/32"}, []string{"2001:db8::/32"}},
		{[]string{"host", "put", iqn, h1, "-address", "any"}, nil},
	}
	for _, st := range steps {
		if _, err := cmd(st.args...); err != nil {
			t.Fatalf("%v: %v", st.args, err)
		}
		if got := addresses(); !slices.Equal(got, st.want) {
			t.Errorf("after %v: addresses %q, want %q", st.args, got, st.want)
		}
	}
	if _, err := cmd("host", "put", iqn, h1, "-address", "127.0.0.0/8"); err != nil {
		t.Fatal(err)
	}
	out, err := cmd("show")
	if err != nil || !strings.Contains(out, `"addresses": [`) || !strings.Contains(out, `"127.0.0.0/8"`) {
		t.Errorf("show: %v\n%s", err, out)
	}
	if _, err := cmd("host", "put", iqn, h1, "-address", "10.0.0.5/8"); !errors.Is(err, errUsage) {
		t.Errorf("-address with host bits: %v", err)
	}
	if got := addresses(); !slices.Equal(got, []string{"127.0.0.0/8"}) {
		t.Errorf("a refused command changed the addresses: %q", got)
	}
}
