package iscsi

import (
	"testing"

	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
	"github.com/rbdgw/rbdgw/gateway/internal/login"
)

// A cluster gateway advertises the other gateways' portals of its target
// with their own portal group tags.
func TestSendTargetsKeepsPortalTags(t *testing.T) {
	e := newEnv(t)
	spec := e.spec
	spec.Portals = []string{e.addr, "192.0.2.2:3260,2", "[2001:db8::3]:3260,3"}
	if err := e.srv.SetTarget(spec); err != nil {
		t.Fatal(err)
	}
	in := e.dial()
	if err := in.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, Discovery: true}); err != nil {
		t.Fatal(err)
	}
	got, err := in.SendTargets("All")
	if err != nil {
		t.Fatal(err)
	}
	want := []login.KV{kv("TargetName", testIQN), kv("TargetAddress", e.addr+",1"),
		kv("TargetAddress", "192.0.2.2:3260,2"), kv("TargetAddress", "[2001:db8::3]:3260,3")}
	if !kvEqual(got, want) {
		t.Fatalf("SendTargets=All: %v, want %v", got, want)
	}
}
