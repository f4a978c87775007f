package login

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

// answerOf runs a one-request login offering kv and returns the answer.
func answerOf(t *testing.T, p Policy, sessionType string, kv KV) (string, bool, *Conversation) {
	t.Helper()
	d := newDriver(t, p)
	resp, got := d.step(StageOperational, StageFullFeature, true, join(names(sessionType), []KV{kv})...)
	if resp.Status != StatusSuccess {
		t.Fatalf("%s=%s: status %v (%v)", kv.Key, kv.Value, resp.Status, d.c.Err())
	}
	v, ok := got[kv.Key]
	return v, ok, d.c
}

func TestAnswers(t *testing.T) {
	tests := []struct {
		session string
		key     string
		value   string
		want    string
	}{
		// Numbers: min/max against testOffer, range checks.
		{SessionNormal, keyMaxBurstLength, "65536", "65536"},
		{SessionNormal, keyMaxBurstLength, "16777215", "1048576"},
		{SessionNormal, keyMaxBurstLength, "511", "Reject"},
		{SessionNormal, keyMaxBurstLength, "16777216", "Reject"},
		{SessionNormal, keyMaxBurstLength, "0x10000", "65536"},
		{SessionNormal, keyMaxBurstLength, "lots", "Reject"},
		{SessionNormal, keyFirstBurstLength, "1048576", "262144"},
		{SessionNormal, keyFirstBurstLength, "4096", "4096"},
		{SessionNormal, keyMaxConnections, "8", "1"},
		{SessionNormal, keyMaxConnections, "0", "Reject"},
		{SessionNormal, keyMaxOutstandingR2T, "16", "1"},
		{SessionNormal, keyMaxOutstandingR2T, "65536", "Reject"},
		{SessionNormal, keyDefaultTime2Wait, "0", "2"},
		{SessionNormal, keyDefaultTime2Wait, "20", "20"},
		{SessionNormal, keyDefaultTime2Wait, "3601", "Reject"},
		{SessionNormal, keyDefaultTime2Retain, "60", "20"},
		{SessionNormal, keyDefaultTime2Retain, "0", "0"},
		{SessionNormal, keyErrorRecoveryLevel, "2", "0"},
		{SessionNormal, keyErrorRecoveryLevel, "3", "Reject"},
		// Booleans: OR / AND against testOffer (InitialR2T=No, others Yes).
		{SessionNormal, keyInitialR2T, "Yes", "Yes"},
		{SessionNormal, keyInitialR2T, "No", "No"},
		{SessionNormal, keyImmediateData, "No", "No"},
		{SessionNormal, keyImmediateData, "Yes", "Yes"},
		{SessionNormal, keyImmediateData, "yes", "Reject"},
		{SessionNormal, keyDataPDUInOrder, "No", "Yes"},
		{SessionNormal, keyDataSequenceInOrder, "No", "Yes"},
		// Lists.
		{SessionNormal, keyHeaderDigest, "CRC32C,None", "CRC32C"},
		{SessionNormal, keyHeaderDigest, "CRC32C", "CRC32C"},
		{SessionNormal, keyDataDigest, "MD5", "Reject"},
		{SessionNormal, keyTaskReporting, "ResponseFence,RFC3720", "RFC3720"},
		{SessionNormal, keyTaskReporting, "FastAbort", "Reject"},
		// Declarative.
		{SessionNormal, keyMaxRecvDSL, "65536", "262144"},
		{SessionNormal, keyMaxRecvDSL, "256", "Reject"},
		// Obsolete markers (RFC 7143 §13.25).
		{SessionNormal, keyIFMarker, "No", "No"},
		{SessionNormal, keyOFMarker, "Yes", "No"},
		{SessionNormal, keyOFMarker, "Maybe", "Reject"},
		{SessionNormal, keyIFMarkInt, "2048~8192", "Reject"},
		{SessionNormal, keyOFMarkInt, "2048", "Reject"},
		// Not understood, reserved answers used as offers, full-feature-only keys.
		{SessionNormal, "X-com.example.Feature", "Yes", "NotUnderstood"},
		{SessionNormal, "X#org.example.k", "1", "NotUnderstood"},
		{SessionNormal, "FancyNewKey", "1", "NotUnderstood"},
		{SessionNormal, "iSCSIProtocolLevel", "2", "NotUnderstood"},
		{SessionNormal, "RDMAExtensions", "Yes", "NotUnderstood"},
		{SessionNormal, keyMaxBurstLength, "Reject", "Reject"},
		{SessionNormal, keyImmediateData, "Irrelevant", "Reject"},
		{SessionNormal, keySendTargets, "All", "Irrelevant"},
		// Discovery sessions.
		{SessionDiscovery, keyMaxBurstLength, "65536", "Irrelevant"},
		{SessionDiscovery, keyFirstBurstLength, "65536", "Irrelevant"},
		{SessionDiscovery, keyInitialR2T, "No", "Irrelevant"},
		{SessionDiscovery, keyImmediateData, "No", "Irrelevant"},
		{SessionDiscovery, keyMaxConnections, "1", "Irrelevant"},
		{SessionDiscovery, keyMaxOutstandingR2T, "1", "Irrelevant"},
		{SessionDiscovery, keyDataPDUInOrder, "Yes", "Irrelevant"},
		{SessionDiscovery, keyDataSequenceInOrder, "Yes", "Irrelevant"},
		{SessionDiscovery, keyTaskReporting, "RFC3720", "Irrelevant"},
		{SessionDiscovery, keyDefaultTime2Wait, "5", "5"},
		{SessionDiscovery, keyErrorRecoveryLevel, "1", "0"},
		{SessionDiscovery, keyMaxRecvDSL, "16384", "262144"},
		{SessionDiscovery, keyHeaderDigest, "None,CRC32C", "None"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s=%s", tt.session, tt.key, tt.value), func(t *testing.T) {
			tp := &testPolicy{}
			got, ok, _ := answerOf(t, tp.policy(), tt.session, KV{tt.key, tt.value})
			if !ok || got != tt.want {
				t.Fatalf("answer %q (present %v), want %q", got, ok, tt.want)
			}
		})
	}
}

