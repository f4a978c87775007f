package login

import (
	"encoding/base64"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
)

type want struct {
	status  Status
	transit bool
	nsg     uint8
	done    bool
	keys    map[string]string // present with these values
	absent  []string
	exact   bool // keys is the whole response
}

type loginStep struct {
	csg, nsg uint8
	transit  bool
	kvs      []KV
	want     want
}

type scenario struct {
	name  string
	creds *Credentials // CHAP required for the Normal target when set
	disc  *Credentials // CHAP required for discovery when set
	steps []loginStep
}

var (
	peerID        = "77"
	peerChallenge = func() []byte {
		c := make([]byte, 32)
		for i := range c {
			c[i] = 0xa0 + byte(i)
		}
		return c
	}()
	targetChallengeHex = "0x" + hex.EncodeToString(testChallenge())
)

func securityOffer(sessionType, methods string) loginStep {
	keys := map[string]string{keyAuthMethod: strings.Split(methods, ",")[0]}
	absent := []string{}
	if sessionType == SessionNormal {
		keys[keyTargetPortalGroupTag] = "2"
		keys[keyTargetAlias] = "disk1"
	} else {
		absent = append(absent, keyTargetPortalGroupTag)
	}
	return loginStep{StageSecurity, StageOperational, true,
		join(names(sessionType), []KV{{keyAuthMethod, "CHAP,None"}}),
		want{keys: keys, absent: absent, exact: true}}
}

var chapAlgorithm = loginStep{StageSecurity, StageOperational, false, []KV{{keyCHAPA, "5"}},
	want{keys: map[string]string{keyCHAPA: "5", keyCHAPI: "48", keyCHAPC: targetChallengeHex}, exact: true}}

func chapAnswer(kvs ...KV) loginStep {
	return loginStep{StageSecurity, StageOperational, true, kvs,
		want{transit: true, nsg: StageOperational, keys: map[string]string{}, exact: true}}
}

func refused(s loginStep, status Status) loginStep {
	s.want = want{status: status}
	return s
}

var operationalDone = loginStep{StageOperational, StageFullFeature, true, libiscsiOperational(),
	want{transit: true, nsg: StageFullFeature, done: true, keys: libiscsiAnswers, exact: true}}

