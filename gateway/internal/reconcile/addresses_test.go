package reconcile

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/gateway/config"
	"github.com/rbdgw/rbdgw/gateway/internal/iscsi"
	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
	"github.com/rbdgw/rbdgw/gateway/internal/login"
	"github.com/rbdgw/rbdgw/gateway/internal/pdu"
	"github.com/rbdgw/rbdgw/rbdbackend"
)

func TestAddressPolicy(t *testing.T) {
	const a, b, c = "iqn.2024-01.org.example:a", "iqn.2024-01.org.example:b", "iqn.2024-01.org.example:c"
	r := New(Options{Logger: slog.New(slog.DiscardHandler)})
	if f := r.addressPolicy(config.Target{ACLs: []config.ACL{{InitiatorIQN: a}}}); f != nil {
		t.Fatal("a target without address lists has an address policy")
	}
	f := r.addressPolicy(config.Target{ACLs: []config.ACL{
		{InitiatorIQN: a, Addresses: []string{"10.0.0.0/8", "192.0.2.7"}},
		{InitiatorIQN: b},
		{InitiatorIQN: c, Addresses: []string{"10.0.0.0/33"}}, // not validated: fails closed
	}})
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32")}
	if got := f(a); !slices.Equal(got, want) {
		t.Errorf("a: %v, want %v", got, want)
	}
	if got := f(b); got != nil {
		t.Errorf("b (no list): %v", got)
	}
	if got := f("iqn.2024-01.org.example:nobody"); got != nil {
		t.Errorf("no ACL: %v", got)
	}
	got := f(c)
	if len(got) == 0 || slices.ContainsFunc(got, func(p netip.Prefix) bool { return p.Contains(netip.MustParseAddr("10.0.0.1")) }) {
		t.Errorf("c (a list that does not parse): %v admits addresses", got)
	}
}

// A change of an ACL's address list applied by the reconciler asks the
// sessions from an address no longer listed to log out, and refuses their
// next login; others keep running.
func TestApplyAddressChangeLive(t *testing.T) {
	const (
		iqn  = "iqn.2024-01.org.example:t"
		hA   = "iqn.2024-01.org.example:a"
		hB   = "iqn.2024-01.org.example:b"
		size = 1 << 20
	)
	log := slog.New(slog.DiscardHandler)
	srv := iscsi.NewServer(iscsi.Options{Logger: log, NopInInterval: -1, LogoutGrace: time.Second})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	r := New(Options{Server: srv, Logger: log,
		Open: func(config.Disk) (rbdbackend.Image, error) { return rbdbackend.NewMemoryImage(size), nil }})
	t.Cleanup(r.Close)
	cfg := func(addrA []string) *config.Config {
		c := &config.Config{
			Portals: []string{l.Addr().String()},
			Disks:   []config.Disk{{Name: "d0", Backend: "memory", Size: size}},
			Targets: []config.Target{{IQN: iqn, TPGT: 1, LUNs: []config.LUN{{ID: 0, Disk: "d0"}},
				ACLs: []config.ACL{{InitiatorIQN: hA, Addresses: addrA}, {InitiatorIQN: hB, Addresses: []string{"127.0.0.1"}}}}},
		}
		c.ApplyDefaults()
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		return c
	}
	dial := func(name string) (*iscsitest.Initiator, error) {
		in, err := iscsitest.Dial(l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		in.Timeout = 5 * time.Second
		t.Cleanup(func() { in.Close() })
		return in, in.Login(iscsitest.LoginOptions{InitiatorName: name, TargetName: iqn})
	}
	if err := r.Apply(cfg([]string{"127.0.0.0/8"})); err != nil {
		t.Fatal(err)
	}
	a, err := dial(hA)
	if err != nil {
		t.Fatal(err)
	}
	b, err := dial(hB)
	if err != nil {
		t.Fatal(err)
	}

	if err := r.Apply(cfg([]string{"192.0.2.0/24"})); err != nil {
		t.Fatal(err)
	}
	p, err := a.RecvOpcode(pdu.OpAsyncMsg)
	if err != nil {
		t.Fatal(err)
	}
	if am, _ := pdu.ParseAsyncMsg(p); am.AsyncEvent != pdu.AsyncEventLogoutRequest {
		t.Fatalf("async event %d, want a logout request", am.AsyncEvent)
	}
	if code, err := a.Logout(pdu.LogoutCloseSession); err != nil || code != 0 {
		t.Fatalf("logout %d %v", code, err)
	}
	if _, err := dial(hA); err == nil {
		t.Fatal("login from an address no longer listed succeeded")
	} else if le, ok := err.(*iscsitest.LoginError); !ok || le.Status != login.StatusForbidden {
		t.Fatalf("login from an address no longer listed: %v", err)
	}
	if _, err := b.Ping([]byte("x")); err != nil {
		t.Fatalf("a session the change does not touch: %v", err)
	}
}
