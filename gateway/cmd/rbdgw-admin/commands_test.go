package main

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/rbdgw/rbdgw/gateway/cluster"
	"github.com/rbdgw/rbdgw/gateway/config"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{"1073741824", 1 << 30, false},
		{"512M", 512 << 20, false},
		{"1g", 1 << 30, false},
		{"2T", 2 << 40, false},
		{"4K", 4096, false},
		{"", 0, true},
		{"0", 0, true},
		{"-1G", 0, true},
		{"G", 0, true},
		{"1.5G", 0, true},
		{"99999999999T", 0, true},
	}
	for _, tc := range tests {
		got, err := parseSize(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v", tc.in, got, err)
		}
	}
}

func TestParseCHAP(t *testing.T) {
	tests := []struct {
		in   string
		want *config.CHAP
	}{
		{"user:secret123456", &config.CHAP{User: "user", Secret: "secret123456"}},
		{"u:s:mu:ms", &config.CHAP{User: "u", Secret: "s", MutualUser: "mu", MutualSecret: "ms"}},
		{"only", nil},
		{"a:b:c", nil},
	}
	for _, tc := range tests {
		got, err := parseCHAP(tc.in)
		if tc.want == nil {
			if err == nil || !errors.Is(err, errUsage) || strings.Contains(err.Error(), tc.in) {
				t.Errorf("parseCHAP(%q) = %v, %v: want a usage error that does not echo the input", tc.in, got, err)
			}
			continue
		}
		if err != nil || *got != *tc.want {
			t.Errorf("parseCHAP(%q) = %+v, %v", tc.in, got, err)
		}
	}
}

func TestParseInterleaved(t *testing.T) {
	fs := newFlags("gateway put")
	var portals stringList
	fs.Var(&portals, "portal", "")
	pos, err := parseInterleaved(fs, []string{"-portal", "127.0.0.1:1", "gw-a", "-portal", "127.0.0.1:2"}, 1)
	if err != nil || !slices.Equal(pos, []string{"gw-a"}) || !slices.Equal(portals, stringList{"127.0.0.1:1", "127.0.0.1:2"}) {
		t.Fatalf("positional %v, portals %v, err %v", pos, portals, err)
	}
	if _, err := parseInterleaved(newFlags("x"), []string{"a", "b"}, 1); !errors.Is(err, errUsage) {
		t.Fatalf("extra argument: %v", err)
	}
}

func TestDescribeMasksSecrets(t *testing.T) {
	s := &cluster.Snapshot{
		DiscoveryAuth: &config.CHAP{User: "disc", Secret: "discsecret12"},
		Gateways:      map[string]cluster.Gateway{}, Disks: map[string]cluster.Disk{},
		Targets: map[string]cluster.Target{"iqn.2024-01.io.x:t": {IQN: "iqn.2024-01.io.x:t",
			CHAP: &config.CHAP{User: "t", Secret: "targetsecret1", MutualUser: "m", MutualSecret: "mutualsecret1"}}},
		Hosts: map[string]map[string]cluster.Host{"iqn.2024-01.io.x:t": {"iqn.2024-01.io.x:h": {
			Target: "iqn.2024-01.io.x:t", Initiator: "iqn.2024-01.io.x:h", CHAP: &config.CHAP{User: "h", Secret: "hostsecret12"}}}},
		Owners: map[string]cluster.Owner{}, Live: map[string]cluster.Live{},
	}
	var b strings.Builder
	a := &admin{out: &b}
	if err := a.print(describe(s)); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"discsecret12", "targetsecret1", "mutualsecret1", "hostsecret12"} {
		if strings.Contains(b.String(), secret) {
			t.Fatalf("show prints a secret:\n%s", b.String())
		}
	}
	if !strings.Contains(b.String(), `"user": "h"`) {
		t.Fatalf("show lost the CHAP user:\n%s", b.String())
	}
}

func TestWaitingFor(t *testing.T) {
	s := &cluster.Snapshot{
		Targets: map[string]cluster.Target{"t": {IQN: "t"}},
		LUNs:    map[string]map[uint64]cluster.LUN{"t": {0: {Target: "t", Disk: "rbd/a"}}},
		Owners:  map[string]cluster.Owner{}, Live: map[string]cluster.Live{"gw-a": {}},
	}
	if got := waitingFor(s, []string{"gw-a", "gw-b"}, false); got != "gateway gw-b" {
		t.Errorf("waitingFor = %q", got)
	}
	if got := waitingFor(s, []string{"gw-a"}, true); got != "an owner of rbd/a" {
		t.Errorf("waitingFor = %q", got)
	}
	s.Owners["rbd/a"] = cluster.Owner{Gateway: "gw-a"}
	if got := waitingFor(s, []string{"gw-a"}, true); got != "" {
		t.Errorf("waitingFor = %q", got)
	}
}

// TestReport: a mistake is one line on standard error that points at -h
// (the usage after it pushed the line itself off the screen); -h prints
// the usage on standard output and exits 0, also after a command.
func TestReport(t *testing.T) {
	_, subHelp := parseInterleaved(newFlags("token create"), []string{"-h"}, 0)
	tests := []struct {
		name      string
		err       error
		code      int
		out, errs string // what they start with; "" for nothing
	}{
		{"unknown flag", run([]string{"-bogus"}, io.Discard), 2, "", "rbdgw-admin: bad usage: flag provided but not defined: -bogus (rbdgw-admin -h shows the usage)\n"},
		{"no command", run(nil, io.Discard), 2, "", "usage: rbdgw-admin"},
		{"-h", run([]string{"-h"}, io.Discard), 0, "usage: rbdgw-admin", ""},
		{"token create -h", subHelp, 0, "usage: rbdgw-admin", ""},
		{"other error", errors.New("etcd unreachable"), 1, "", "rbdgw-admin: etcd unreachable\n"},
	}
	for _, tc := range tests {
		var out, errs strings.Builder
		if code := report(tc.err, &out, &errs); code != tc.code {
			t.Errorf("%s: exit %d, want %d", tc.name, code, tc.code)
		}
		for _, w := range []struct{ got, want string }{{out.String(), tc.out}, {errs.String(), tc.errs}} {
			if !strings.HasPrefix(w.got, w.want) || (w.want == "") != (w.got == "") {
				t.Errorf("%s: wrote %q, want it to start with %q", tc.name, w.got, w.want)
			}
		}
		if strings.HasSuffix(tc.errs, "\n") && errs.String() != tc.errs {
			t.Errorf("%s: wrote %q to standard error, want the one line %q", tc.name, errs.String(), tc.errs)
		}
	}
}