func TestConversations(t *testing.T) {
	goodCHAP := []KV{{keyCHAPN, testUser}, {keyCHAPR, initiatorResponse(testSecret)}}
	mutualCHAP := append(append([]KV{}, goodCHAP...), KV{keyCHAPI, peerID}, KV{keyCHAPC, "0x" + hex.EncodeToString(peerChallenge)})
	mutualAnswer := chapAnswer(mutualCHAP...)
	mutualAnswer.want.keys = map[string]string{
		keyCHAPN: testMutUser,
		keyCHAPR: "0x" + md5Hex(77, testMutSecret, peerChallenge),
	}
	noneAnswers := map[string]string{keyTargetPortalGroupTag: "2", keyTargetAlias: "disk1"}
	for k, v := range libiscsiAnswers {
		noneAnswers[k] = v
	}
	reflected := append(append([]KV{}, goodCHAP...), KV{keyCHAPI, "1"}, KV{keyCHAPC, targetChallengeHex})
	base64R := func(extra string) []KV {
		raw, _ := hex.DecodeString(md5Hex(testCHAPID, testSecret, testChallenge()))
		return []KV{{keyCHAPN, testUser}, {keyCHAPR, "0b" + extra + base64.StdEncoding.EncodeToString(raw)}}
	}

	scenarios := []scenario{
		{name: "libiscsi without CHAP", steps: []loginStep{
			{StageOperational, StageFullFeature, true, join(names(SessionNormal), libiscsiOperational()),
				want{transit: true, nsg: StageFullFeature, done: true, keys: noneAnswers, exact: true}},
		}},
		{name: "libiscsi CHAP", creds: oneWay(), steps: []loginStep{
			securityOffer(SessionNormal, "CHAP"), chapAlgorithm, chapAnswer(goodCHAP...), operationalDone,
		}},
		{name: "libiscsi mutual CHAP", creds: mutual(), steps: []loginStep{
			securityOffer(SessionNormal, "CHAP"), chapAlgorithm, mutualAnswer, operationalDone,
		}},
		{name: "one-way CHAP with mutual credentials configured", creds: mutual(), steps: []loginStep{
			securityOffer(SessionNormal, "CHAP"), chapAlgorithm, chapAnswer(goodCHAP...), operationalDone,
		}},
		{name: "wrong secret", creds: oneWay(), steps: []loginStep{
			securityOffer(SessionNormal, "CHAP"), chapAlgorithm,
			refused(chapAnswer(KV{keyCHAPN, testUser}, KV{keyCHAPR, initiatorResponse("wrong-secret")}), StatusAuthFailed),
		}},
		{name: "wrong user", creds: oneWay(), steps: []loginStep{
			securityOffer(SessionNormal, "CHAP"), chapAlgorithm,
			refused(chapAnswer(KV{keyCHAPN, "someone"}, KV{keyCHAPR, initiatorResponse(testSecret)}), StatusAuthFailed),
		}},
		{name: "truncated response", creds: oneWay(), steps: []loginStep{
			securityOffer(SessionNormal, "CHAP"), chapAlgorithm,
			refused(chapAnswer(KV{keyCHAPN, testUser}, KV{keyCHAPR, initiatorResponse(testSecret)[:20]}), StatusAuthFailed),
		}},
		{name: "reflected challenge", creds: mutual(), steps: []loginStep{
			securityOffer(SessionNormal, "CHAP"), chapAlgorithm, refused(chapAnswer(reflected...), StatusAuthFailed),
		}},
		{name: "mutual CHAP not configured", creds: oneWay(), steps: []loginStep{
			securityOffer(SessionNormal, "CHAP"), chapAlgorithm, refused(chapAnswer(mutualCHAP...), StatusAuthFailed),
		}},
		{name: "mutual CHAP with CHAP_I only", creds: mutual(), steps: []loginStep{
			securityOffer(SessionNormal, "CHAP"), chapAlgorithm,
			refused(chapAnswer(append(append([]KV{}, goodCHAP...), KV{keyCHAPI, "3"})...), StatusAuthFailed),
		}},
		{name: "CHAP_R in base64", creds: oneWay(), steps: []loginStep{
			securityOffer(SessionNormal, "CHAP"), chapAlgorithm, chapAnswer(base64R("")...), operationalDone,
		}},
		{name: "CHAP_R in oversize base64", creds: oneWay(), steps: []loginStep{
			securityOffer(SessionNormal, "CHAP"), chapAlgorithm, refused(chapAnswer(base64R("b3ZlcnNpemUK")...), StatusAuthFailed),
		}},
		{name: "CHAP_A list", creds: oneWay(), steps: []loginStep{
			securityOffer(SessionNormal, "CHAP"),
			{StageSecurity, StageOperational, false, []KV{{keyCHAPA, "5,6,7,8"}}, chapAlgorithm.want},
		}},
		{name: "CHAP_A=56", creds: oneWay(), steps: []loginStep{
			securityOffer(SessionNormal, "CHAP"),
			refused(loginStep{StageSecurity, StageOperational, false, []KV{{keyCHAPA, "56"}}, want{}}, StatusAuthFailed),
		}},
		{name: "empty CHAP_A", creds: oneWay(), steps: []loginStep{
			securityOffer(SessionNormal, "CHAP"),
			refused(loginStep{StageSecurity, StageOperational, false, []KV{{keyCHAPA, ""}}, want{}}, StatusAuthFailed),
		}},
		{name: "CHAP_A missing after AuthMethod=CHAP", creds: oneWay(), steps: []loginStep{
			securityOffer(SessionNormal, "CHAP"),
			refused(loginStep{StageSecurity, StageOperational, true, nil, want{}}, StatusAuthFailed),
		}},
		{name: "CHAP response missing: transit refused", creds: oneWay(), steps: []loginStep{
			securityOffer(SessionNormal, "CHAP"),
			{StageSecurity, StageOperational, true, []KV{{keyCHAPA, "5"}}, chapAlgorithm.want}, // T=1 held: T=0
			refused(loginStep{StageSecurity, StageOperational, true, nil, want{}}, StatusAuthFailed),
		}},
		{name: "operational stage before authentication", creds: oneWay(), steps: []loginStep{
			securityOffer(SessionNormal, "CHAP"),
			refused(loginStep{StageOperational, StageFullFeature, true, libiscsiOperational(), want{}}, StatusInitiatorError),
		}},
		{name: "CHAP keys without AuthMethod=CHAP", creds: nil, steps: []loginStep{
			refused(loginStep{StageSecurity, StageOperational, false,
				join(names(SessionNormal), []KV{{keyCHAPA, "5"}}), want{}}, StatusAuthFailed),
		}},
		{name: "CHAP required, only None offered", creds: oneWay(), steps: []loginStep{
			refused(loginStep{StageSecurity, StageOperational, true,
				join(names(SessionNormal), []KV{{keyAuthMethod, "None"}}), want{}}, StatusAuthFailed),
		}},
		{name: "CHAP required, no AuthMethod", creds: oneWay(), steps: []loginStep{
			refused(loginStep{StageSecurity, StageOperational, true, names(SessionNormal), want{}}, StatusAuthFailed),
		}},
		{name: "CHAP required, login starts in operational stage", creds: oneWay(), steps: []loginStep{
			refused(loginStep{StageOperational, StageFullFeature, true,
				join(names(SessionNormal), libiscsiOperational()), want{}}, StatusAuthFailed),
		}},
		{name: "no CHAP configured, only CHAP offered", steps: []loginStep{
			refused(loginStep{StageSecurity, StageOperational, true,
				join(names(SessionNormal), []KV{{keyAuthMethod, "CHAP"}}), want{}}, StatusAuthFailed),
		}},
		{name: "CHAP offered but not required: libiscsi repeats its names", steps: []loginStep{
			{StageSecurity, StageOperational, true, join(names(SessionNormal), []KV{{keyAuthMethod, "CHAP,None"}}),
				want{transit: true, nsg: StageOperational, keys: map[string]string{keyAuthMethod: "None", keyTargetPortalGroupTag: "2"}}},
			{StageOperational, StageFullFeature, true, join(names(SessionNormal), libiscsiOperational()),
				want{transit: true, nsg: StageFullFeature, done: true, keys: libiscsiAnswers, exact: true}},
		}},
		{name: "name changed after the first request", steps: []loginStep{
			{StageSecurity, StageOperational, true, join(names(SessionNormal), []KV{{keyAuthMethod, "None"}}),
				want{transit: true, nsg: StageOperational}},
			refused(loginStep{StageOperational, StageFullFeature, true,
				[]KV{{keyInitiatorName, "iqn.1994-05.com.example:other"}}, want{}}, StatusInitiatorError),
		}},
		{name: "security stage straight to full feature", steps: []loginStep{
			{StageSecurity, StageFullFeature, true, join(names(SessionNormal), []KV{{keyAuthMethod, "None"}}),
				want{transit: true, nsg: StageFullFeature, done: true,
					keys: map[string]string{keyAuthMethod: "None", keyMaxRecvDSL: "262144"}}},
		}},
		{name: "CHAP then straight to full feature", creds: oneWay(), steps: []loginStep{
			{StageSecurity, StageFullFeature, true, join(names(SessionNormal), []KV{{keyAuthMethod, "CHAP"}}),
				want{keys: map[string]string{keyAuthMethod: "CHAP"}}},
			{StageSecurity, StageFullFeature, true, []KV{{keyCHAPA, "5"}}, chapAlgorithm.want},
			{StageSecurity, StageFullFeature, true, goodCHAP, want{transit: true, nsg: StageFullFeature, done: true,
				keys: map[string]string{keyMaxRecvDSL: "262144"}}},
		}},
		{name: "operational keys in the security stage", steps: []loginStep{
			{StageSecurity, StageOperational, false,
				join(names(SessionNormal), []KV{{keyAuthMethod, "None"}, {keyMaxBurstLength, "65536"}}),
				want{keys: map[string]string{keyAuthMethod: "None", keyMaxBurstLength: "65536"}}},
			{StageSecurity, StageOperational, true, nil, want{transit: true, nsg: StageOperational}},
			refused(loginStep{StageOperational, StageFullFeature, true, []KV{{keyMaxBurstLength, "65536"}}, want{}},
				StatusInitiatorError), // negotiated twice
		}},
		{name: "missing InitiatorName", steps: []loginStep{
			refused(loginStep{StageSecurity, StageOperational, true,
				[]KV{{keyTargetName, testTarget}, {keyAuthMethod, "None"}}, want{}}, StatusMissingParameter),
		}},
		{name: "missing TargetName", steps: []loginStep{
			refused(loginStep{StageSecurity, StageOperational, true,
				[]KV{{keyInitiatorName, testInitiator}, {keyAuthMethod, "None"}}, want{}}, StatusMissingParameter),
		}},
		{name: "unknown target", steps: []loginStep{
			refused(loginStep{StageOperational, StageFullFeature, true,
				[]KV{{keyInitiatorName, testInitiator}, {keyTargetName, "iqn.2003-01.org.example:nope"}}, want{}}, StatusNotFound),
		}},
		{name: "initiator denied", steps: []loginStep{
			refused(loginStep{StageOperational, StageFullFeature, true,
				[]KV{{keyInitiatorName, "iqn.1994-05.com.example:denied"}, {keyTargetName, testTarget}}, want{}}, StatusForbidden),
		}},
		{name: "unknown session type", steps: []loginStep{
			refused(loginStep{StageOperational, StageFullFeature, true,
				[]KV{{keyInitiatorName, testInitiator}, {keySessionType, "Special"}}, want{}}, StatusSessionTypeUnsupported),
		}},
		{name: "discovery without CHAP", steps: []loginStep{
			{StageOperational, StageFullFeature, true, join(names(SessionDiscovery), libiscsiOperational()),
				want{transit: true, nsg: StageFullFeature, done: true,
					keys: map[string]string{
						keyMaxBurstLength: "Irrelevant", keyInitialR2T: "Irrelevant", keyFirstBurstLength: "Irrelevant",
						keyImmediateData: "Irrelevant", keyMaxConnections: "Irrelevant", keyMaxOutstandingR2T: "Irrelevant",
						keyDataPDUInOrder: "Irrelevant", keyDataSequenceInOrder: "Irrelevant",
						keyDefaultTime2Wait: "2", keyErrorRecoveryLevel: "0", keyMaxRecvDSL: "262144",
						keyHeaderDigest: "None",
					},
					absent: []string{keyTargetPortalGroupTag, keyTargetAlias}}},
		}},
		{name: "discovery with CHAP", disc: oneWay(), steps: []loginStep{
			securityOffer(SessionDiscovery, "CHAP"), chapAlgorithm, chapAnswer(goodCHAP...),
			{StageOperational, StageFullFeature, true, []KV{{keyMaxRecvDSL, "8192"}},
				want{transit: true, nsg: StageFullFeature, done: true, keys: map[string]string{keyMaxRecvDSL: "262144"}, exact: true}},
		}},
		{name: "discovery CHAP required, None offered", disc: oneWay(), steps: []loginStep{
			refused(loginStep{StageSecurity, StageOperational, true,
				join(names(SessionDiscovery), []KV{{keyAuthMethod, "None"}}), want{}}, StatusAuthFailed),
		}},
		{name: "first request in full feature stage", steps: []loginStep{
			refused(loginStep{StageFullFeature, StageFullFeature, true, names(SessionNormal), want{}}, StatusInitiatorError),
		}},
		{name: "transit to reserved stage 2", steps: []loginStep{
			refused(loginStep{StageSecurity, 2, true, names(SessionNormal), want{}}, StatusInitiatorError),
		}},
		{name: "transit backwards", steps: []loginStep{
			refused(loginStep{StageOperational, StageOperational, true, names(SessionNormal), want{}}, StatusInitiatorError),
		}},
		{name: "back to the security stage", steps: []loginStep{
			{StageOperational, StageFullFeature, false, names(SessionNormal), want{keys: map[string]string{keyTargetPortalGroupTag: "2"}}},
			refused(loginStep{StageSecurity, StageOperational, true, []KV{{keyAuthMethod, "None"}}, want{}}, StatusInitiatorError),
		}},
		{name: "security key in the operational stage", steps: []loginStep{
			refused(loginStep{StageOperational, StageFullFeature, true,
				join(names(SessionNormal), []KV{{keyAuthMethod, "None"}}), want{}}, StatusInitiatorError),
		}},
		{name: "target-only key from the initiator", steps: []loginStep{
			refused(loginStep{StageOperational, StageFullFeature, true,
				join(names(SessionNormal), []KV{{keyTargetPortalGroupTag, "1"}}), want{}}, StatusInitiatorError),
		}},
		{name: "key offered twice", steps: []loginStep{
			{StageOperational, StageFullFeature, false, join(names(SessionNormal), []KV{{keyImmediateData, "Yes"}}),
				want{keys: map[string]string{keyImmediateData: "Yes"}}},
			refused(loginStep{StageOperational, StageFullFeature, true, []KV{{keyImmediateData, "No"}}, want{}}, StatusInitiatorError),
		}},
		{name: "unknown key offered twice", steps: []loginStep{
			{StageOperational, StageFullFeature, false, join(names(SessionNormal), []KV{{"X-com.example.k", "1"}}),
				want{keys: map[string]string{"X-com.example.k": "NotUnderstood"}}},
			refused(loginStep{StageOperational, StageFullFeature, true, []KV{{"X-com.example.k", "1"}}, want{}}, StatusInitiatorError),
		}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			tp := &testPolicy{creds: sc.creds, discoveryCreds: sc.disc}
			d := newDriver(t, tp.policy())
			for i, st := range sc.steps {
				resp, got := d.step(st.csg, st.nsg, st.transit, st.kvs...)
				checkResponse(t, i, resp, got, st.want)
				if st.want.status != StatusSuccess {
					if d.c.Err() == nil {
						t.Fatalf("step %d: refused without Err", i)
					}
					return
				}
			}
			if d.c.Err() != nil {
				t.Fatalf("Err = %v after success", d.c.Err())
			}
		})
	}
}

