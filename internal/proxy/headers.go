package proxy

import (
	"net"
	"net/http"
	"strings"
)

// hopHeaders are the hop-by-hop headers of RFC 9110 section 7.6.1 plus the
// non-standard ones proxies commonly see. They describe one connection and
// are never forwarded.
var hopHeaders = [...]string{
	"Connection",
	"Proxy-Connection", // non-standard, sent by some old clients
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
}

// isHop reports whether k is one of hopHeaders, without hashing: a switch
// on the length and at most two comparisons.
func isHop(k string) bool {
	switch len(k) {
	case 2:
		return k == "Te"
	case 7:
		return k == "Upgrade" || k == "Trailer"
	case 10:
		return k == "Connection" || k == "Keep-Alive"
	case 16:
		return k == "Proxy-Connection"
	case 17:
		return k == "Transfer-Encoding"
	case 18:
		return k == "Proxy-Authenticate"
	case 19:
		return k == "Proxy-Authorization"
	}
	return false
}

// removeHopByHop deletes the hop-by-hop headers from h, including every
// header named in Connection (RFC 9110 section 7.6.1), in place.
func removeHopByHop(h http.Header) {
	for _, v := range h["Connection"] {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			tok = strings.TrimSpace(tok)
			if tok != "" {
				h.Del(tok)
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
}

// hasToken reports whether the comma-separated header values contain token,
// case-insensitively.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(tok), token) {
				return true
			}
		}
	}
	return false
}

// upgradeType returns the protocol a request asks to upgrade to, or "".
func upgradeType(h http.Header) string {
	if !hasToken(h["Connection"], "upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}

// clientIP returns the IP part of a RemoteAddr.
func clientIP(remoteAddr string) string {
	if host, _, err := net.SplitHostPort(remoteAddr); err == nil {
		return host
	}
	return remoteAddr
}
