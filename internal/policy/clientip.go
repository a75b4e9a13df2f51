package policy

import (
	"net/http"

	"github.com/rampart-gw/rampart/internal/exchange"
	"net/netip"
	"strings"
)

// ClientIP returns the client's address as a string, without allocating:
// the client the listener's trusted_proxies resolved (the TCP peer when
// none are set), or, when trust > 0 (a policy's trust_forwarded), the
// address trust hops back in X-Forwarded-For (the proxies in front of the
// gateway each append the address they received from). The rightmost
// entries are the only ones a client cannot forge, so with trust N the
// client is the N-th entry from the right; a shorter chain yields its
// leftmost entry. ok is false when no address can be found.
func ClientIP(r *http.Request, trust int) (ip string, ok bool) {
	if trust == 0 {
		if ex := exchange.From(r.Context()); ex != nil && ex.ClientIP != "" {
			return ex.ClientIP, true
		}
	}
	if trust > 0 {
		vv := r.Header["X-Forwarded-For"]
		hop := 0
		var last string
		for i := len(vv) - 1; i >= 0; i-- {
			s := vv[i]
			for s != "" {
				j := strings.LastIndexByte(s, ',')
				part := strings.TrimSpace(s[j+1:])
				if j < 0 {
					s = ""
				} else {
					s = s[:j]
				}
				if part == "" {
					continue
				}
				hop++
				last = part
				if hop == trust {
					return trimPort(part), true
				}
			}
		}
		if last != "" {
			return trimPort(last), true
		}
	}
	return trimPort(r.RemoteAddr), r.RemoteAddr != ""
}

// ClientAddr is ClientIP parsed; the zone of an IPv6 address is dropped and
// an IPv4-mapped IPv6 address becomes IPv4.
func ClientAddr(r *http.Request, trust int) (netip.Addr, bool) {
	s, ok := ClientIP(r, trust)
	if !ok {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.WithZone("").Unmap(), true
}

// trimPort strips a port and the brackets of "[v6]:port" or "[v6]".
func trimPort(s string) string {
	if strings.HasPrefix(s, "[") {
		if i := strings.IndexByte(s, ']'); i > 0 {
			return s[1:i]
		}
		return s
	}
	// One colon: host:port. More: a bare IPv6 address.
	if i := strings.IndexByte(s, ':'); i >= 0 && strings.LastIndexByte(s, ':') == i {
		return s[:i]
	}
	return s
}
