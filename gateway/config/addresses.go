package config

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// MaxAddresses bounds the source addresses one ACL entry may list.
const MaxAddresses = 64

// ParseAddress reads one entry of an ACL's address list: an IP address
// ("192.0.2.7", "2001:db8::7") or a CIDR ("192.0.2.0/24", "2001:db8::/48"),
// and returns the prefix of the source addresses it admits (a single
// address is a full-length prefix). An IPv4-mapped IPv6 form is read as
// the IPv4 address or network it maps, since initiators are matched by
// their unmapped address. Zones and CIDRs with host bits set are refused:
// "192.0.2.7/24" is more likely a typo than a wish for 192.0.2.0/24.
func ParseAddress(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, fmt.Errorf("empty address")
	}
	if strings.Contains(s, "%") {
		return netip.Prefix{}, fmt.Errorf("%q: an address with a zone is not allowed", s)
	}
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set (the network is %s)", s, p.Masked())
	}
	if a := p.Addr(); a.Is4In6() {
		// At least /96: a shorter one has host bits set.
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p, nil
}

// FormatAddress spells a prefix the canonical way: a single address
// without a length, a network as a CIDR.
func FormatAddress(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// ParseAddresses checks an address list (at most MaxAddresses entries, each
// ParseAddress, none listed twice in any spelling) and returns the
// prefixes sorted: IPv4 before IPv6, by address, then by length. Nil or
// empty means any source address.
func ParseAddresses(list []string) ([]netip.Prefix, error) {
	if len(list) > MaxAddresses {
		return nil, fmt.Errorf("%d addresses, at most %d are allowed", len(list), MaxAddresses)
	}
	if len(list) == 0 {
		return nil, nil
	}
	out := make([]netip.Prefix, 0, len(list))
	seen := make(map[netip.Prefix]string, len(list))
	for _, s := range list {
		p, err := ParseAddress(s)
		if err != nil {
			return nil, err
		}
		if prev, dup := seen[p]; dup {
			if prev == s {
				return nil, fmt.Errorf("%s listed twice", s)
			}
			return nil, fmt.Errorf("%s listed twice (as %s)", s, prev)
		}
		seen[p] = s
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
	})
	return out, nil
}

// CanonicalAddresses checks an address list as ParseAddresses does and
// returns it canonical: sorted, each entry as FormatAddress spells it. Nil
// or empty gives nil (any source address).
func CanonicalAddresses(list []string) ([]string, error) {
	ps, err := ParseAddresses(list)
	if err != nil || len(ps) == 0 {
		return nil, err
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = FormatAddress(p)
	}
	return out, nil
}
