package login

import (
	"encoding/hex"
	"testing"
)

// fuzzPolicy picks a policy from the first input byte.
func fuzzPolicy(sel byte) Policy {
	tp := &testPolicy{}
	switch {
	case sel&0x02 != 0:
		tp.creds = mutual()
	case sel&0x01 != 0:
		tp.creds = oneWay()
	}
	if sel&0x08 != 0 {
		tp.discoveryCreds = oneWay()
	}
	p := tp.policy()
	if sel&0x10 != 0 {
		p.Offer.FirstBurstLength = 4096
		p.Offer.ImmediateData = false
		p.Offer.HeaderDigest = true
	}
	if sel&0x04 != 0 {
		s := DefaultParams()
		s.InitiatorName, s.TargetName = testInitiator, testTarget
		p.Leading, p.Session = false, &s
	}
	return p
}

// Building blocks of structured fuzz requests: keys and values that mean
// something to the conversation, so that mutations reach deep states.
var (
	fuzzKeys = []string{
		keyInitiatorName, keyTargetName, keySessionType, keyInitiatorAlias, keyAuthMethod,
		keyCHAPA, keyCHAPI, keyCHAPC, keyCHAPN, keyCHAPR,
		keyHeaderDigest, keyDataDigest, keyMaxRecvDSL, keyTaskReporting, keySendTargets,
		keyOFMarker, keyIFMarker, keyOFMarkInt, keyTargetAlias, "X-com.example.k",
		keyMaxConnections, keyInitialR2T, keyImmediateData, keyMaxBurstLength, keyFirstBurstLength,
		keyDefaultTime2Wait, keyDefaultTime2Retain, keyMaxOutstandingR2T, keyDataPDUInOrder,
		keyDataSequenceInOrder, keyErrorRecoveryLevel,
	}
	fuzzValues = []string{
		"Yes", "No", "None", "CRC32C", "None,CRC32C", "CHAP", "CHAP,None", "Normal", "Discovery",
		testInitiator, testTarget, testUser, testMutUser, "5", "5,6,7", "56", "", "0", "1", "2", "7", "255", "256",
		"512", "4096", "8192", "65536", "262144", "16777215", "16777216", "0x2000", "0b", "0xZZ",
		"Reject", "Irrelevant", "NotUnderstood", "RFC3720",
		initiatorResponse(testSecret), initiatorResponse("wrong"), targetChallengeHex,
		"0x" + hex.EncodeToString(peerChallenge),
	}
)

// fuzzRequests decodes requests: a flags byte (T, C, structured, CSG, NSG),
// a length byte, then that many bytes. The bytes are the text itself, or in
// a structured request (flag 0x20) pairs of indexes into fuzzKeys and
// fuzzValues.
func fuzzRequests(data []byte) []Request {
	var reqs []Request
	for len(data) >= 2 {
		flags, n := data[0], int(data[1])
		data = data[2:]
		if n > len(data) {
			n = len(data)
		}
		text := data[:n]
		if flags&0x20 != 0 {
			var kvs []KV
			for i := 0; i+1 < len(text); i += 2 {
				kvs = append(kvs, KV{fuzzKeys[int(text[i])%len(fuzzKeys)], fuzzValues[int(text[i+1])%len(fuzzValues)]})
			}
			text = EncodeText(kvs)
		}
		reqs = append(reqs, Request{
			Transit:  flags&0x80 != 0,
			Continue: flags&0x40 != 0,
			CSG:      (flags >> 2) & 3,
			NSG:      flags & 3,
			Text:     text,
		})
		data = data[n:]
	}
	return reqs
}

// structured encodes a structured fuzz request from key and value indexes.
func structured(transit bool, csg, nsg uint8, pairs ...int) []byte {
	flags := 0x20 | csg<<2 | nsg
	if transit {
		flags |= 0x80
	}
	out := []byte{flags, byte(len(pairs))}
	for _, p := range pairs {
		out = append(out, byte(p))
	}
	return out
}

func encodeFuzzRequest(transit, cont bool, csg, nsg uint8, kvs ...KV) []byte {
	text := EncodeText(kvs)
	var out []byte
	for len(text) > 255 {
		// Continue pieces carry the overflow.
		out = append(out, 0x40|csg<<2|nsg, 255)
		out = append(out, text[:255]...)
		text = text[255:]
	}
	flags := csg<<2 | nsg
	if transit {
		flags |= 0x80
	}
	if cont {
		flags |= 0x40
	}
	out = append(out, flags, byte(len(text)))
	return append(out, text...)
}

