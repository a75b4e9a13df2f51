package h1server

// Request building: the *http.Request the fast server makes from a
// validated head.

import (
	"net/http"
	"net/url"
	"strings"
	"unsafe"

	"github.com/rampart-gw/rampart/internal/http1"
	"github.com/rampart-gw/rampart/internal/listener/httpcore"
)

// newRequest builds the request for the validated head b.
func (c *srvConn) newRequest(b []byte, length int64) (*reqState, bool) {
	// Count the fields to size the header map and its values.
	nf := -1
	for _, x := range b {
		if x == '\n' {
			nf++
		}
	}
	nf-- // the empty line
	rs := new(reqState)
	var s string
	if len(b) <= len(rs.head) {
		n := copy(rs.head[:], b)
		s = unsafe.String(&rs.head[0], n)
	} else {
		s = string(b)
	}
	r := &rs.req
	sp1 := strings.IndexByte(s, ' ')
	r.Method = s[:sp1]
	rest := s[sp1+1:]
	sp2 := strings.IndexByte(rest, ' ')
	target := rest[:sp2]
	if target[0] != '/' {
		return nil, false // OPTIONS *
	}
	if !httpcore.ParseTarget(&rs.url, target) {
		return nil, false
	}
	r.URL = &rs.url
	r.RequestURI = target
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	r.RemoteAddr = c.remote
	r.TLS = c.tlsState
	r.ContentLength = length
	r.Body = http.NoBody
	var vals []string
	if nf <= len(rs.vals) {
		vals = rs.vals[:0:nf]
	} else {
		vals = make([]string, 0, nf)
	}
	hdr := make(http.Header, nf)
	pos := strings.IndexByte(s, '\n') + 1
	var kb [64]byte
	for {
		j := strings.IndexByte(s[pos:], '\n') + pos
		line := s[pos : j-1]
		pos = j + 1
		if len(line) == 0 {
			break
		}
		colon := strings.IndexByte(line, ':')
		name, value := line[:colon], http1.TrimOWS(line[colon+1:])
		if strings.IndexByte(name, '_') >= 0 {
			continue // dropped, as guard.Handler does (NGINX's underscores_in_headers off)
		}
		key := canonicalKey(name, &kb)
		switch key {
		case "Host":
			r.Host = value
			continue
		case "Expect":
			return nil, false // 100-continue: net/http answers it
		case "Connection":
			if http1.HasToken(value, "close") {
				r.Close = true
			}
		}
		if vv, ok := hdr[key]; ok {
			hdr[key] = append(vv, value)
			continue
		}
		i := len(vals)
		vals = append(vals, value)
		hdr[key] = vals[i : i+1 : i+1]
	}
	r.Header = hdr
	return rs, true
}

// reqState is one request's allocation: the request, its URL, its body
// reader and the backing array of its header values.
type reqState struct {
	req  http.Request
	url  url.URL
	body body
	ctx  reqContext
	vals [16]string
	// head holds the request head when it fits, so that the strings of
	// the request (method, target, names, values) need no allocation of
	// their own; reqState is never reused, so they stay valid.
	head [headRoom]byte
}

// headRoom is the head size kept in reqState (most API clients' heads are
// well below it; browsers' often are not, and get a string of their own).
const headRoom = 256

// commonKeys interns the canonical form of frequent field names.
var commonKeys = func() map[string]string {
	m := make(map[string]string)
	for _, k := range httpcore.CommonKeys {
		m[k] = k
	}
	return m
}()

// canonicalKey is textproto.CanonicalMIMEHeaderKey for a valid token,
// allocating only for uncommon names that are not already canonical.
func canonicalKey(name string, kb *[64]byte) string {
	upper := true
	canonical := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			canonical = false
			break
		}
		upper = c == '-'
	}
	if canonical {
		return name
	}
	if len(name) > len(kb) {
		return http.CanonicalHeaderKey(name)
	}
	k := kb[:len(name)]
	upper = true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		k[i] = c
		upper = c == '-'
	}
	if s, ok := commonKeys[string(k)]; ok {
		return s
	}
	return string(k)
}
