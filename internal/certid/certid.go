// Package certid describes a verified client certificate (mTLS) the way
// the gateway names it everywhere: to policies (client_cert), to the
// upstream (the X-Client-Cert-* headers) and in docs.
package certid

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"strings"
)

// The headers the gateway sends upstream for a request that came with a
// verified client certificate. Client-sent copies are always removed
// (from a trusted proxy they are kept when the connection itself has no
// client certificate).
const (
	HeaderSubject = "X-Client-Cert-Subject" // RFC 4514 distinguished name
	HeaderSHA256  = "X-Client-Cert-Sha256"  // hex SHA-256 of the DER certificate (canonical form of X-Client-Cert-SHA256)
	HeaderSANs    = "X-Client-Cert-Sans"    // the SANs, comma-separated, each typed: DNS:, URI:, email:, IP:
)

// Headers lists the three header names, canonical.
var Headers = [...]string{HeaderSubject, HeaderSHA256, HeaderSANs}

// Leaf returns the verified client certificate of a TLS connection, or
// nil. Only verified certificates reach the handler: with client_auth
// request or require, the handshake refuses one that does not verify.
func Leaf(cs *tls.ConnectionState) *x509.Certificate {
	if cs == nil || len(cs.PeerCertificates) == 0 || len(cs.VerifiedChains) == 0 {
		return nil
	}
	return cs.PeerCertificates[0]
}

// SHA256 is the certificate's fingerprint, lower-case hex.
func SHA256(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// SANs lists the certificate's subject alternative names, typed: "DNS:a.b",
// "URI:spiffe://x/y", "email:a@b", "IP:10.0.0.1".
func SANs(c *x509.Certificate) []string {
	out := make([]string, 0, len(c.DNSNames)+len(c.URIs)+len(c.EmailAddresses)+len(c.IPAddresses))
	for _, n := range c.DNSNames {
		out = append(out, "DNS:"+n)
	}
	for _, u := range c.URIs {
		out = append(out, "URI:"+u.String())
	}
	for _, e := range c.EmailAddresses {
		out = append(out, "email:"+e)
	}
	for _, ip := range c.IPAddresses {
		out = append(out, "IP:"+ip.String())
	}
	return out
}

// Set writes the identity headers of c into h (replacing any).
func Set(h map[string][]string, c *x509.Certificate) {
	h[HeaderSubject] = []string{headerSafe(c.Subject.String())}
	h[HeaderSHA256] = []string{SHA256(c)}
	sans := SANs(c)
	for i, s := range sans {
		sans[i] = strings.ReplaceAll(headerSafe(s), ",", "%2C")
	}
	if len(sans) > 0 {
		h[HeaderSANs] = []string{strings.Join(sans, ",")}
	} else {
		delete(h, HeaderSANs)
	}
}

// Strip removes every identity header from h.
func Strip(h map[string][]string) {
	for _, k := range Headers {
		delete(h, k)
	}
}

// headerSafe replaces bytes a header value cannot carry (controls, DEL,
// non-ASCII stay: certificates are UTF-8) with '?'.
func headerSafe(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] < 0x20 && b[j] != '\t' || b[j] == 0x7f {
					b[j] = '?'
				}
			}
			return string(b)
		}
	}
	return s
}

// Match reports whether a typed SAN ("DNS:a.example.com") matches pattern,
// a typed SAN in which '*' stands for any run of characters ("DNS:*.example.com",
// "URI:spiffe://prod/*"). The type is compared case-insensitively.
func Match(pattern, san string) bool {
	pt, pv, ok1 := strings.Cut(pattern, ":")
	st, sv, ok2 := strings.Cut(san, ":")
	if !ok1 || !ok2 || !strings.EqualFold(pt, st) {
		return false
	}
	if strings.EqualFold(pt, "DNS") {
		pv, sv = strings.ToLower(pv), strings.ToLower(sv)
	}
	return glob(pv, sv)
}

// glob matches s against p, where '*' matches any run (possibly empty).
func glob(p, s string) bool {
	for {
		star := strings.IndexByte(p, '*')
		if star < 0 {
			return p == s
		}
		if !strings.HasPrefix(s, p[:star]) {
			return false
		}
		s, p = s[star:], p[star+1:]
		if p == "" {
			return true
		}
		for i := 0; i <= len(s); i++ {
			if glob(p, s[i:]) {
				return true
			}
		}
		return false
	}
}