func checkResponse(t *testing.T, i int, resp Response, got map[string]string, w want) {
	t.Helper()
	if resp.Status != w.status {
		t.Fatalf("step %d: status %v, want %v (%v)", i, resp.Status, w.status, got)
	}
	if w.status != StatusSuccess {
		if resp.Transit || resp.Done || len(resp.Text) != 0 {
			t.Fatalf("step %d: refusal carries transit/done/text: %+v", i, resp)
		}
		return
	}
	if resp.Transit != w.transit || resp.Done != w.done || resp.Continue {
		t.Fatalf("step %d: T=%v C=%v done=%v, want T=%v done=%v (%v)", i, resp.Transit, resp.Continue, resp.Done, w.transit, w.done, got)
	}
	if w.transit && resp.NSG != w.nsg {
		t.Fatalf("step %d: NSG %d, want %d", i, resp.NSG, w.nsg)
	}
	for k, v := range w.keys {
		if got[k] != v {
			t.Errorf("step %d: %s=%q, want %q", i, k, got[k], v)
		}
	}
	for _, k := range w.absent {
		if _, ok := got[k]; ok {
			t.Errorf("step %d: unexpected %s=%q", i, k, got[k])
		}
	}
	if w.exact && !reflect.DeepEqual(got, w.keys) && !(len(got) == 0 && len(w.keys) == 0) {
		t.Errorf("step %d: response %v, want exactly %v", i, got, w.keys)
	}
}
