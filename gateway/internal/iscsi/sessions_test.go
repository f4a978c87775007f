package iscsi

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
	"github.com/rbdgw/rbdgw/gateway/internal/login"
)

// TestSessionsNegotiated checks what Sessions reports of a CHAP login with
// digests: the values both sides settled on, the portal and the LUNs.
func TestSessionsNegotiated(t *testing.T) {
	creds := &login.Credentials{User: "host1", Secret: "host1secret12"}
	e := newEnv(t, withAccess(func(string) (bool, *login.Credentials) { return true, creds }),
		withTuning(func(o *Options) {
			o.Tuning.MaxBurstLength = 512 << 10
			o.Tuning.FirstBurstLength = 128 << 10
			o.Tuning.MaxRecvDataSegmentLength = 64 << 10
		}))
	before := time.Now()
	in := e.dial()
	err := in.Login(iscsitest.LoginOptions{
		InitiatorName: testInitiator, TargetName: testIQN, CHAP: creds,
		Keys: []login.KV{{Key: "HeaderDigest", Value: "CRC32C"}, {Key: "DataDigest", Value: "CRC32C,None"},
			{Key: "MaxRecvDataSegmentLength", Value: "32768"}, {Key: "InitialR2T", Value: "Yes"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	list := e.srv.Sessions()
	if len(list) != 1 {
		t.Fatalf("%d sessions", len(list))
	}
	s := list[0]
	if s.Portal != e.addr || s.Remote != in.Conn.LocalAddr().String() {
		t.Errorf("portal %q remote %q, want %q and %q", s.Portal, s.Remote, e.addr, in.Conn.LocalAddr())
	}
	if s.LoginTime.Before(before) || s.LoginTime.After(time.Now()) {
		t.Errorf("login time %v", s.LoginTime)
	}
	if s.AuthMethod != "CHAP" || !s.HeaderDigest || !s.DataDigest {
		t.Errorf("auth %q digests %v/%v, want CHAP and CRC32C on both", s.AuthMethod, s.HeaderDigest, s.DataDigest)
	}
	if s.MaxRecvDataSegmentLength != 32768 || s.TargetMaxRecvDataSegmentLength != 64<<10 {
		t.Errorf("MaxRecvDataSegmentLength initiator %d target %d", s.MaxRecvDataSegmentLength, s.TargetMaxRecvDataSegmentLength)
	}
	// The initiator asks for 1 MiB / 256 KiB; the smaller offer wins.
	if s.MaxBurstLength != 512<<10 || s.FirstBurstLength != 128<<10 || !s.ImmediateData || !s.InitialR2T {
		t.Errorf("burst %d first %d immediate %v initialR2T %v", s.MaxBurstLength, s.FirstBurstLength, s.ImmediateData, s.InitialR2T)
	}
	if !slices.Equal(s.LUNs, []uint64{0}) {
		t.Errorf("LUNs %v", s.LUNs)
	}
}

// TestSessionsAuthNone: a login without CHAP reports None.
func TestSessionsAuthNone(t *testing.T) {
	e := newEnv(t)
	e.login()
	list := e.srv.Sessions()
	if len(list) != 1 || list[0].AuthMethod != "None" || list[0].HeaderDigest {
		t.Fatalf("%+v", list)
	}
}

// TestSessionsConcurrent lists sessions while initiators log in and out
// (run with -race).
func TestSessionsConcurrent(t *testing.T) {
	e := newEnv(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, s := range e.srv.Sessions() {
				_ = s.LUNs
			}
		}
	}()
	for i := range 10 {
		in := e.dial()
		in.ISID[5] = byte(i)
		if err := in.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, TargetName: testIQN}); err != nil {
			t.Fatal(err)
		}
		in.Close()
	}
	close(stop)
	wg.Wait()
}
