package ratelimit

import (
	"crypto/sha256"
	"net/http"
	"net/textproto"
	"sort"

	"github.com/rampart-gw/rampart/internal/exchange"
	"github.com/rampart-gw/rampart/internal/policy"
)

// maxKeyLen bounds the stored key: longer keys (large header values) are
// replaced by their SHA-256, so a client cannot make the limiter hold big
// strings, and distinct long keys still get distinct buckets.
const maxKeyLen = 128

// AppendKey appends the rate-limit key of r to b. Parts are separated by a
// NUL byte, which no header value, IP, consumer or route name contains. A
// consumer part of an unauthenticated request, and a claim part of a
// request without that verified claim, fall back to the client IP (marked
// so that it cannot equal a consumer name or claim value).
func AppendKey(b []byte, parts []Part, trust int, r *http.Request, ex *exchange.Exchange) []byte {
	for i, p := range parts {
		if i > 0 {
			b = append(b, 0)
		}
		switch p.Kind {
		case partIP:
			ip, _ := policy.ClientIP(r, trust)
			b = append(b, ip...)
		case partConsumer:
			if ex != nil && ex.Consumer != "" {
				b = append(b, ex.Consumer...)
			} else {
				ip, _ := policy.ClientIP(r, trust)
				b = append(b, 1)
				b = append(b, ip...)
			}
		case partRoute:
			if ex != nil {
				b = append(b, ex.Route...)
			}
		case partHeader:
			if vv := r.Header[p.Name]; len(vv) > 0 {
				b = append(b, vv[0]...)
			}
		case partClaim:
			var v any
			if ex != nil {
				v = ex.Claims[p.Name]
			}
			if s, ok := policy.ClaimText(v); ok {
				b = append(b, s...)
			} else {
				// No verified claim: counted per client IP, marked so
				// that it cannot equal a claim value.
				ip, _ := policy.ClientIP(r, trust)
				b = append(b, 3)
				b = append(b, ip...)
			}
		}
	}
	if len(b) > maxKeyLen {
		sum := sha256.Sum256(b)
		b = append(b[:0], 2)
		b = append(b, sum[:]...)
	}
	return b
}

func canonical(name string) string { return textproto.CanonicalMIMEHeaderKey(name) }

func sortedRoles[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
