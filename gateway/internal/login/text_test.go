package login

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestParseText(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []KV
		err  error
	}{
		{name: "empty", in: "", want: nil},
		{name: "only padding", in: "\x00\x00\x00", want: nil},
		{name: "one pair", in: "A=b\x00", want: []KV{{"A", "b"}}},
		{name: "missing trailing NUL", in: "A=b\x00C=d", want: []KV{{"A", "b"}, {"C", "d"}}},
		{name: "NUL padding", in: "A=b\x00\x00\x00\x00", want: []KV{{"A", "b"}}},
		{name: "keeps order", in: "Z=1\x00A=2\x00M=3\x00", want: []KV{{"Z", "1"}, {"A", "2"}, {"M", "3"}}},
		{name: "empty value", in: "CHAP_A=\x00", want: []KV{{"CHAP_A", ""}}},
		{name: "value with equals", in: "X-a=b=c\x00", want: []KV{{"X-a", "b=c"}}},
		{name: "extension key chars", in: "X#org.ex_a+b@c=1\x00", want: []KV{{"X#org.ex_a+b@c", "1"}}},
		{name: "empty pair in the middle", in: "A=b\x00\x00C=d\x00", err: ErrTextSyntax},
		{name: "no equals", in: "AuthMethod\x00", err: ErrTextSyntax},
		{name: "empty key", in: "=x\x00", err: ErrTextSyntax},
		{name: "space in key", in: "Auth Method=None\x00", err: ErrTextSyntax},
		{name: "key too long", in: strings.Repeat("K", 64) + "=1\x00", err: ErrTextTooLong},
		{name: "key at limit", in: strings.Repeat("K", 63) + "=1\x00", want: []KV{{strings.Repeat("K", 63), "1"}}},
		{name: "value too long", in: "A=" + strings.Repeat("v", 8193) + "\x00", err: ErrTextTooLong},
		{name: "value at limit", in: "A=" + strings.Repeat("v", 8192) + "\x00", want: []KV{{"A", strings.Repeat("v", 8192)}}},
		{name: "duplicate key", in: "A=1\x00B=2\x00A=1\x00", err: ErrTextDuplicate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseText([]byte(tt.in))
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("ParseText error = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseText: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseText = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseTextPairLimit(t *testing.T) {
	var b bytes.Buffer
	for i := range MaxPairs {
		fmt.Fprintf(&b, "X-k%d=1\x00", i)
	}
	if _, err := ParseText(b.Bytes()); err != nil {
		t.Fatalf("%d pairs: %v", MaxPairs, err)
	}
	b.WriteString("X-last=1\x00")
	if _, err := ParseText(b.Bytes()); !errors.Is(err, ErrTextTooMany) {
		t.Fatalf("%d pairs: error = %v, want %v", MaxPairs+1, err, ErrTextTooMany)
	}
}

func TestParseTextErrorHidesValue(t *testing.T) {
	_, err := ParseText([]byte("CHAP_R=" + strings.Repeat("s", 9000) + "\x00"))
	if err == nil || strings.Contains(err.Error(), "sss") {
		t.Fatalf("error %v must exist and not quote the value", err)
	}
}

func TestEncodeText(t *testing.T) {
	kvs := []KV{{"HeaderDigest", "None"}, {"MaxRecvDataSegmentLength", "262144"}, {"TargetAlias", ""}}
	got := EncodeText(kvs)
	want := "HeaderDigest=None\x00MaxRecvDataSegmentLength=262144\x00TargetAlias=\x00"
	if string(got) != want {
		t.Fatalf("EncodeText = %q, want %q", got, want)
	}
	back, err := ParseText(got)
	if err != nil || !reflect.DeepEqual(back, kvs) {
		t.Fatalf("round trip = %q, %v", back, err)
	}
	if len(EncodeText(nil)) != 0 {
		t.Fatal("EncodeText(nil) not empty")
	}
}

func FuzzParseText(f *testing.F) {
	f.Add([]byte("InitiatorName=iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test\x00SessionType=Normal\x00"))
	f.Add([]byte("A=b\x00\x00\x00"))
	f.Add([]byte("A=b\x00C"))
	f.Add([]byte("=\x00"))
	f.Add([]byte("CHAP_R=0bAAAA\x00CHAP_R=1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		kvs, err := ParseText(data)
		if err != nil {
			return
		}
		if len(kvs) > MaxPairs {
			t.Fatalf("%d pairs accepted", len(kvs))
		}
		seen := map[string]bool{}
		for _, kv := range kvs {
			if kv.Key == "" || len(kv.Key) > MaxKeyLength || len(kv.Value) > MaxValueLength {
				t.Fatalf("pair out of limits: key %q, value of %d bytes", kv.Key, len(kv.Value))
			}
			if strings.ContainsAny(kv.Key, "=\x00") || strings.Contains(kv.Value, "\x00") {
				t.Fatalf("delimiter inside pair %q", kv)
			}
			if seen[kv.Key] {
				t.Fatalf("duplicate key %q accepted", kv.Key)
			}
			seen[kv.Key] = true
		}
		again, err := ParseText(EncodeText(kvs))
		if err != nil {
			t.Fatalf("re-parse of encoded pairs: %v", err)
		}
		if len(kvs) > 0 && !reflect.DeepEqual(again, kvs) {
			t.Fatalf("round trip changed pairs: %q -> %q", kvs, again)
		}
	})
}
