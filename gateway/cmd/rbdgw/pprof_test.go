package main

import (
	"strings"
	"testing"
)

func TestPprofLoopbackOnly(t *testing.T) {
	tests := []struct {
		addr string
		err  string // "" when it listens
	}{
		{"127.0.0.1:0", ""},
		{"localhost:0", ""},
		{":6060", "loopback only"},
		{"0.0.0.0:6060", "loopback only"},
		{"[::]:6060", "loopback only"},
		{"192.0.2.1:6060", "loopback only"},
		{"gateway.example:6060", "loopback only"},
		{"127.0.0.1", "missing port"},
	}
	for _, tc := range tests {
		l, err := listenPprof(tc.addr)
		if tc.err == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.addr, err)
				continue
			}
			l.Close()
			continue
		}
		if err == nil {
			l.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v, want an error about %q", tc.addr, err, tc.err)
		}
	}
}
