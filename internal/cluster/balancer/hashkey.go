package balancer

import (
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/rampart-gw/rampart/internal/exchange"
)

// HashKey says which property of a request the hashing balancers (ring_hash,
// maglev) key on. Its zero value keys on nothing: every request then falls
// back to a weighted random pick.
type HashKey struct {
	kind keyKind
	name string // header (canonical), cookie or query parameter name
}

type keyKind uint8

const (
	keyNone keyKind = iota
	keyIP
	keyHeader
	keyCookie
	keyQuery
	keyPath
	keyParam
)

// ErrHashKey is returned for a hash_key that is not one of ip, path,
// header:NAME, cookie:NAME, query:NAME or param:NAME.
var ErrHashKey = errors.New("hash_key must be ip, path, header:NAME, cookie:NAME, query:NAME or param:NAME")

// ParseHashKey parses a hash_key setting: ip (the client address without its
// port), path, header:NAME, cookie:NAME, query:NAME or param:NAME. The empty string is
// accepted and keys on nothing. Config validation can call it to report a
// bad key up front.
func ParseHashKey(s string) (HashKey, error) {
	switch s {
	case "":
		return HashKey{}, nil
	case "ip":
		return HashKey{kind: keyIP}, nil
	case "path":
		return HashKey{kind: keyPath}, nil
	}
	prefix, name, ok := strings.Cut(s, ":")
	if !ok || name == "" {
		return HashKey{}, fmt.Errorf("parse hash_key %q: %w", s, ErrHashKey)
	}
	switch prefix {
	case "header":
		if !validToken(name) {
			return HashKey{}, fmt.Errorf("parse hash_key %q: invalid header name", s)
		}
		return HashKey{kind: keyHeader, name: textproto.CanonicalMIMEHeaderKey(name)}, nil
	case "cookie":
		if !validToken(name) {
			return HashKey{}, fmt.Errorf("parse hash_key %q: invalid cookie name", s)
		}
		return HashKey{kind: keyCookie, name: name}, nil
	case "query":
		return HashKey{kind: keyQuery, name: name}, nil
	case "param":
		return HashKey{kind: keyParam, name: name}, nil
	}
	return HashKey{}, fmt.Errorf("parse hash_key %q: %w", s, ErrHashKey)
}

// String returns the setting the key was parsed from.
func (k HashKey) String() string {
	switch k.kind {
	case keyIP:
		return "ip"
	case keyPath:
		return "path"
	case keyHeader:
		return "header:" + k.name
	case keyCookie:
		return "cookie:" + k.name
	case keyQuery:
		return "query:" + k.name
	case keyParam:
		return "param:" + k.name
	}
	return ""
}

// Value extracts the key from r. It reports false when r is nil, when the
// request lacks the property or when its value is empty. Apart from
// percent-encoded query parameters it does not allocate.
func (k HashKey) Value(r *http.Request) (string, bool) {
	if r == nil {
		return "", false
	}
	var v string
	switch k.kind {
	case keyIP:
		// The client as the listener's trusted_proxies resolve it.
		if ex := exchange.From(r.Context()); ex != nil && ex.ClientIP != "" {
			v = ex.ClientIP
		} else {
			v = hostOnly(r.RemoteAddr)
		}
	case keyPath:
		if r.URL != nil {
			v = r.URL.Path
		}
	case keyHeader:
		if vs := r.Header[k.name]; len(vs) > 0 {
			v = vs[0]
		}
	case keyCookie:
		v = cookieValue(r.Header["Cookie"], k.name)
	case keyQuery:
		if r.URL != nil {
			v = queryValue(r.URL.RawQuery, k.name)
		}
	case keyParam:
		// A path capture of the matched route (exchange.Param).
		if ex := exchange.From(r.Context()); ex != nil {
			v, _ = ex.Param(k.name)
		}
	}
	return v, v != ""
}

// hostOnly strips the port from a RemoteAddr ("1.2.3.4:5", "[::1]:5").
// Anything else is returned as it is.
func hostOnly(addr string) string {
	if strings.HasPrefix(addr, "[") {
		if i := strings.IndexByte(addr, ']'); i > 0 {
			return addr[1:i]
		}
		return addr
	}
	if i := strings.IndexByte(addr, ':'); i >= 0 && strings.LastIndexByte(addr, ':') == i {
		return addr[:i]
	}
	return addr // no port, or a bare IPv6 address
}

// cookieValue finds the cookie name in Cookie header lines (RFC 6265 §4.2.1:
// "name=value; name2=value2"; HTTP/2 may split them over several lines)
// without building the []*http.Cookie that r.Cookie would.
func cookieValue(lines []string, name string) string {
	for _, line := range lines {
		for line != "" {
			part := line
			if i := strings.IndexByte(line, ';'); i >= 0 {
				part, line = line[:i], line[i+1:]
			} else {
				line = ""
			}
			for part != "" && (part[0] == ' ' || part[0] == '\t') {
				part = part[1:]
			}
			if len(part) <= len(name) || part[len(name)] != '=' || part[:len(name)] != name {
				continue
			}
			v := part[len(name)+1:]
			for v != "" && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
				v = v[:len(v)-1]
			}
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v
		}
	}
	return ""
}

// queryValue returns the first value of parameter name in a raw query
// string. The common case, a plain name and value, is a scan without
// allocation; encoded values are decoded, and encoded names are matched in a
// second, slower pass.
func queryValue(raw, name string) string {
	for rest := raw; rest != ""; {
		part := rest
		if i := strings.IndexByte(rest, '&'); i >= 0 {
			part, rest = rest[:i], rest[i+1:]
		} else {
			rest = ""
		}
		if len(part) > len(name) && part[len(name)] == '=' && part[:len(name)] == name {
			return unescapeQuery(part[len(name)+1:])
		}
		if part == name {
			return ""
		}
	}
	if strings.IndexByte(raw, '%') < 0 && strings.IndexByte(raw, '+') < 0 {
		return ""
	}
	for rest := raw; rest != ""; {
		var part string
		part, rest, _ = strings.Cut(rest, "&")
		k, v, _ := strings.Cut(part, "=")
		if dk, err := url.QueryUnescape(k); err == nil && dk == name {
			return unescapeQuery(v)
		}
	}
	return ""
}

func unescapeQuery(v string) string {
	if strings.IndexByte(v, '%') < 0 && strings.IndexByte(v, '+') < 0 {
		return v
	}
	if dv, err := url.QueryUnescape(v); err == nil {
		return dv
	}
	return v
}

// validToken reports whether s is an RFC 9110 token, the syntax of header
// and cookie names.
func validToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return s != ""
}
