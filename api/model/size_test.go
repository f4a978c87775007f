package model

import (
	"encoding/json"
	"testing"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "90G", want: 90 << 30},
		{in: "512M", want: 512 << 20},
		{in: "1T", want: 1 << 40},
		{in: "1.5G", want: 3 << 29},
		{in: "4096", want: 4096},
		{in: "4K", want: 4096},
		{in: "4k", want: 4096},
		{in: "10GiB", want: 10 << 30},
		{in: "10GB", want: 10 << 30},
		{in: "100B", want: 100},
		{in: " 2 G ", want: 2 << 30},
		{in: "", bad: true},
		{in: "G", bad: true},
		{in: "10X", bad: true},
		{in: "10GX", bad: true},
		{in: "-1G", bad: true},
		{in: "0.3", bad: true},
		{in: "99999999P", bad: true},
		{in: "1..2G", bad: true},
	}
	for _, tc := range tests {
		got, err := ParseSize(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseSize(%q) = %d, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{90 << 30: "90G", 1536 << 20: "1536M", 4096: "4K", 1000: "1000", 0: "0"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
		if back, err := ParseSize(FormatSize(n)); err != nil || back != n {
			t.Errorf("ParseSize(FormatSize(%d)) = %d, %v", n, back, err)
		}
	}
}

func TestSizeJSON(t *testing.T) {
	var v struct{ S *Size }
	for in, want := range map[string]int64{`{"S": 1024}`: 1024, `{"S": "2M"}`: 2 << 20} {
		if err := json.Unmarshal([]byte(in), &v); err != nil || int64(*v.S) != want {
			t.Errorf("%s: %v %v", in, v.S, err)
		}
	}
	for _, in := range []string{`{"S": -5}`, `{"S": "5Q"}`, `{"S": true}`, `{"S": 1.5}`} {
		if err := json.Unmarshal([]byte(in), &v); err == nil {
			t.Errorf("%s: no error", in)
		}
	}
}
