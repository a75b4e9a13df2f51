// Package http1 is Rampart's one HTTP/1.1 grammar (RFC 9110, RFC 9112):
// the small allocation-free parsers that the listener's fast server
// (internal/listener/h1server), its framing guard (internal/listener/guard)
// and the upstream client (internal/cluster/h1) share, so the three agree
// on where a head ends, what a Content-Length is, how a field value is
// trimmed, how a token list reads and how a chunk-size line parses.
//
// The functions work on string or []byte alike and allocate nothing.
package http1

import (
	"bytes"
	"strings"
)

// Text is what the parsers read: a string or a byte slice.
type Text interface{ ~string | ~[]byte }

// tchar marks the bytes of an RFC 9110 token (§5.6.2).
var tchar = func() (t [256]bool) {
	for _, c := range "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// IsTchar reports whether c may appear in a token (RFC 9110 §5.6.2).
func IsTchar(c byte) bool { return tchar[c] }

// ValidToken reports whether s is a non-empty token (RFC 9110 §5.6.2): a
// method or a field name.
func ValidToken[T Text](s T) bool {
	for i := 0; i < len(s); i++ {
		if !tchar[s[i]] {
			return false
		}
	}
	return len(s) > 0
}

// TrimOWS removes the optional whitespace (SP and HTAB) around a field
// value or list element (RFC 9110 §5.5, §5.6.3), as strings.Trim(s, " \t")
// without its cutset set-up.
func TrimOWS[T Text](s T) T {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// HeadEnd returns the length of the head at the start of b, through the
// empty line that ends it, or -1 when b does not hold all of it yet. Lines
// end in CRLF or LF: RFC 9112 §2.2 lets a recipient accept a bare LF, as
// net/http does, so the empty line is LF LF or LF CR LF (a caller that
// refuses bare LFs does so when it parses the head). A line at the very
// start of b never ends the head.
//
// *from keeps where to resume the scan when more bytes arrive: start with
// 0 and pass the same variable again with b grown (same prefix).
func HeadEnd(b []byte, from *int) int {
	i := *from
	for {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			*from = i
			return -1
		}
		if i > 0 && (j == 0 || (j == 1 && b[i] == '\r')) {
			return i + j + 1
		}
		i += j + 1
	}
}

// ParseLength parses a Content-Length value (RFC 9110 §8.6,
// 1*DIGIT) by net/http's rule, strconv.ParseUint(v, 10, 63): decimal digits
// only (no sign, space, list or empty value), any number of them (leading
// zeros included), and a value that fits an int64.
func ParseLength[T Text](v T) (int64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	const cutoff = (1<<63 - 1) / 10
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n > cutoff {
			return 0, false
		}
		n = n*10 + int64(c-'0')
		if n < 0 {
			return 0, false
		}
	}
	return n, true
}

// HasToken reports whether the comma-separated list v (RFC 9110 §5.6.1)
// holds token (non-empty), compared as strings.EqualFold does after
// trimming OWS.
func HasToken(v, token string) bool {
	for v != "" {
		var el string
		el, v, _ = strings.Cut(v, ",")
		if strings.EqualFold(TrimOWS(el), token) {
			return true
		}
	}
	return false
}

// HasTokenIn is HasToken over the values of one field that may appear on
// several lines (the lines form one list, RFC 9110 §5.3).
func HasTokenIn(values []string, token string) bool {
	for _, v := range values {
		if HasToken(v, token) {
			return true
		}
	}
	return false
}