func TestDigestFollowsInitiatorOrder(t *testing.T) {
	tp := &testPolicy{}
	p := tp.policy()
	for _, tc := range []struct {
		offer, want string
	}{{"None,CRC32C", "None"}, {"CRC32C,None", "CRC32C"}, {"CRC32C", "CRC32C"}, {"None", "None"}} {
		got, _, c := answerOf(t, p, SessionNormal, KV{keyHeaderDigest, tc.offer})
		if got != tc.want || c.Params().HeaderDigest != (tc.want == "CRC32C") {
			t.Fatalf("HeaderDigest=%s: answer %q, params %v; want %q", tc.offer, got, c.Params().HeaderDigest, tc.want)
		}
	}
}

func TestLibiscsiParams(t *testing.T) {
	tp := &testPolicy{}
	d := newDriver(t, tp.policy())
	resp, _ := d.step(StageOperational, StageFullFeature, true, join(names(SessionNormal), libiscsiOperational())...)
	if !resp.Done || d.c.Stage() != StageFullFeature {
		t.Fatalf("login not done: %+v, %v", resp, d.c.Err())
	}
	got := d.c.Params()
	w := DefaultParams()
	w.InitiatorName, w.TargetName = testInitiator, testTarget
	w.InitialR2T = false
	w.MaxRecvDataSegmentLength = 262144
	w.TargetMaxRecvDataSegmentLength = 262144
	w.FirstBurstLength = 262144
	w.DefaultTime2Retain = 0
	if got != w {
		t.Fatalf("params\n got %+v\nwant %+v", got, w)
	}
	if c := tp.calls; len(c) != 1 || c[0] != (resolveCall{SessionNormal, testInitiator, testTarget}) {
		t.Fatalf("Resolve calls %v", c)
	}
}

func TestDiscoveryResolve(t *testing.T) {
	tp := &testPolicy{}
	d := newDriver(t, tp.policy())
	// A TargetName in a discovery login is ignored.
	resp, _ := d.step(StageOperational, StageFullFeature, true,
		KV{keyInitiatorName, testInitiator}, KV{keySessionType, SessionDiscovery}, KV{keyTargetName, "iqn.x:y"})
	if !resp.Done {
		t.Fatalf("discovery login: %+v %v", resp, d.c.Err())
	}
	if c := tp.calls; len(c) != 1 || c[0] != (resolveCall{SessionDiscovery, testInitiator, ""}) {
		t.Fatalf("Resolve calls %v", c)
	}
	if p := d.c.Params(); p.SessionType != SessionDiscovery || p.TargetName != "" {
		t.Fatalf("params %+v", p)
	}
}

