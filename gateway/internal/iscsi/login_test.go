package iscsi

import (
	"errors"
	"testing"
	"time"

	"github.com/rbdgw/rbdgw/gateway/internal/iscsi/iscsitest"
	"github.com/rbdgw/rbdgw/gateway/internal/login"
	"github.com/rbdgw/rbdgw/gateway/internal/pdu"
)

func TestLoginNegotiatesTargetValues(t *testing.T) {
	e := newEnv(t, withTuning(func(o *Options) {
		o.Tuning.MaxRecvDataSegmentLength = 131072
		o.Tuning.MaxBurstLength = 524288
		o.Tuning.FirstBurstLength = 65536
		o.Tuning.QueueDepth = 32
	}))
	in := e.dial()
	if err := in.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, TargetName: testIQN}); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"TargetPortalGroupTag":     "1",
		"MaxRecvDataSegmentLength": "131072",
		"MaxBurstLength":           "524288",
		"FirstBurstLength":         "65536",
		"InitialR2T":               "No",
		"ImmediateData":            "Yes",
		"MaxConnections":           "1",
		"ErrorRecoveryLevel":       "0",
		"TargetAlias":              "disk one",
	} {
		if got := in.TargetKeys[k]; got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if in.TSIH == 0 {
		t.Fatal("TSIH 0 in the final response")
	}
	// The window the final response announced: ExpCmdSN + depth - 1.
	n, err := in.Ping([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if n.MaxCmdSN != n.ExpCmdSN+31 {
		t.Fatalf("ExpCmdSN %d MaxCmdSN %d, want a window of 32", n.ExpCmdSN, n.MaxCmdSN)
	}
}

func TestLoginRefusals(t *testing.T) {
	e := newEnv(t, withAccess(func(ini string) (bool, *login.Credentials) {
		switch ini {
		case testInitiator:
			return true, nil
		case "iqn.2024-01.org.example:chap":
			return true, &login.Credentials{User: "u", Secret: "secretsecret1"}
		}
		return false, nil
	}))
	for _, tc := range []struct {
		name string
		opts iscsitest.LoginOptions
		tsih uint16
		want login.Status
	}{
		{"unknown target", iscsitest.LoginOptions{InitiatorName: testInitiator, TargetName: "iqn.2024-01.org.example:nope"}, 0, login.StatusNotFound},
		{"not allowed", iscsitest.LoginOptions{InitiatorName: "iqn.2024-01.org.example:other", TargetName: testIQN}, 0, login.StatusForbidden},
		{"unknown TSIH", iscsitest.LoginOptions{InitiatorName: testInitiator, TargetName: testIQN}, 0x4242, login.StatusSessionDoesNotExist},
		{"wrong CHAP secret", iscsitest.LoginOptions{InitiatorName: "iqn.2024-01.org.example:chap", TargetName: testIQN,
			CHAP: &login.Credentials{User: "u", Secret: "wrongwrongwrong"}}, 0, login.StatusAuthFailed},
		{"CHAP required", iscsitest.LoginOptions{InitiatorName: "iqn.2024-01.org.example:chap", TargetName: testIQN}, 0, login.StatusAuthFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := e.dial()
			in.TSIH = tc.tsih
			err := in.Login(tc.opts)
			var le *iscsitest.LoginError
			if !errors.As(err, &le) || le.Status != tc.want {
				t.Fatalf("login error %v, want status %v", err, tc.want)
			}
			if _, err := in.ExpectClosed(); err != nil {
				t.Fatal(err)
			}
		})
	}
	if n := e.sessionCount(); n != 0 {
		t.Fatalf("%d sessions left after refused logins", n)
	}
}

func TestLoginUnsupportedVersion(t *testing.T) {
	e := newEnv(t)
	in := e.dial()
	req := &pdu.LoginReq{Transit: true, CSG: 0, NSG: 1, VersionMax: 2, VersionMin: 1, ISID: in.ISID, ITT: 1,
		Data: login.EncodeText([]login.KV{kv("InitiatorName", testInitiator), kv("TargetName", testIQN)})}
	if err := in.Send(req.Encode()); err != nil {
		t.Fatal(err)
	}
	p, err := in.Recv()
	if err != nil {
		t.Fatal(err)
	}
	r, err := pdu.ParseLoginResp(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := login.Status(uint16(r.StatusClass)<<8 | uint16(r.StatusDetail)); got != login.StatusUnsupportedVersion {
		t.Fatalf("status %v, want %v", got, login.StatusUnsupportedVersion)
	}
}

func TestLoginCHAP(t *testing.T) {
	creds := &login.Credentials{User: "alice", Secret: "alice-secret-1", MutualUser: "target", MutualSecret: "target-secret-1"}
	e := newEnv(t, withAccess(func(string) (bool, *login.Credentials) { return true, creds }))
	for _, mutual := range []bool{false, true} {
		c := *creds
		if !mutual {
			c.MutualUser, c.MutualSecret = "", ""
		}
		in := e.dial()
		if err := in.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, TargetName: testIQN, CHAP: &c}); err != nil {
			t.Fatalf("mutual=%v: %v", mutual, err)
		}
		if in.TargetKeys["AuthMethod"] != "CHAP" {
			t.Fatalf("AuthMethod %q", in.TargetKeys["AuthMethod"])
		}
		clearUnitAttention(t, in)
		if code, err := in.Logout(pdu.LogoutCloseSession); err != nil || code != 0 {
			t.Fatalf("logout: %d %v", code, err)
		}
	}
	if e.logs.contains(creds.Secret) || e.logs.contains(creds.MutualSecret) {
		t.Fatal("a CHAP secret appeared in the logs")
	}
}

