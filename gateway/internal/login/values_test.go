package login

import (
	"bytes"
	"testing"
)

func TestParseNumber(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0", 0, true},
		{"8192", 8192, true},
		{"18446744073709551615", 1<<64 - 1, true},
		{"18446744073709551616", 0, false},
		{"0x2000", 8192, true},
		{"0X2000", 8192, true},
		{"0x200", 512, true}, // odd digit count: leading zero implied
		{"0b AAA=", 0, false},
		{"0bIAA=", 8192, true},
		{"0x0000000000000000ff", 255, true}, // leading zero bytes do not count
		{"0x010000000000000000", 0, false},  // 65 bits
		{"", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{" 1", 0, false},
		{"1.5", 0, false},
		{"Yes", 0, false},
		{"0x", 0, false},
		{"0xZZ", 0, false},
	}
	for _, tt := range tests {
		got, err := parseNumber(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseNumber(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestParseRange(t *testing.T) {
	if _, err := parseRange("511", minSegmentLength, maxSegmentLength); err == nil {
		t.Error("511 accepted as a segment length")
	}
	if _, err := parseRange("16777216", minSegmentLength, maxSegmentLength); err == nil {
		t.Error("2^24 accepted as a segment length")
	}
	if n, err := parseRange("16777215", minSegmentLength, maxSegmentLength); err != nil || n != maxSegmentLength {
		t.Errorf("2^24-1 = %d, %v", n, err)
	}
}

func TestParseBool(t *testing.T) {
	for in, want := range map[string]bool{"Yes": true, "No": false} {
		if got, err := parseBool(in); err != nil || got != want {
			t.Errorf("parseBool(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"yes", "NO", "", "1", "true", "Yes "} {
		if _, err := parseBool(in); err == nil {
			t.Errorf("parseBool(%q) accepted", in)
		}
	}
}

func TestDecodeBinary(t *testing.T) {
	tests := []struct {
		in   string
		want []byte
		ok   bool
	}{
		{"0x00ff10", []byte{0, 0xff, 0x10}, true},
		{"0XABcd", []byte{0xab, 0xcd}, true},
		{"0xabc", []byte{0x0a, 0xbc}, true},
		{"0bAAEC", []byte{0, 1, 2}, true},
		{"0BAAEC", []byte{0, 1, 2}, true},
		{"0bAAE=", []byte{0, 1}, true},
		{"0bAAE", []byte{0, 1}, true}, // unpadded base64
		{"0bA===", nil, false},
		{"0b", nil, false},
		{"0x", nil, false},
		{"0xg0", nil, false},
		{"abcd", nil, false},
		{"0c1234", nil, false},
		{"0b!!!!", nil, false},
	}
	for _, tt := range tests {
		got, err := decodeBinary(tt.in)
		if (err == nil) != tt.ok || !bytes.Equal(got, tt.want) {
			t.Errorf("decodeBinary(%q) = %x, %v; want %x, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	if got := encodeHex([]byte{0xde, 0xad, 0x01}); got != "0xdead01" {
		t.Errorf("encodeHex = %q", got)
	}
}
