package guard

import (
	"bytes"

	"github.com/rampart-gw/rampart/internal/http1"
)

// Character classes (RFC 9110 §5.6.2, RFC 3986 §2-3).
const (
	cTchar = 1 << iota // token character
	cPath              // allowed raw in an origin-form path
	cQuery             // allowed raw in a query (path set, '?' and a few bytes common clients send raw)
	cHost              // allowed in a Host value / authority
	cVchar             // field-value byte: VCHAR, obs-text
	cHex
)

var class [256]uint8

func init() {
	set := func(chars string, c uint8) {
		for i := 0; i < len(chars); i++ {
			class[chars[i]] |= c
		}
	}
	const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	for c := range 256 {
		if http1.IsTchar(byte(c)) {
			class[c] |= cTchar
		}
		if http1.IsHex(byte(c)) {
			class[c] |= cHex
		}
	}
	const unreserved = alnum + "-._~"
	const subDelims = "!$&'()*+,;="
	set(unreserved+subDelims+":@/%", cPath|cQuery)
	// RFC 3986 allows '/' and '?' in a query; '{', '}', '|', '^', '`',
	// '\\', '[' and ']' are not allowed there but are sent raw by common
	// clients (PHP arrays, JSON in queries) and accepted by NGINX, so they
	// pass in the query only — never in the path, which is routed on.
	set("?{}|^`\\[]", cQuery)
	set(unreserved+subDelims+"%:[]", cHost)
	for c := 0x21; c <= 0x7e; c++ {
		class[c] |= cVchar
	}
	for c := 0x80; c <= 0xff; c++ {
		class[c] |= cVchar // obs-text (RFC 9110 §5.5)
	}
}

func is(c byte, k uint8) bool { return class[c]&k != 0 }

// Head is what the guard learns from a valid request head.
type Head struct {
	Chunked  bool
	Length   int64 // Content-Length; 0 when absent
	Upgrade  bool  // an Upgrade field is present: the connection may switch protocols
	H2       bool  // the HTTP/2 prior-knowledge preface
	HTTP10   bool
	Absolute bool // the target is in absolute form
}

// equalFold compares ASCII b with lower-case s case-insensitively.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// Limits are the bounds a head is checked against: Config's, with the
// defaults applied (Config.Limits).
type Limits struct {
	MaxURI     int
	MaxHeaders int
	MaxBody    int64 // declared Content-Length above this -> 413; <= 0: none
	MaxHead    int   // the request line plus fields, terminators excluded
}

// Check validates one request head b, as a Conn does (see parseHead), and
// reports false for a head the guard refuses.
func (l *Limits) Check(b []byte, first bool) (Head, bool) {
	h, why := parseHead(b, first, l)
	return h, why == rNone
}

// LineFits reports whether the request line at the start of b, an
// incomplete head, can still be within MaxURI (a method, two spaces and the
// version besides the target).
func (l *Limits) LineFits(b []byte) bool {
	const slack = 64
	lim := l.MaxURI + slack
	if len(b) <= lim {
		return true
	}
	for _, x := range b[:lim] {
		if x == '\n' {
			return true
		}
	}
	return false
}