func TestMaxRecvDataSegmentLengthDeclaredOnce(t *testing.T) {
	tp := &testPolicy{}
	d := newDriver(t, tp.policy())
	resp, got := d.step(StageOperational, StageFullFeature, false, names(SessionNormal)...)
	if resp.Transit || got[keyMaxRecvDSL] != "262144" || got[keyTargetPortalGroupTag] != "2" {
		t.Fatalf("first response %v", got)
	}
	resp, got = d.step(StageOperational, StageFullFeature, true, KV{keyMaxRecvDSL, "4096"})
	if !resp.Done {
		t.Fatalf("not done: %v", d.c.Err())
	}
	// The answer to the initiator's declaration is not a second declaration
	// of a different value, and TargetPortalGroupTag is sent once.
	if _, ok := got[keyTargetPortalGroupTag]; ok {
		t.Fatalf("TargetPortalGroupTag sent twice: %v", got)
	}
	if got[keyMaxRecvDSL] != "262144" {
		t.Fatalf("second response %v", got)
	}
	p := d.c.Params()
	if p.MaxRecvDataSegmentLength != 4096 || p.TargetMaxRecvDataSegmentLength != 262144 {
		t.Fatalf("params %+v", p)
	}
}

func TestRejectedMaxRecvKeepsDefaults(t *testing.T) {
	tp := &testPolicy{}
	_, _, c := answerOf(t, tp.policy(), SessionNormal, KV{keyMaxRecvDSL, "100"})
	if p := c.Params(); p.MaxRecvDataSegmentLength != 8192 || p.TargetMaxRecvDataSegmentLength != 8192 {
		t.Fatalf("params %+v", p)
	}
}

func TestFirstBurstNotAboveMaxBurst(t *testing.T) {
	tp := &testPolicy{}
	d := newDriver(t, tp.policy())
	// FirstBurstLength comes first on the wire; MaxBurstLength still bounds it.
	resp, got := d.step(StageOperational, StageFullFeature, true, join(names(SessionNormal),
		[]KV{{keyFirstBurstLength, "262144"}, {keyMaxBurstLength, "16384"}})...)
	if !resp.Done || got[keyFirstBurstLength] != "16384" || got[keyMaxBurstLength] != "16384" {
		t.Fatalf("response %v, %v", got, d.c.Err())
	}
	if p := d.c.Params(); p.FirstBurstLength != 16384 || p.MaxBurstLength != 16384 {
		t.Fatalf("params %+v", p)
	}
}

func TestTargetOffers(t *testing.T) {
	tp := &testPolicy{}
	p := tp.policy()
	p.Offer.FirstBurstLength = 16384
	p.Offer.ImmediateData = false
	d := newDriver(t, p)
	// The initiator offers neither key; the target must propose them and
	// hold the stage until they are answered.
	resp, got := d.step(StageOperational, StageFullFeature, true, join(names(SessionNormal), []KV{{keyMaxBurstLength, "262144"}})...)
	if resp.Transit || resp.Status != StatusSuccess {
		t.Fatalf("offers sent with transit: %+v %v", resp, d.c.Err())
	}
	if got[keyFirstBurstLength] != "16384" || got[keyImmediateData] != "No" {
		t.Fatalf("offers %v", got)
	}
	if _, ok := got[keyMaxConnections]; ok {
		t.Fatalf("offered a key whose default is acceptable: %v", got)
	}
	resp, got = d.step(StageOperational, StageFullFeature, true, KV{keyFirstBurstLength, "8192"}, KV{keyImmediateData, "No"})
	if !resp.Done || len(got) != 0 {
		t.Fatalf("answers not accepted: %+v %v %v", resp, got, d.c.Err())
	}
	if p := d.c.Params(); p.FirstBurstLength != 8192 || p.ImmediateData {
		t.Fatalf("params %+v", p)
	}
}

func TestTargetOfferAnswerViolatesFunction(t *testing.T) {
	tp := &testPolicy{}
	p := tp.policy()
	p.Offer.ImmediateData = false
	d := newDriver(t, p)
	d.step(StageOperational, StageFullFeature, true, names(SessionNormal)...)
	resp, _ := d.step(StageOperational, StageFullFeature, true, KV{keyImmediateData, "Yes"})
	if resp.Status != StatusInitiatorError {
		t.Fatalf("ImmediateData=Yes answer to No accepted: %+v", resp)
	}
}