func fuzzSeeds() [][]byte {
	good := []KV{{keyCHAPN, testUser}, {keyCHAPR, initiatorResponse(testSecret)}}
	mut := append(append([]KV{}, good...), KV{keyCHAPI, "7"}, KV{keyCHAPC, "0x" + hex.EncodeToString(peerChallenge)})
	chap := func(sel byte, answer []KV) []byte {
		seed := []byte{sel}
		seed = append(seed, encodeFuzzRequest(true, false, 0, 1, join(names(SessionNormal), []KV{{keyAuthMethod, "CHAP,None"}})...)...)
		seed = append(seed, encodeFuzzRequest(false, false, 0, 1, KV{keyCHAPA, "5"})...)
		seed = append(seed, encodeFuzzRequest(true, false, 0, 1, answer...)...)
		return append(seed, encodeFuzzRequest(true, false, 1, 3, libiscsiOperational()...)...)
	}
	none := append([]byte{0}, encodeFuzzRequest(true, false, 1, 3, join(names(SessionNormal), libiscsiOperational())...)...)
	disc := append([]byte{0}, encodeFuzzRequest(true, false, 1, 3, join(names(SessionDiscovery), libiscsiOperational())...)...)
	offers := append([]byte{0x10}, encodeFuzzRequest(true, false, 1, 3, names(SessionNormal)...)...)
	offers = append(offers, encodeFuzzRequest(true, false, 1, 3, KV{keyFirstBurstLength, "4096"}, KV{keyImmediateData, "No"})...)
	// The CHAP login again, from structured requests.
	idx := func(list []string, v string) int {
		for i, x := range list {
			if x == v {
				return i
			}
		}
		panic("no fuzz table entry " + v)
	}
	k := func(v string) int { return idx(fuzzKeys, v) }
	v := func(x string) int { return idx(fuzzValues, x) }
	chapStructured := []byte{0x01}
	chapStructured = append(chapStructured, structured(true, 0, 1,
		k(keyInitiatorName), v(testInitiator), k(keyTargetName), v(testTarget), k(keyAuthMethod), v("CHAP,None"))...)
	chapStructured = append(chapStructured, structured(false, 0, 1, k(keyCHAPA), v("5"))...)
	chapStructured = append(chapStructured, structured(true, 0, 1,
		k(keyCHAPN), v(testUser), k(keyCHAPR), v(initiatorResponse(testSecret)))...)
	chapStructured = append(chapStructured, structured(true, 1, 3, k(keyMaxBurstLength), v("65536"))...)
	return [][]byte{none, disc, offers, chap(0x01, good), chap(0x02, mut), chap(0x05, good), chapStructured}
}

func TestFuzzSeedsLogIn(t *testing.T) {
	for i, seed := range fuzzSeeds() {
		p := fuzzPolicy(seed[0])
		c := newConversation(p, &countingReader{next: testCHAPID})
		var last Response
		for _, req := range fuzzRequests(seed[1:]) {
			last = c.Step(req)
		}
		if !last.Done {
			t.Errorf("seed %d does not log in: %+v %v", i, last, c.Err())
		}
	}
}

func FuzzConversation(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		p := fuzzPolicy(data[0])
		c := newConversation(p, &countingReader{next: testCHAPID})
		var failed Status
		var pending []byte
		stage := uint8(0)
		for i, req := range fuzzRequests(data[1:]) {
			resp := c.Step(req)
			if failed != StatusSuccess {
				if resp.Status != failed || len(resp.Text) != 0 || resp.Transit || resp.Done {
					t.Fatalf("request %d: response after refusal %+v", i, resp)
				}
				continue
			}
			if resp.Status != StatusSuccess {
				failed = resp.Status
				if c.Err() == nil || len(resp.Text) != 0 || resp.Transit || resp.Done || resp.Continue {
					t.Fatalf("request %d: refusal %+v, err %v", i, resp, c.Err())
				}
				continue
			}
			if resp.Transit && resp.Continue {
				t.Fatalf("request %d: T and C both set", i)
			}
			if len(resp.Text) > maxLoginSegment {
				t.Fatalf("request %d: %d bytes of text in one PDU", i, len(resp.Text))
			}
			if resp.CSG < stage {
				t.Fatalf("request %d: stage went back from %d to %d", i, stage, resp.CSG)
			}
			if resp.Transit {
				if resp.NSG <= resp.CSG || (resp.NSG != StageOperational && resp.NSG != StageFullFeature) {
					t.Fatalf("request %d: transit %d -> %d", i, resp.CSG, resp.NSG)
				}
				if resp.CSG == StageSecurity && c.decision.CHAP != nil && c.chap.state != chapAuthenticated {
					t.Fatalf("request %d: left the security stage unauthenticated", i)
				}
				stage = resp.NSG
			}
			pending = append(pending, resp.Text...)
			if !resp.Continue {
				if _, err := ParseText(pending); err != nil {
					t.Fatalf("request %d: target sent malformed text: %v", i, err)
				}
				pending = nil
			}
			if resp.Done != (resp.Transit && resp.NSG == StageFullFeature) {
				t.Fatalf("request %d: Done=%v with T=%v NSG=%d", i, resp.Done, resp.Transit, resp.NSG)
			}
			if resp.Done {
				checkFinalParams(t, c.Params())
			}
		}
	})
}

func checkFinalParams(t *testing.T, p Params) {
	t.Helper()
	ok := p.FirstBurstLength <= p.MaxBurstLength &&
		p.MaxBurstLength >= minSegmentLength && p.MaxBurstLength <= maxSegmentLength &&
		p.FirstBurstLength >= minSegmentLength &&
		p.MaxRecvDataSegmentLength >= minSegmentLength && p.MaxRecvDataSegmentLength <= maxSegmentLength &&
		p.TargetMaxRecvDataSegmentLength >= minSegmentLength && p.TargetMaxRecvDataSegmentLength <= maxSegmentLength &&
		p.MaxConnections >= 1 && p.MaxOutstandingR2T >= 1 && p.ErrorRecoveryLevel == 0 &&
		p.DefaultTime2Wait <= 3600 && p.DefaultTime2Retain <= 3600 &&
		p.InitiatorName != "" && (p.SessionType == SessionDiscovery || p.TargetName != "")
	if !ok {
		t.Fatalf("final params out of range: %+v", p)
	}
}
