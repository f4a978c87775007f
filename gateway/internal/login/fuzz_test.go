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

// fuzzRequests decodes requests: a flags byte (T, C, CSG, NSG), a length
// byte, then that many bytes of text.
func fuzzRequests(data []byte) []Request {
	var reqs []Request
	for len(data) >= 2 {
		flags, n := data[0], int(data[1])
		data = data[2:]
		if n > len(data) {
			n = len(data)
		}
		reqs = append(reqs, Request{
			Transit:  flags&0x80 != 0,
			Continue: flags&0x40 != 0,
			CSG:      (flags >> 2) & 3,
			NSG:      flags & 3,
			Text:     data[:n],
		})
		data = data[n:]
	}
	return reqs
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
	return [][]byte{none, disc, offers, chap(0x01, good), chap(0x02, mut), chap(0x05, good)}
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
