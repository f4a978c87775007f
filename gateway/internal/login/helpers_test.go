package login

import (
	"crypto/md5"
	"encoding/hex"
	"strings"
	"testing"
)

const (
	testInitiator = "iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test"
	testTarget    = "iqn.2003-01.org.example.gw:disk1"
	testUser      = "libiscsi-user"
	testSecret    = "libiscsi-secret"
	testMutUser   = "target-user"
	testMutSecret = "target-secret-2"
	testTPGT      = 2
)

// countingReader yields 0x30, 0x31, ... so the target's CHAP identifier is
// 0x30 and its challenge 0x31..0x40.
type countingReader struct{ next byte }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.next
		r.next++
	}
	return len(p), nil
}

const testCHAPID = 0x30

func testChallenge() []byte {
	c := make([]byte, chapChallengeLength)
	for i := range c {
		c[i] = testCHAPID + 1 + byte(i)
	}
	return c
}

// md5Hex computes a CHAP response with crypto/md5 directly, apart from the
// code under test, as lower-case hex digits.
func md5Hex(id byte, secret string, challenge []byte) string {
	buf := append([]byte{id}, secret...)
	buf = append(buf, challenge...)
	sum := md5.Sum(buf)
	return hex.EncodeToString(sum[:])
}

// initiatorResponse is the CHAP_R libiscsi sends: 0x and upper-case digits.
func initiatorResponse(secret string) string {
	return "0x" + strings.ToUpper(md5Hex(testCHAPID, secret, testChallenge()))
}

// resolveCall records what the policy was asked.
type resolveCall struct{ sessionType, initiator, target string }

type testPolicy struct {
	creds          *Credentials
	discoveryCreds *Credentials
	calls          []resolveCall
}

func (tp *testPolicy) resolve(sessionType, initiator, target string) Decision {
	tp.calls = append(tp.calls, resolveCall{sessionType, initiator, target})
	if sessionType == SessionDiscovery {
		return Decision{CHAP: tp.discoveryCreds}
	}
	if target != testTarget {
		return Decision{Status: StatusNotFound}
	}
	if initiator == "iqn.1994-05.com.example:denied" {
		return Decision{Status: StatusForbidden}
	}
	return Decision{CHAP: tp.creds, TargetAlias: "disk1"}
}

func testOffer() Params {
	o := DefaultParams()
	o.TargetMaxRecvDataSegmentLength = 262144
	o.MaxBurstLength = 1 << 20
	o.FirstBurstLength = 262144
	o.InitialR2T = false
	return o
}

func (tp *testPolicy) policy() Policy {
	return Policy{Resolve: tp.resolve, TargetPortalGroupTag: testTPGT, Offer: testOffer(), Leading: true}
}

func oneWay() *Credentials { return &Credentials{User: testUser, Secret: testSecret} }

func mutual() *Credentials {
	return &Credentials{User: testUser, Secret: testSecret, MutualUser: testMutUser, MutualSecret: testMutSecret}
}

// driver runs one conversation with a deterministic challenge.
type driver struct {
	t *testing.T
	c *Conversation
}

func newDriver(t *testing.T, p Policy) *driver {
	return &driver{t: t, c: newConversation(p, &countingReader{next: testCHAPID})}
}

func (d *driver) step(csg, nsg uint8, transit bool, kvs ...KV) (Response, map[string]string) {
	d.t.Helper()
	resp := d.c.Step(Request{Transit: transit, CSG: csg, NSG: nsg, Text: EncodeText(kvs)})
	return resp, answers(d.t, resp.Text)
}

func answers(t *testing.T, text []byte) map[string]string {
	t.Helper()
	kvs, err := ParseText(text)
	if err != nil {
		t.Fatalf("target sent unparsable text %q: %v", text, err)
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

func names(sessionType string) []KV {
	kvs := []KV{{keyInitiatorName, testInitiator}}
	if sessionType == SessionNormal {
		kvs = append(kvs, KV{keyTargetName, testTarget})
	}
	return append(kvs, KV{keySessionType, sessionType})
}

// libiscsiOperational is what libiscsi offers in the operational stage.
func libiscsiOperational() []KV {
	return []KV{
		{"HeaderDigest", "None,CRC32C"},
		{"DataDigest", "None"},
		{"InitialR2T", "No"},
		{"ImmediateData", "Yes"},
		{"MaxBurstLength", "262144"},
		{"FirstBurstLength", "262144"},
		{"DefaultTime2Wait", "2"},
		{"DefaultTime2Retain", "0"},
		{"MaxOutstandingR2T", "1"},
		{"ErrorRecoveryLevel", "0"},
		{"IFMarker", "No"},
		{"OFMarker", "No"},
		{"MaxConnections", "1"},
		{"MaxRecvDataSegmentLength", "262144"},
		{"DataPDUInOrder", "Yes"},
		{"DataSequenceInOrder", "Yes"},
	}
}

// libiscsiAnswers is what the target answers to libiscsiOperational under testOffer.
var libiscsiAnswers = map[string]string{
	"HeaderDigest":             "None",
	"DataDigest":               "None",
	"InitialR2T":               "No",
	"ImmediateData":            "Yes",
	"MaxBurstLength":           "262144",
	"FirstBurstLength":         "262144",
	"DefaultTime2Wait":         "2",
	"DefaultTime2Retain":       "0",
	"MaxOutstandingR2T":        "1",
	"ErrorRecoveryLevel":       "0",
	"IFMarker":                 "No",
	"OFMarker":                 "No",
	"MaxConnections":           "1",
	"MaxRecvDataSegmentLength": "262144",
	"DataPDUInOrder":           "Yes",
	"DataSequenceInOrder":      "Yes",
}

func join(parts ...[]KV) []KV {
	var out []KV
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
