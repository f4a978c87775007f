package login

import (
	"strings"
	"testing"
)

func TestResolveNumber(t *testing.T) {
	tests := []struct {
		fn                  resultFunc
		offered, ours, want uint64
	}{
		{fnMin, 262144, 65536, 65536},
		{fnMin, 8192, 65536, 8192},
		{fnMin, 1, 1, 1},
		{fnMax, 2, 5, 5},
		{fnMax, 10, 5, 10},
		{fnMax, 0, 0, 0},
	}
	for _, tt := range tests {
		if got := resolveNumber(tt.fn, tt.offered, tt.ours); got != tt.want {
			t.Errorf("%v(%d, %d) = %d, want %d", tt.fn, tt.offered, tt.ours, got, tt.want)
		}
	}
}

func TestResolveBool(t *testing.T) {
	for _, offered := range []bool{false, true} {
		for _, ours := range []bool{false, true} {
			if got := resolveBool(fnAnd, offered, ours); got != (offered && ours) {
				t.Errorf("AND(%v, %v) = %v", offered, ours, got)
			}
			if got := resolveBool(fnOr, offered, ours); got != (offered || ours) {
				t.Errorf("OR(%v, %v) = %v", offered, ours, got)
			}
		}
	}
}

func TestSessionKeyFunctions(t *testing.T) {
	// RFC 7143 §13 result functions.
	want := map[string]resultFunc{
		keyMaxConnections:      fnMin,
		keyInitialR2T:          fnOr,
		keyImmediateData:       fnAnd,
		keyMaxBurstLength:      fnMin,
		keyFirstBurstLength:    fnMin,
		keyDefaultTime2Wait:    fnMax,
		keyDefaultTime2Retain:  fnMin,
		keyMaxOutstandingR2T:   fnMin,
		keyDataPDUInOrder:      fnOr,
		keyDataSequenceInOrder: fnOr,
		keyErrorRecoveryLevel:  fnMin,
	}
	if len(sessionKeys) != len(want) {
		t.Fatalf("%d session keys, want %d", len(sessionKeys), len(want))
	}
	for name, fn := range want {
		sk, ok := sessionKeyIndex[name]
		if !ok || sk.fn != fn {
			t.Errorf("%s: function %v, want %v", name, sk.fn, fn)
		}
	}
}

func TestSelectDigest(t *testing.T) {
	tests := []struct {
		offered string
		prefer  bool
		want    string
		ok      bool
	}{
		{"None", false, "None", true},
		{"None", true, "None", true},
		{"CRC32C", false, "CRC32C", true},
		{"None,CRC32C", false, "None", true},
		{"None,CRC32C", true, "CRC32C", true},
		{"CRC32C,None", false, "CRC32C", true},
		{"CRC32C,None", true, "CRC32C", true},
		{"MD5,CRC32C", false, "CRC32C", true},
		{"MD5,None,CRC32C", false, "None", true},
		{"crc32c", true, "", false},
		{"MD5", false, "", false},
		{"", false, "", false},
	}
	for _, tt := range tests {
		got, ok := selectDigest(splitList(tt.offered), tt.prefer)
		if got != tt.want || ok != tt.ok {
			t.Errorf("selectDigest(%q, %v) = %q, %v; want %q, %v", tt.offered, tt.prefer, got, ok, tt.want, tt.ok)
		}
	}
}

func TestSelectAuthMethod(t *testing.T) {
	tests := []struct {
		offered string
		chap    bool
		want    string
		ok      bool
	}{
		{"CHAP,None", true, "CHAP", true},
		{"None,CHAP", true, "CHAP", true},
		{"CHAP,None", false, "None", true},
		{"None", false, "None", true},
		{"None", true, "", false},
		{"CHAP", false, "", false},
		{"KRB5,SRP", false, "", false},
		{"", false, "", false},
	}
	for _, tt := range tests {
		got, ok := selectAuthMethod(splitList(tt.offered), tt.chap)
		if got != tt.want || ok != tt.ok {
			t.Errorf("selectAuthMethod(%q, chap=%v) = %q, %v", tt.offered, tt.chap, got, ok)
		}
	}
}

func TestSelectCHAPAlgorithm(t *testing.T) {
	tests := []struct {
		offered string
		ok      bool
	}{
		{"5", true},
		{"5,6,7,8", true},
		{"7,6,5", true},
		{"56", false}, // starts with 5 but is another number
		{"05", false},
		{"", false},
		{"7", false},
		{" 5", false},
	}
	for _, tt := range tests {
		got, ok := selectCHAPAlgorithm(tt.offered)
		if ok != tt.ok || (ok && got != "5") {
			t.Errorf("selectCHAPAlgorithm(%q) = %q, %v", tt.offered, got, ok)
		}
	}
}

func TestSelectTaskReporting(t *testing.T) {
	if got, ok := selectTaskReporting(strings.Split("FastAbort,RFC3720", ",")); !ok || got != "RFC3720" {
		t.Errorf("got %q, %v", got, ok)
	}
	if _, ok := selectTaskReporting([]string{"ResponseFence"}); ok {
		t.Error("ResponseFence accepted")
	}
}

func TestNormalizeOffer(t *testing.T) {
	o := normalizeOffer(Params{MaxBurstLength: 100, FirstBurstLength: 1 << 20, ErrorRecoveryLevel: 2,
		TargetMaxRecvDataSegmentLength: 1 << 30, MaxConnections: 0, DefaultTime2Wait: 5000})
	d := DefaultParams()
	if o.MaxBurstLength != d.MaxBurstLength || o.FirstBurstLength != d.MaxBurstLength {
		t.Errorf("bursts = %d/%d", o.MaxBurstLength, o.FirstBurstLength)
	}
	if o.ErrorRecoveryLevel != 0 || o.MaxConnections != 1 || o.DefaultTime2Wait != 2 {
		t.Errorf("ERL %d, MaxConnections %d, Time2Wait %d", o.ErrorRecoveryLevel, o.MaxConnections, o.DefaultTime2Wait)
	}
	if o.TargetMaxRecvDataSegmentLength != 8192 {
		t.Errorf("TargetMaxRecvDataSegmentLength = %d", o.TargetMaxRecvDataSegmentLength)
	}
}

func TestNegotiationOrder(t *testing.T) {
	in := []KV{{"A", ""}, {keyFirstBurstLength, ""}, {"B", ""}, {keyMaxBurstLength, ""}, {"C", ""}}
	got := negotiationOrder(in)
	var keys []string
	for _, kv := range got {
		keys = append(keys, kv.Key)
	}
	want := "A,MaxBurstLength,FirstBurstLength,B,C"
	if strings.Join(keys, ",") != want {
		t.Fatalf("order %v, want %s", keys, want)
	}
}
