package shell

import (
	"reflect"
	"testing"
)

func TestSplitKeys(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"\x15cd /disks\r", []string{"\x15", "cd /disks", "\r"}},
		{"ls\x17\x01X\x05", []string{"ls", "\x17", "\x01", "X", "\x05"}},
		{"\x1b[A\x1b[B\x1b[1;5C\x1bOD", []string{"\x1b[A", "\x1b[B", "\x1b[1;5C", "\x1bOD"}},
		{"\t\t\x1b[Z\x7f\x7f", []string{"\t", "\t", "\x1b[Z", "\x7f", "\x7f"}},
		// Escape sequences go-prompt has no key for are dropped.
		{"pwd\x1b[200~\r", []string{"pwd", "\r"}},
		{"a\x1b[?1;2c", []string{"a"}},
		{"\x1b", []string{"\x1b"}},
		{"\x1bb", []string{"\x1b", "b"}},
		{"déjà vu\n", []string{"déjà vu", "\n"}},
		{"", nil},
	} {
		var got []string
		for _, k := range splitKeys([]byte(tc.in)) {
			got = append(got, string(k))
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitKeys(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestFitSuggestions(t *testing.T) {
	for _, tc := range []struct{ n, rows, cols, width, want int }{
		{30, 40, 120, 10, 30}, // go-prompt scrolls through ten
		{3, 40, 120, 10, 3},
		{30, 8, 120, 10, 7},
		{30, 8, 20, 50, 5}, // the line takes three rows
		{3, 1, 120, 10, 0},
		{0, 8, 120, 10, 0},
		{5, 0, 0, 10, 5}, // size unknown
	} {
		if got := fitSuggestions(tc.n, 10, tc.rows, tc.cols, tc.width); got != tc.want {
			t.Errorf("fitSuggestions(%d, 10, %d, %d, %d) = %d, want %d", tc.n, tc.rows, tc.cols, tc.width, got, tc.want)
		}
	}
}
