package iscsi

import (
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
	"github.com/rbdgw/rbdgw/gateway/internal/pdu"
	"github.com/rbdgw/rbdgw/rbdbackend"
)

func TestLogout(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name   string
		reason uint8
		cid    uint16
		want   uint8
		closes bool
	}{
		{"close session", pdu.LogoutCloseSession, 1, pdu.LogoutRespSuccess, true},
		{"close connection", pdu.LogoutCloseConnection, 1, pdu.LogoutRespSuccess, true},
		{"close another connection", pdu.LogoutCloseConnection, 2, pdu.LogoutRespCIDNotFound, false},
		{"remove for recovery", pdu.LogoutRemoveForRecovery, 1, pdu.LogoutRespNoRecovery, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := e.login()
			saved := in.CID
			in.CID = tc.cid
			code, err := in.Logout(tc.reason)
			in.CID = saved
			if err != nil || code != tc.want {
				t.Fatalf("response %d %v, want %d", code, err, tc.want)
			}
			if !tc.closes {
				stillServes(t, in)
				return
			}
			if _, err := in.ExpectClosed(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "session end", func() bool { return e.sessionCount() == 0 })
		})
	}
}

func TestLogoutWaitsForRunningCommands(t *testing.T) {
	e := newEnv(t)
	in := e.login()
	e.fault.SetLatency(rbdbackend.OpWrite, 200*time.Millisecond)
	w := &iscsitest.Cmd{CDB: cdbWrite10(0, 1), EDTL: 512, Data: pattern(512, 4)}
	if err := in.Submit(w); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	code, err := in.Logout(pdu.LogoutCloseSession)
	if err != nil || code != 0 {
		t.Fatalf("logout %d %v", code, err)
	}
	if !w.Done() || w.Result.Status != 0 {
		t.Fatal("the write did not answer before the Logout Response")
	}
	equalBytes(t, "written", e.imageBytes(0, 512), w.Data)
}
