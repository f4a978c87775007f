package api

import "testing"

func TestListenTransportRule(t *testing.T) {
	tests := []struct {
		addr, cert, key string
		ok              bool
	}{
		{"127.0.0.1:0", "", "", true},
		{"[::1]:0", "", "", true},
		{"localhost:0", "", "", true},
		{"0.0.0.0:0", "", "", false},
		{"192.0.2.1:0", "", "", false},
		{"127.0.0.1:0", "cert.pem", "", false},
		{"nonsense", "", "", false},
	}
	for _, tc := range tests {
		ln, err := Listen(ListenOptions{Addr: tc.addr, CertFile: tc.cert, KeyFile: tc.key})
		if (err == nil) != tc.ok {
			t.Errorf("Listen(%q, %q, %q) = %v, want ok=%v", tc.addr, tc.cert, tc.key, err, tc.ok)
		}
		if ln != nil {
			ln.Close()
		}
	}
}