// parseHead validates one request head b: the request line through the empty
// line that ends the fields, terminators included. first is true for the
// first request on a connection (the only place the HTTP/2 preface may be).
// It allocates nothing.
func parseHead(b []byte, first bool, lim *Limits) (h Head, why reason) {
	i := bytes.IndexByte(b, '\n')
	if i <= 0 || b[i-1] != '\r' {
		return h, rBareLF
	}
	line := b[:i-1]
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return h, rRequestLine
	}
	method := line[:sp]
	for _, c := range method {
		if !is(c, cTchar) {
			return h, rMethod
		}
	}
	rest := line[sp+1:]
	sp = bytes.IndexByte(rest, ' ')
	if sp < 0 {
		if len(rest) > lim.MaxURI {
			return h, rURITooLong
		}
		return h, rRequestLine
	}
	target, version := rest[:sp], rest[sp+1:]
	if len(target) > lim.MaxURI {
		return h, rURITooLong
	}
	if len(target) == 0 {
		return h, rRequestLine
	}
	// HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 §2.3).
	if len(version) != 8 || string(version[:5]) != "HTTP/" || version[6] != '.' ||
		version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9' {
		return h, rVersion
	}
	switch string(version[5:]) {
	case "1.1":
	case "1.0":
		h.HTTP10 = true
	case "2.0":
		if first && string(method) == "PRI" && string(target) == "*" && len(b) == i+3 {
			h.H2 = true
			return h, rNone
		}
		if string(method) == "PRI" {
			return h, rPRI
		}
		return h, rVersionUnsupported
	default:
		return h, rVersionUnsupported
	}
	switch string(method) {
	case "CONNECT":
		return h, rConnect
	case "TRACE":
		return h, rTrace
	case "PRI":
		return h, rPRI
	case rejectMethod:
		return h, rReserved
	}
	if why := checkTarget(target, method, &h); why != rNone {
		return h, why
	}

	var (
		hosts, lengths, fields int
		te                     bool
		chunkedSeen, teAfter   bool
		teUnknown              bool
	)
	pos := i + 1
	for {
		j := bytes.IndexByte(b[pos:], '\n')
		if j < 0 {
			return h, rBareLF // cannot happen: the caller found the end
		}
		j += pos
		if j == pos || b[j-1] != '\r' {
			return h, rBareLF
		}
		line := b[pos : j-1]
		pos = j + 1
		if len(line) == 0 {
			break
		}
		fields++
		if fields > lim.MaxHeaders {
			return h, rTooManyHeaders
		}
		if line[0] == ' ' || line[0] == '\t' {
			return h, rObsFold // RFC 9112 §5.2: reject
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return h, rFieldName
		}
		name := line[:colon]
		for _, c := range name {
			if !is(c, cTchar) {
				if c == ' ' || c == '\t' {
					return h, rSpaceBeforeColon // RFC 9112 §5.1: MUST reject
				}
				return h, rFieldName
			}
		}
		value := http1.TrimOWS(line[colon+1:])
		for _, c := range value {
			if !is(c, cVchar) && c != ' ' && c != '\t' {
				return h, rFieldValue // CR, LF, NUL and other controls (RFC 9110 §5.5)
			}
		}
		switch len(name) {
		case 4:
			if equalFold(name, "host") {
				hosts++
				if hosts > 1 {
					return h, rManyHosts
				}
				if !validHost(value) {
					return h, rHost
				}
			}
		case 6:
			if equalFold(name, "expect") && !equalFold(value, "100-continue") {
				return h, rExpect
			}
		case 7:
			if equalFold(name, "upgrade") {
				h.Upgrade = true
			}
		case 14:
			if equalFold(name, "content-length") {
				lengths++
				if lengths > 1 {
					return h, rManyContentLengths
				}
				n, ok := http1.ParseLength(value)
				if !ok {
					return h, rContentLength
				}
				h.Length = n
			}
		case 17:
			if equalFold(name, "transfer-encoding") {
				te = true
				// A comma-separated list of codings, possibly over several
				// lines (RFC 9112 §6.1). Empty elements, parameters and
				// anything after chunked are refused.
				if len(value) == 0 {
					return h, rTE
				}
				for len(value) > 0 {
					k := bytes.IndexByte(value, ',')
					var el []byte
					if k < 0 {
						el, value = http1.TrimOWS(value), nil
					} else {
						el, value = http1.TrimOWS(value[:k]), value[k+1:]
						if len(http1.TrimOWS(value)) == 0 {
							return h, rTE // trailing comma
						}
					}
					if len(el) == 0 {
						return h, rTE
					}
					for _, c := range el {
						if !is(c, cTchar) {
							return h, rTE
						}
					}
					if chunkedSeen {
						teAfter = true
					}
					if equalFold(el, "chunked") {
						if chunkedSeen {
							return h, rTE // chunked twice
						}
						chunkedSeen = true
					} else {
						teUnknown = true
					}
				}
			}
		}
	}
	if !h.HTTP10 && hosts == 0 {
		return h, rNoHost // RFC 9112 §3.2; HTTP/1.0 does not require Host
	}
	if te {
		switch {
		case h.HTTP10:
			return h, rTEOnHTTP10 // RFC 9112 §6.1: faulty framing
		case lengths > 0:
			return h, rCLAndTE // RFC 9112 §6.1: MAY reject; smuggling vector
		case teAfter:
			return h, rTE // chunked must be final (RFC 9112 §6.3)
		case teUnknown:
			return h, rTEUnknown // RFC 9112 §6.1: 501
		}
		h.Chunked = true
		h.Length = 0
	}
	if lim.MaxBody > 0 && h.Length > lim.MaxBody {
		return h, rBodyTooLarge
	}
	return h, rNone
}