func TestNoOffersToLibiscsi(t *testing.T) {
	// libiscsi offers every key and repeats them all if the target holds
	// the stage, so a complete offer must never be answered with T=0.
	tp := &testPolicy{}
	p := tp.policy()
	p.Offer.FirstBurstLength = 16384
	p.Offer.ImmediateData = false
	d := newDriver(t, p)
	resp, got := d.step(StageOperational, StageFullFeature, true, join(names(SessionNormal), libiscsiOperational())...)
	if !resp.Done || got[keyFirstBurstLength] != "16384" || got[keyImmediateData] != "No" {
		t.Fatalf("response %+v %v %v", resp, got, d.c.Err())
	}
}

func TestNonLeadingConnection(t *testing.T) {
	session := DefaultParams()
	session.InitiatorName, session.TargetName = testInitiator, testTarget
	session.MaxBurstLength = 65536
	session.FirstBurstLength = 16384
	session.ImmediateData = false
	session.HeaderDigest = true
	session.MaxRecvDataSegmentLength = 65536
	tp := &testPolicy{}
	p := tp.policy()
	p.Leading = false
	p.Session = &session
	d := newDriver(t, p)
	resp, got := d.step(StageOperational, StageFullFeature, true, join(names(SessionNormal), libiscsiOperational())...)
	if !resp.Done {
		t.Fatalf("not done: %+v %v", resp, d.c.Err())
	}
	for _, k := range []string{keyMaxBurstLength, keyFirstBurstLength, keyInitialR2T, keyImmediateData, keyMaxConnections,
		keyDefaultTime2Wait, keyDefaultTime2Retain, keyMaxOutstandingR2T, keyErrorRecoveryLevel,
		keyDataPDUInOrder, keyDataSequenceInOrder} {
		if got[k] != valueIrrelevant {
			t.Errorf("%s=%q on a non-leading connection", k, got[k])
		}
	}
	if got[keyHeaderDigest] != "None" || got[keyMaxRecvDSL] != "262144" || got[keyTargetPortalGroupTag] != "2" {
		t.Errorf("connection keys %v", got)
	}
	params := d.c.Params()
	if params.MaxBurstLength != 65536 || params.FirstBurstLength != 16384 || params.ImmediateData {
		t.Errorf("session values lost: %+v", params)
	}
	if params.HeaderDigest || params.MaxRecvDataSegmentLength != 262144 {
		t.Errorf("connection values not renegotiated: %+v", params)
	}
}

func TestNonLeadingConnectionMismatch(t *testing.T) {
	session := DefaultParams()
	session.InitiatorName, session.TargetName = "iqn.1994-05.com.example:other", testTarget
	tp := &testPolicy{}
	p := tp.policy()
	p.Leading = false
	p.Session = &session
	d := newDriver(t, p)
	if resp, _ := d.step(StageOperational, StageFullFeature, true, names(SessionNormal)...); resp.Status != StatusInitiatorError {
		t.Fatalf("joined another initiator's session: %+v", resp)
	}
	p.Session = nil
	d = newDriver(t, p)
	if resp, _ := d.step(StageOperational, StageFullFeature, true, names(SessionNormal)...); resp.Status != StatusSessionDoesNotExist {
		t.Fatalf("non-leading without session: %+v", resp)
	}
}

func TestFailureIsFinal(t *testing.T) {
	tp := &testPolicy{creds: oneWay()}
	d := newDriver(t, tp.policy())
	d.step(StageSecurity, StageOperational, true, join(names(SessionNormal), []KV{{keyAuthMethod, "CHAP"}})...)
	d.step(StageSecurity, StageOperational, false, KV{keyCHAPA, "5"})
	resp, _ := d.step(StageSecurity, StageOperational, true, KV{keyCHAPN, testUser}, KV{keyCHAPR, initiatorResponse("nope")})
	if resp.Status != StatusAuthFailed {
		t.Fatalf("status %v", resp.Status)
	}
	// Retrying with the right answer on the same connection is not allowed.
	resp, _ = d.step(StageSecurity, StageOperational, true, KV{keyCHAPN, testUser}, KV{keyCHAPR, initiatorResponse(testSecret)})
	if resp.Status != StatusAuthFailed || resp.Transit {
		t.Fatalf("second try: %+v", resp)
	}
	if msg := d.c.Err().Error(); strings.Contains(msg, testSecret) || strings.Contains(msg, "nope") {
		t.Fatalf("error reveals a secret: %q", msg)
	}
}

