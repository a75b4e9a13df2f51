// Package clientip resolves who the client of a request is, once per
// request, for every part of the gateway that cares (ip_filter, rate_limit
// key ip, hash_key ip, the candidate split, the access log's client_ip and
// the X-Forwarded-For sent upstream).
//
// The TCP peer is the client unless it is a trusted proxy (a listener's
// trusted_proxies). A trusted peer may name the client in X-Forwarded-For
// (or, without one, RFC 7239 Forwarded "for="): the chain is read from the
// right, skipping addresses that are themselves trusted proxies, and the
// first one that is not is the client. Entries left of it were written by
// whoever the client is, and are never believed. This is NGINX's
// real_ip_recursive and Traefik's forwardedHeaders.trustedIPs.
package clientip

import (
	"net/http"
	"net/netip"
	"strings"

	"github.com/rampart-gw/rampart/internal/config"
)

// Resolver holds a listener's trusted proxies. The zero value trusts no
// one: the peer is always the client.
type Resolver struct {
	trusted []netip.Prefix
}

// New parses trusted proxies: CIDRs ("10.0.0.0/8") or single addresses
// (config.ParsePrefix, the one address grammar).
func New(trusted []string) (*Resolver, error) {
	r := &Resolver{}
	for _, s := range trusted {
		p, err := config.ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		r.trusted = append(r.trusted, p)
	}
	return r, nil
}

// Trusts reports whether a is a trusted proxy.
func (r *Resolver) Trusts(a netip.Addr) bool {
	if r == nil {
		return false
	}
	a = a.Unmap()
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Enabled reports whether any proxy is trusted.
func (r *Resolver) Enabled() bool { return r != nil && len(r.trusted) > 0 }

// Resolve returns the client's IP as text (a substring of remoteAddr or of
// a header value: no allocation) and whether the peer is a trusted proxy,
// in which case its forwarding headers may be passed on.
func (r *Resolver) Resolve(remoteAddr string, h http.Header) (client string, peerTrusted bool) {
	peer := hostOnly(remoteAddr)
	if !r.Enabled() {
		return peer, false
	}
	pa, err := netip.ParseAddr(peer)
	if err != nil || !r.Trusts(pa) {
		return peer, false
	}
	if vv := h["X-Forwarded-For"]; len(vv) > 0 {
		return r.walk(vv, peer, xffEntries), true
	}
	if vv := h["Forwarded"]; len(vv) > 0 {
		return r.walk(vv, peer, forwardedFors), true
	}
	return peer, true
}

// walk reads addresses from the right of the header lines vv (split by
// next) and returns the first that is not a trusted proxy; if every one
// is, the leftmost; an entry that is not an address ends the walk at the
// last address read (or the peer).
func (r *Resolver) walk(vv []string, peer string, next func(s string) (rest, entry string)) string {
	client := peer
	for i := len(vv) - 1; i >= 0; i-- {
		s := vv[i]
		for s != "" {
			var e string
			s, e = next(s)
			if e == "" {
				continue
			}
			e = hostOnly(e)
			a, err := netip.ParseAddr(e)
			if err != nil {
				return client
			}
			client = e
			if !r.Trusts(a) {
				return client
			}
		}
	}
	return client
}

// xffEntries takes the rightmost comma-separated entry of s.
func xffEntries(s string) (rest, entry string) {
	j := strings.LastIndexByte(s, ',')
	entry = strings.TrimSpace(s[j+1:])
	if j < 0 {
		return "", entry
	}
	return s[:j], entry
}

// forwardedFors takes the rightmost element of a Forwarded header value
// and returns its for= node (unquoted), or "" if it has none. An element
// with a for= that is "unknown" or an obfuscated identifier ("_x") yields
// that text, which is not an address and so ends the walk.
func forwardedFors(s string) (rest, entry string) {
	j := strings.LastIndexByte(s, ',')
	elem := s[j+1:]
	if j < 0 {
		rest = ""
	} else {
		rest = s[:j]
	}
	for elem != "" {
		var pair string
		if k := strings.IndexByte(elem, ';'); k >= 0 {
			pair, elem = elem[:k], elem[k+1:]
		} else {
			pair, elem = elem, ""
		}
		pair = strings.TrimSpace(pair)
		if len(pair) > 4 && strings.EqualFold(pair[:4], "for=") {
			v := pair[4:]
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if v == "" {
				v = "unknown"
			}
			return rest, v
		}
	}
	return rest, ""
}

// hostOnly strips a port and the brackets of "[v6]:port" or "[v6]".
func hostOnly(s string) string {
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
