// Package pathnorm normalises request paths before routing and policies, so
// that a path has one spelling: /public/../admin, /public/%2e%2e/admin and
// //admin are all routed, checked and forwarded as /admin.
//
// The rules (docs/security.md): percent-encodings of unreserved characters
// are decoded (RFC 3986 §6.2.2.2) and other encodings upper-cased (§6.2.2.1);
// dot segments are removed (§5.2.4, never above the root); runs of slashes
// are merged (Envoy merge_slashes). An encoded slash (%2F) is kept encoded
// and forwarded as sent (Envoy's default), but a path that would gain dot
// segments or empty segments once %2F is decoded (/public%2F..%2Fadmin) is
// refused: the router sees the decoded path, so both readings must agree.
// An encoded backslash (%5C), an encoded NUL (%00), a raw backslash, a raw
// byte outside the URI character set and an invalid percent-encoding are
// refused, since a backend could decode them into a different path than
// the one routed on.
package pathnorm

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// Errors returned by Normalize.
var (
	ErrInvalid      = errors.New("malformed path")
	ErrEncodedSlash = errors.New("encoded slash hides a dot segment, or encoded backslash")
	ErrNUL          = errors.New("encoded NUL in path")
	ErrBackslash    = errors.New("backslash in path")
)

const (
	unreserved = 1 << iota
	allowed    // raw in a path: unreserved, sub-delims, ':', '@', '/', '%'
)

var class [256]uint8

func init() {
	for _, c := range "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~" {
		class[c] |= unreserved | allowed
	}
	for _, c := range "!$&'()*+,;=:@/%" {
		class[c] |= allowed
	}
}

// Normalize returns the normal form of an escaped absolute path p (as sent,
// starting with '/'). It returns p itself, without allocating, when p is
// already normal.
func Normalize(p string) (string, error) {
	if len(p) == 0 || p[0] != '/' {
		return "", ErrInvalid
	}
	clean := true
	for i := 0; i < len(p); i++ {
		c := p[i]
		if class[c]&allowed == 0 {
			if c == '\\' {
				return "", ErrBackslash
			}
			return "", ErrInvalid
		}
		if c == '%' {
			clean = false
		} else if c == '/' && i+1 < len(p) && (p[i+1] == '/' || p[i+1] == '.' && (i+2 == len(p) || p[i+2] == '/' || p[i+2] == '.' && (i+3 == len(p) || p[i+3] == '/'))) {
			clean = false
		}
	}
	if clean {
		return p, nil
	}
	// Decode what may be decoded, so that dot segments are seen.
	var b strings.Builder
	b.Grow(len(p))
	slash := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(p) {
			return "", ErrInvalid
		}
		hi, ok1 := unhex(p[i+1])
		lo, ok2 := unhex(p[i+2])
		if !ok1 || !ok2 {
			return "", ErrInvalid
		}
		v := hi<<4 | lo
		switch {
		case v == 0:
			return "", ErrNUL
		case v == '\\':
			return "", ErrEncodedSlash
		case v == '/':
			slash = true
			b.WriteString("%2F")
		case class[v]&unreserved != 0:
			b.WriteByte(v)
		default:
			const hex = "0123456789ABCDEF"
			b.WriteByte('%')
			b.WriteByte(hex[v>>4])
			b.WriteByte(hex[v&0xf])
		}
		i += 2
	}
	out := removeDots(b.String())
	if slash {
		d := strings.ReplaceAll(out, "%2F", "/")
		if removeDots(d) != d {
			return "", ErrEncodedSlash
		}
	}
	return out, nil
}

// removeDots merges slashes and removes dot segments of a decoded path that
// starts with '/'. A trailing slash, or a final dot segment, leaves a
// trailing slash (RFC 3986 §5.2.4).
func removeDots(s string) string {
	segs := strings.Split(s[1:], "/")
	out := make([]string, 0, len(segs))
	trailing := false
	for i, seg := range segs {
		last := i == len(segs)-1
		switch seg {
		case "", ".":
			trailing = last
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			trailing = last
		default:
			out = append(out, seg)
			trailing = false
		}
	}
	r := "/" + strings.Join(out, "/")
	if trailing && len(out) > 0 {
		r += "/"
	}
	return r
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Request normalises r's path in place before routing. It leaves the
// asterisk-form of OPTIONS alone and returns an error for a path that must
// be refused with 400.
func Request(r *http.Request) error {
	u := r.URL
	if u.Opaque != "" {
		return ErrInvalid
	}
	if u.Path == "*" && r.Method == http.MethodOptions {
		return nil
	}
	esc := u.EscapedPath()
	if esc == "" {
		esc = "/"
	}
	n, err := Normalize(esc)
	if err != nil {
		return err
	}
	if n == esc && u.Path != "" {
		return nil
	}
	p, err := url.PathUnescape(n)
	if err != nil {
		return ErrInvalid
	}
	u.Path = p
	u.RawPath = ""
	if u.EscapedPath() != n {
		u.RawPath = n
	}
	return nil
}
