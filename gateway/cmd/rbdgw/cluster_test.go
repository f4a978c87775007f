package main

import (
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNodeOptionsFromFlags(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	base := clusterFlags{prefix: "/rbdgw/", gateway: "gw-a", leaseTTL: 10 * time.Second, stallTimeout: 3 * time.Second}
	tests := []struct {
		name      string
		change    func(*clusterFlags)
		endpoints []string
		err       string
	}{
		{"endpoints split and trimmed", func(f *clusterFlags) { f.etcd = " 10.0.0.1:2379, http://10.0.0.2:2379,," },
			[]string{"10.0.0.1:2379", "http://10.0.0.2:2379"}, ""},
		{"embedded serves one address", func(f *clusterFlags) { f.etcd, f.embeddedDir = "a:1,b:2", "/var/lib/rbdgw" }, nil, "-embedded-etcd"},
		{"bad gateway name", func(f *clusterFlags) { f.gateway = "gw a" }, nil, "-gateway"},
		{"short lease", func(f *clusterFlags) { f.leaseTTL = time.Second }, nil, "-lease-ttl"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := base
			tc.change(&f)
			opts, err := nodeOptions(log, f, newBackends(log, "", ""))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one about %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(opts.Endpoints, tc.endpoints) || opts.Gateway != "gw-a" || opts.Version != version || opts.Backends == nil {
				t.Fatalf("options %+v", opts)
			}
		})
	}
}