func TestStepAfterDone(t *testing.T) {
	tp := &testPolicy{}
	d := newDriver(t, tp.policy())
	if resp, _ := d.step(StageOperational, StageFullFeature, true, names(SessionNormal)...); !resp.Done {
		t.Fatalf("not done: %v", d.c.Err())
	}
	if resp, _ := d.step(StageFullFeature, StageFullFeature, true); resp.Status != StatusInitiatorError {
		t.Fatalf("step after done: %+v", resp)
	}
}

func TestMutualSecretMustDiffer(t *testing.T) {
	creds := &Credentials{User: testUser, Secret: testSecret, MutualUser: testMutUser, MutualSecret: testSecret}
	tp := &testPolicy{creds: creds}
	d := newDriver(t, tp.policy())
	d.step(StageSecurity, StageOperational, true, join(names(SessionNormal), []KV{{keyAuthMethod, "CHAP"}})...)
	d.step(StageSecurity, StageOperational, false, KV{keyCHAPA, "5"})
	resp, got := d.step(StageSecurity, StageOperational, true, KV{keyCHAPN, testUser}, KV{keyCHAPR, initiatorResponse(testSecret)},
		KV{keyCHAPI, "9"}, KV{keyCHAPC, "0x" + hex.EncodeToString(peerChallenge)})
	if resp.Status != StatusAuthFailed || len(got) != 0 {
		t.Fatalf("mutual CHAP with one secret for both directions: %+v %v", resp, got)
	}
}

func TestIncompleteCredentialsRefused(t *testing.T) {
	tp := &testPolicy{creds: &Credentials{User: testUser}}
	d := newDriver(t, tp.policy())
	resp, _ := d.step(StageSecurity, StageOperational, true, join(names(SessionNormal), []KV{{keyAuthMethod, "CHAP"}})...)
	if resp.Status != StatusTargetError {
		t.Fatalf("empty secret: %+v", resp)
	}
}

func TestCHAPResponseVectors(t *testing.T) {
	// Digests computed outside Go (Python hashlib.md5).
	tests := []struct {
		id        byte
		secret    string
		challenge string
		want      string
	}{
		{0x30, "libiscsi-secret", "3132333435363738393a3b3c3d3e3f40", "e2a17c338b9b924c30368928428fa328"},
		{0x01, "secret", "00112233445566778899aabbccddeeff", "204bb003332f6932b63b47c2c4e1a547"},
		{0xff, "", "", "00594fd4f42ba43fc1ca0427a0576295"},
	}
	for _, tt := range tests {
		c, _ := hex.DecodeString(tt.challenge)
		if got := hex.EncodeToString(chapResponse(tt.id, tt.secret, c)); got != tt.want {
			t.Errorf("chapResponse(%d, %q, %s) = %s, want %s", tt.id, tt.secret, tt.challenge, got, tt.want)
		}
		if got := md5Hex(tt.id, tt.secret, c); got != tt.want {
			t.Errorf("md5Hex(%d, %q, %s) = %s, want %s", tt.id, tt.secret, tt.challenge, got, tt.want)
		}
	}
}

func TestChallengeIsRandom(t *testing.T) {
	challenge := func() string {
		tp := &testPolicy{creds: oneWay()}
		c := NewConversation(tp.policy())
		c.Step(Request{Transit: true, CSG: StageSecurity, NSG: StageOperational,
			Text: EncodeText(join(names(SessionNormal), []KV{{keyAuthMethod, "CHAP"}}))})
		resp := c.Step(Request{CSG: StageSecurity, NSG: StageOperational, Text: EncodeText([]KV{{keyCHAPA, "5"}})})
		return answers(t, resp.Text)[keyCHAPC]
	}
	a, b := challenge(), challenge()
	if len(a) != 2+2*chapChallengeLength || a == b {
		t.Fatalf("challenges %q and %q", a, b)
	}
}