func TestLoginTimeout(t *testing.T) {
	e := newEnv(t, withTuning(func(o *Options) { o.LoginTimeout = 200 * time.Millisecond }))
	in := e.dial()
	start := time.Now()
	if _, err := in.ExpectClosed(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("closed after %v", d)
	}
	waitFor(t, "connection cleanup", func() bool { return e.connCount() == 0 })
}

func TestLoginFirstPDUNotLogin(t *testing.T) {
	e := newEnv(t)
	in := e.dial()
	if err := in.Send((&pdu.NOPOut{Immediate: true, ITT: 1, TTT: iscsitest.ReservedTag}).Encode()); err != nil {
		t.Fatal(err)
	}
	if _, err := in.ExpectClosed(); err != nil {
		t.Fatal(err)
	}
}

func TestLoginDigests(t *testing.T) {
	e := newEnv(t)
	in := e.login(kv("HeaderDigest", "CRC32C"), kv("DataDigest", "CRC32C"))
	if !in.Params.HeaderDigest || !in.Params.DataDigest {
		t.Fatalf("digests not negotiated: %+v", in.TargetKeys)
	}
	data := pattern(64<<10, 3)
	write10(t, in, 100, data)
	equalBytes(t, "read back", read10(t, in, 100, len(data)).Data, data)
}

func TestSessionReinstatement(t *testing.T) {
	e := newEnv(t)
	old := e.login()
	oldTSIH := old.TSIH
	fresh := e.login() // same initiator name and ISID: reinstates
	if fresh.TSIH == oldTSIH {
		t.Fatalf("reinstated session kept TSIH %d", oldTSIH)
	}
	if _, err := old.ExpectClosed(); err != nil {
		t.Fatalf("old connection: %v", err)
	}
	data := pattern(4096, 9)
	write10(t, fresh, 8, data)
	equalBytes(t, "read back", read10(t, fresh, 8, 4096).Data, data)
	waitFor(t, "one session", func() bool { return e.sessionCount() == 1 })

	// A different ISID is a second session, not a reinstatement.
	other := e.dial()
	other.ISID[5] = 0x77
	if err := other.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, TargetName: testIQN}); err != nil {
		t.Fatal(err)
	}
	if e.sessionCount() != 2 {
		t.Fatalf("%d sessions, want 2", e.sessionCount())
	}
}

func TestConnectionReinstatement(t *testing.T) {
	e := newEnv(t)
	old := e.login()
	data := pattern(8192, 1)
	write10(t, old, 0, data)

	in := e.dial()
	in.TSIH, in.ISID, in.CID = old.TSIH, old.ISID, old.CID
	in.CmdSN, in.ExpStatSN = old.CmdSN, old.ExpStatSN
	if err := in.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, TargetName: testIQN}); err != nil {
		t.Fatal(err)
	}
	if in.TSIH != old.TSIH {
		t.Fatalf("TSIH %d, want %d", in.TSIH, old.TSIH)
	}
	if _, err := old.ExpectClosed(); err != nil {
		t.Fatal(err)
	}
	// Same session: no new POWER ON unit attention, the window continues.
	equalBytes(t, "read back", read10(t, in, 0, 8192).Data, data)
	if e.sessionCount() != 1 {
		t.Fatalf("%d sessions", e.sessionCount())
	}

	// Another CID cannot join: one connection per session.
	third := e.dial()
	third.TSIH, third.ISID, third.CID = in.TSIH, in.ISID, in.CID+1
	err := third.Login(iscsitest.LoginOptions{InitiatorName: testInitiator, TargetName: testIQN})
	var le *iscsitest.LoginError
	if !errors.As(err, &le) || le.Status != login.StatusTooManyConnections {
		t.Fatalf("second CID: %v", err)
	}
}
