package h1

import (
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/rampart-gw/rampart/internal/http1"
)

// ErrMalformed marks a response that does not parse as HTTP/1.1 (or
// violates a framing rule); the proxy answers it as a bad upstream response.
var ErrMalformed = errors.New("malformed response")

// errHeadTooLarge is returned for a response head over MaxHeadBytes or
// MaxHeaders.
var errHeadTooLarge = fmt.Errorf("%w: head too large", ErrMalformed)

func malformed(what string, v string) error {
	if len(v) > 64 {
		v = v[:64] + "..."
	}
	return fmt.Errorf("%w: %s %q", ErrMalformed, what, v)
}

// cutLine splits s after its first line, dropping the line's CRLF or LF.
func cutLine(s string) (line, rest string) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return s, ""
	}
	line, rest = s[:i], s[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

// parseHead parses a response head (as cut by http1.HeadEnd) into resp's status
// and Header. Header keys are canonical; values are substrings of head, so
// the whole head costs one string.
func parseHead(head string, resp *http.Response, maxHeaders int, mem *headMem) error {
	line, rest := cutLine(head)
	proto, status, ok := strings.Cut(line, " ")
	if !ok {
		return malformed("status line", line)
	}
	switch proto {
	case "HTTP/1.1":
		resp.ProtoMinor = 1
	case "HTTP/1.0":
		resp.ProtoMinor = 0
	default:
		return malformed("protocol version", proto)
	}
	resp.Proto, resp.ProtoMajor = proto, 1
	status = strings.TrimLeft(status, " ")
	if len(status) < 3 || (len(status) > 3 && status[3] != ' ') {
		return malformed("status code", status)
	}
	code := 0
	for i := range 3 {
		c := status[i]
		if c < '0' || c > '9' {
			return malformed("status code", status)
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 {
		return malformed("status code", status)
	}
	for i := 3; i < len(status); i++ {
		if c := status[i]; c < ' ' && c != '\t' || c == 0x7f {
			return malformed("reason phrase", status)
		}
	}
	resp.StatusCode, resp.Status = code, status
	n := strings.Count(rest, "\n") - 1
	if n > maxHeaders {
		return errHeadTooLarge
	}
	h := resp.Header // a released response's map, cleared
	if h == nil {
		h = make(http.Header, max(n, 0))
		resp.Header = h
	}
	return parseFields(rest, h, n, mem)
}

// headMem is one response head's memory: the head's bytes (when it fits)
// and the backing array of its header values, in one allocation per
// response instead of two. The head's string and the values point into
// it; it is never reused, so they stay valid in the client's header map.
type headMem struct {
	vals [12]string
	buf  [256]byte
}

// parseFields parses header field lines up to the empty line that ends
// them into h. n is a hint: the number of lines.
func parseFields(s string, h http.Header, n int, mem *headMem) error {
	// One backing array for the first value of every key.
	var vals []string
	if mem != nil && n <= len(mem.vals) {
		vals = mem.vals[:max(n, 0)]
	} else {
		vals = make([]string, max(n, 0))
	}
	for {
		line, rest := cutLine(s)
		s = rest
		if line == "" {
			return nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			// Obsolete line folding (RFC 9112 section 5.2).
			return malformed("folded header line", line)
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 {
			return malformed("header line", line)
		}
		k := line[:colon]
		valid, canonical := checkKey(k)
		if !valid {
			return malformed("header line", line)
		}
		v := http1.TrimOWS(line[colon+1:])
		if !validValue(v) {
			return malformed("header value for", k)
		}
		if !canonical {
			k = textproto.CanonicalMIMEHeaderKey(k)
		}
		if vv, ok := h[k]; ok {
			h[k] = append(vv, v)
		} else if len(vals) > 0 {
			vals[0] = v
			h[k] = vals[:1:1]
			vals = vals[1:]
		} else {
			h[k] = []string{v}
		}
	}
}

// checkKey reports whether s is a token and whether it is in canonical
// form (textproto.CanonicalMIMEHeaderKey(s) == s), in one pass.
func checkKey(s string) (valid, canonical bool) {
	canonical, upper := true, true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !http1.IsTchar(c) {
			return false, false
		}
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			canonical = false
		}
		upper = c == '-'
	}
	return s != "", canonical
}

// validValue reports whether s may be a field value: no control bytes but
// HTAB (so no CR, LF or NUL).
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
