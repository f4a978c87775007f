package login

import (
	"fmt"
	"strings"
	"testing"
)

func TestContinuedRequest(t *testing.T) {
	text := EncodeText(join(names(SessionNormal), libiscsiOperational()))
	tests := []struct {
		name   string
		pieces []int // piece sizes; the rest goes in the last request
	}{
		{"split inside a value", []int{20}},
		{"split inside a key and at a NUL", []int{3, 60, 1}},
		{"one byte pieces", []int{1, 1, 1, 1, 1, 1, 1, 1}},
		{"empty pieces", []int{0, 0, 17}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp := &testPolicy{}
			c := newConversation(tp.policy(), &countingReader{})
			rest := text
			for i, n := range tt.pieces {
				resp := c.Step(Request{Continue: true, CSG: StageOperational, NSG: StageFullFeature, Text: rest[:n]})
				rest = rest[n:]
				if resp.Status != StatusSuccess || resp.Transit || resp.Continue || len(resp.Text) != 0 {
					t.Fatalf("piece %d answered %+v", i, resp)
				}
				if len(tp.calls) != 0 {
					t.Fatalf("piece %d negotiated before the last piece", i)
				}
			}
			resp := c.Step(Request{Transit: true, CSG: StageOperational, NSG: StageFullFeature, Text: rest})
			if !resp.Done {
				t.Fatalf("last piece: %+v %v", resp, c.Err())
			}
			got := answers(t, resp.Text)
			for k, v := range libiscsiAnswers {
				if got[k] != v {
					t.Errorf("%s=%q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestContinuedRequestRules(t *testing.T) {
	tp := &testPolicy{}
	c := newConversation(tp.policy(), &countingReader{})
	if resp := c.Step(Request{Transit: true, Continue: true, CSG: StageOperational, NSG: StageFullFeature}); resp.Status != StatusInitiatorError {
		t.Fatalf("T and C together: %+v", resp)
	}

	c = newConversation(tp.policy(), &countingReader{})
	big := make([]byte, 8192)
	var resp Response
	for range maxCollectedText/len(big) + 1 {
		resp = c.Step(Request{Continue: true, CSG: StageOperational, NSG: StageFullFeature, Text: big})
	}
	if resp.Status != StatusInitiatorError {
		t.Fatalf("unbounded continued request: %+v", resp)
	}

	c = newConversation(tp.policy(), &countingReader{})
	c.Step(Request{Continue: true, CSG: StageOperational, NSG: StageFullFeature, Text: []byte("Initiator")})
	if resp := c.Step(Request{CSG: StageSecurity, NSG: StageOperational}); resp.Status != StatusInitiatorError {
		t.Fatalf("stage changed between pieces: %+v", resp)
	}
}

func TestSplitResponse(t *testing.T) {
	// Enough unknown keys that the NotUnderstood answers exceed one PDU.
	var kvs []KV
	for i := range 400 {
		kvs = append(kvs, KV{fmt.Sprintf("X-com.example.vendor.key%04d", i), "1"})
	}
	tp := &testPolicy{}
	c := newConversation(tp.policy(), &countingReader{})
	resp := c.Step(Request{Transit: true, CSG: StageOperational, NSG: StageFullFeature,
		Text: EncodeText(join(names(SessionNormal), kvs))})
	var all []byte
	pieces := 0
	for resp.Continue {
		pieces++
		if resp.Transit || resp.Done || len(resp.Text) != maxLoginSegment || resp.Status != StatusSuccess {
			t.Fatalf("piece %d: T=%v done=%v len=%d status=%v", pieces, resp.Transit, resp.Done, len(resp.Text), resp.Status)
		}
		// A caller appending padding must not corrupt the next piece.
		_ = append(resp.Text, 0, 0, 0)
		all = append(all, resp.Text...)
		resp = c.Step(Request{Transit: true, CSG: StageOperational, NSG: StageFullFeature})
	}
	if pieces < 2 {
		t.Fatalf("response not split: %d pieces", pieces)
	}
	if !resp.Transit || !resp.Done || len(resp.Text) > maxLoginSegment {
		t.Fatalf("last piece: %+v", resp)
	}
	all = append(all, resp.Text...)
	got := answers(t, all)
	for _, kv := range kvs {
		if got[kv.Key] != valueNotUnderstood {
			t.Fatalf("%s=%q", kv.Key, got[kv.Key])
		}
	}
	if got[keyTargetPortalGroupTag] != "2" || !strings.HasPrefix(string(all), keyTargetPortalGroupTag+"=") {
		t.Fatalf("TargetPortalGroupTag missing from the first piece")
	}
}

func TestSplitResponseNeedsEmptyRequests(t *testing.T) {
	var kvs []KV
	for i := range 400 {
		kvs = append(kvs, KV{fmt.Sprintf("X-com.example.vendor.key%04d", i), "1"})
	}
	tp := &testPolicy{}
	c := newConversation(tp.policy(), &countingReader{})
	resp := c.Step(Request{Transit: true, CSG: StageOperational, NSG: StageFullFeature,
		Text: EncodeText(join(names(SessionNormal), kvs))})
	if !resp.Continue {
		t.Fatal("response not split")
	}
	resp = c.Step(Request{CSG: StageOperational, NSG: StageFullFeature, Text: []byte("MaxBurstLength=512\x00")})
	if resp.Status != StatusInitiatorError {
		t.Fatalf("text accepted while the response continues: %+v", resp)
	}
}

func TestStepLimit(t *testing.T) {
	tp := &testPolicy{}
	c := newConversation(tp.policy(), &countingReader{})
	var resp Response
	for range maxSteps + 1 {
		resp = c.Step(Request{Continue: true, CSG: StageSecurity, NSG: StageOperational})
	}
	if resp.Status != StatusInitiatorError {
		t.Fatalf("endless login: %+v", resp)
	}
}
