package cluster

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestValidateHostAddresses: a host's source addresses are checked and
// stored canonical by the one validation every write goes through.
func TestValidateHostAddresses(t *testing.T) {
	const iqn, ini = "iqn.2003-01.org.example:t1", "iqn.1991-05.com.microsoft:h"
	many := make([]string, 65)
	for i := range many {
		many[i] = fmt.Sprintf("10.0.%d.0/24", i)
	}
	tests := []struct {
		name  string
		in    []string
		want  []string // canonical, when valid
		error string   // part of the error, when not
	}{
		{name: "none", in: nil, want: nil},
		{name: "empty list is any", in: []string{}, want: nil},
		{name: "ipv4 address", in: []string{"192.0.2.7"}, want: []string{"192.0.2.7"}},
		{name: "full-length prefix is an address", in: []string{"192.0.2.7/32"}, want: []string{"192.0.2.7"}},
		{name: "ipv4 network", in: []string{"10.0.0.0/8"}, want: []string{"10.0.0.0/8"}},
		{name: "ipv6 address", in: []string{"2001:DB8:0:0::7"}, want: []string{"2001:db8::7"}},
		{name: "ipv6 network", in: []string{"2001:db8::/48"}, want: []string{"2001:db8::/48"}},
		{name: "ipv4-mapped address", in: []string{"::ffff:192.0.2.7"}, want: []string{"192.0.2.7"}},
		{name: "ipv4-mapped network", in: []string{"::ffff:10.0.0.0/104"}, want: []string{"10.0.0.0/8"}},
		{name: "any ipv4", in: []string{"0.0.0.0/0"}, want: []string{"0.0.0.0/0"}},
		{name: "sorted, ipv4 first", in: []string{"2001:db8::1", "192.0.2.0/24", "10.0.0.1", "10.0.0.0/8"},
			want: []string{"10.0.0.0/8", "10.0.0.1", "192.0.2.0/24", "2001:db8::1"}},
		{name: "64 entries", in: many[:64], want: many[:64]},
		{name: "65 entries", in: many, error: "at most 64"},
		{name: "empty entry", in: []string{""}, error: "empty address"},
		{name: "host name", in: []string{"host1.example.com"}, error: `"host1.example.com" is not an IP address or CIDR`},
		{name: "bad cidr", in: []string{"10.0.0.0/33"}, error: `"10.0.0.0/33" is not an IP address or CIDR`},
		{name: "host bits set", in: []string{"10.0.0.5/24"}, error: "host bits set (the network is 10.0.0.0/24)"},
		{name: "port", in: []string{"10.0.0.5:3260"}, error: "not an IP address or CIDR"},
		{name: "zone", in: []string{"fe80::1%eth0"}, error: "zone"},
		{name: "short mapped network", in: []string{"::ffff:0:0/64"}, error: "host bits set (the network is ::/64)"},
		{name: "duplicate", in: []string{"10.0.0.1", "10.0.0.1"}, error: "10.0.0.1 listed twice"},
		{name: "duplicate in another spelling", in: []string{"10.0.0.1", "10.0.0.1/32"}, error: "10.0.0.1/32 listed twice (as 10.0.0.1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Host{Target: iqn, Initiator: ini, LUNs: []uint64{}, Addresses: slices.Clone(tt.in)}
			err := validateHost(&h)
			if tt.error != "" {
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.error) ||
					!strings.Contains(err.Error(), "host "+ini+" addresses") {
					t.Fatalf("validateHost = %v, want ErrInvalid naming the host and saying %q", err, tt.error)
				}
				return
			}
			if err != nil {
				t.Fatalf("validateHost = %v", err)
			}
			if !slices.Equal(h.Addresses, tt.want) {
				t.Fatalf("addresses %q, want %q", h.Addresses, tt.want)
			}
		})
	}
}