// checkTarget validates the request-target (RFC 9112 §3.2).
func checkTarget(t, method []byte, h *Head) reason {
	switch {
	case t[0] == '/':
		return checkOrigin(t)
	case len(t) == 1 && t[0] == '*':
		if string(method) != "OPTIONS" {
			return rTarget
		}
		return rNone
	}
	var rest []byte
	switch {
	case len(t) > 7 && equalFold(t[:7], "http://"):
		rest = t[7:]
	case len(t) > 8 && equalFold(t[:8], "https://"):
		rest = t[8:]
	default:
		return rTarget
	}
	// absolute-form: the authority wins over Host (RFC 9112 §3.2.2), as
	// net/http already does; userinfo is refused (RFC 9110 §4.2.4).
	h.Absolute = true
	end := bytes.IndexAny(rest, "/?#")
	auth := rest
	if end >= 0 {
		auth = rest[:end]
		rest = rest[end:]
	} else {
		rest = nil
	}
	// A percent sign in the authority is refused: net/http would fail to
	// parse an invalid escape there (after the guard let the head through),
	// and no gateway client needs pct-encoded host names or IPv6 zones.
	if len(auth) == 0 || !validHost(auth) || bytes.IndexByte(auth, '%') >= 0 {
		return rAbsoluteForm
	}
	if len(rest) == 0 {
		return rNone
	}
	if rest[0] == '#' {
		return rFragment
	}
	if rest[0] == '?' {
		return checkQuery(rest[1:])
	}
	return checkOrigin(rest)
}

func checkOrigin(t []byte) reason { return checkChars(t, cPath) }

func checkQuery(t []byte) reason { return checkChars(t, cQuery) }

// checkChars checks a path (k = cPath, which hands over to the query at the
// first '?') or a query (k = cQuery): allowed bytes, valid %XX escapes, no
// fragment.
func checkChars(t []byte, k uint8) reason {
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c == '?' && k == cPath {
			return checkChars(t[i+1:], cQuery)
		}
		if !is(c, k) {
			if c == '#' {
				return rFragment
			}
			return rTarget
		}
		if c == '%' && (i+2 >= len(t) || !is(t[i+1], cHex) || !is(t[i+2], cHex)) {
			return rTarget
		}
	}
	return rNone
}

// validHost accepts uri-host [":" port] (RFC 3986 §3.2.2), bytes only.
func validHost(v []byte) bool {
	if len(v) == 0 || v[0] == ':' {
		return false
	}
	for _, c := range v {
		if !is(c, cHost) {
			return false
		}
	}
	if v[0] == '[' {
		k := bytes.IndexByte(v, ']')
		if k < 0 {
			return false
		}
		rest := v[k+1:]
		if len(rest) > 0 && rest[0] != ':' {
			return false
		}
		return validPort(rest)
	}
	if bytes.IndexAny(v, "[]") >= 0 {
		return false
	}
	k := bytes.IndexByte(v, ':')
	if k < 0 {
		return true
	}
	return validPort(v[k:])
}

func validPort(p []byte) bool {
	if len(p) == 0 {
		return true
	}
	p = p[1:] // the colon
	if len(p) > 5 {
		return false
	}
	for _, c := range p {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
