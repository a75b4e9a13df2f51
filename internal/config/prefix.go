package config

import (
	"net/netip"
	"strconv"
	"strings"
)

// ParsePrefix parses a CIDR prefix or a single address (as a /32 or /128):
// the grammar of ip_filter's allow and deny and of a listener's
// trusted_proxies.
// The prefix is masked, and IPv4-mapped IPv6 prefixes become IPv4.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, &prefixError{s}
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, &prefixError{s}
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

type prefixError struct{ s string }

func (e *prefixError) Error() string {
	return "invalid address or prefix " + strconv.Quote(e.s) + " (want e.g. 10.0.0.0/8, 192.0.2.1 or 2001:db8::/32)"
}
