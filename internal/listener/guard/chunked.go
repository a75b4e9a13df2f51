package guard

import (
	"bytes"

	"github.com/rampart-gw/rampart/internal/http1"
)

// chunker follows a chunked request body as it streams (RFC 9112 §7.1)
// without copying it: only chunk-size lines and trailer fields are looked
// at; data bytes are counted.
type chunker struct {
	st     uint8
	digits int
	left   int64  // data bytes left in the current chunk
	line   []byte // the chunk extension or trailer line being read
	seen   int    // trailer bytes so far
	// maxTrailer bounds the trailer section (bytes); maxLine one
	// chunk-size line's extensions.
	maxTrailer int
}

const (
	csSize = iota
	csExt
	csSizeLF
	csData
	csDataCR
	csDataLF
	csTrailer
	csTrailerLine
	csTrailerLF
	csEndLF
)

func (k *chunker) reset() {
	k.st, k.digits, k.left, k.seen = csSize, 0, 0, 0
	k.line = k.line[:0]
}

// feed consumes b. It returns how many bytes belong to the body, whether the
// body ended there (the rest of b starts the next request), and a reason
// other than rNone when the body is malformed.
func (k *chunker) feed(b []byte) (n int, done bool, why reason) {
	i := 0
	for i < len(b) {
		c := b[i]
		switch k.st {
		case csSize:
			if is(c, cHex) {
				k.digits++
				if k.digits > 16 || k.left > (1<<59)-1 {
					return i, false, rChunked // beyond int64
				}
				k.left = k.left<<4 | int64(http1.Unhex(c))
				i++
				continue
			}
			if k.digits == 0 {
				return i, false, rChunked
			}
			switch c {
			case '\r':
				k.st = csSizeLF
			case ';', ' ', '\t':
				k.st = csExt
				k.line = append(k.line[:0], c)
			default:
				return i, false, rChunked
			}
			i++
		case csExt:
			if c == '\r' {
				if !validExt(k.line) || !wsOnlyIfLed(k.line) {
					return i, false, rChunked
				}
				k.st = csSizeLF
			} else {
				if k.digits+len(k.line) >= http1.MaxChunkLine {
					return i, false, rChunked
				}
				k.line = append(k.line, c)
			}
			i++
		case csSizeLF:
			if c != '\n' {
				return i, false, rChunked
			}
			i++
			k.digits = 0
			if k.left == 0 {
				k.st = csTrailer
			} else {
				k.st = csData
			}
		case csData:
			m := int64(len(b) - i)
			if m > k.left {
				m = k.left
			}
			i += int(m)
			k.left -= m
			if k.left == 0 {
				k.st = csDataCR
			}
		case csDataCR:
			if c != '\r' {
				return i, false, rChunked
			}
			k.st = csDataLF
			i++
		case csDataLF:
			if c != '\n' {
				return i, false, rChunked
			}
			k.st = csSize
			i++
		case csTrailer:
			if c == '\r' {
				k.st = csEndLF
				i++
			} else {
				k.st = csTrailerLine
				k.line = k.line[:0]
			}
		case csTrailerLine:
			if c == '\r' {
				k.st = csTrailerLF
			} else {
				k.seen++
				if k.seen > k.maxTrailer {
					return i, false, rTrailer
				}
				k.line = append(k.line, c)
			}
			i++
		case csTrailerLF:
			if c != '\n' {
				return i, false, rChunked
			}
			if why := checkTrailer(k.line); why != rNone {
				return i, false, why
			}
			k.st = csTrailer
			i++
		case csEndLF:
			if c != '\n' {
				return i, false, rChunked
			}
			i++
			k.reset()
			return i, true, rNone
		}
	}
	return i, false, rNone
}

// wsOnlyIfLed reports whether a chunk-size line's tail that starts with
// whitespace is whitespace only. RFC 9112 allows BWS before ";", but Go's
// chunked reader, which reads these bodies after the guard, trims trailing
// whitespace and then parses everything before ";" as hex: "5 ;x" fails
// there, so the guard refuses it here with a clean 400 rather than letting
// net/http fail in the middle of the body.
func wsOnlyIfLed(b []byte) bool {
	return len(b) == 0 || (b[0] != ' ' && b[0] != '\t') || len(bytes.TrimLeft(b, " \t")) == 0
}

// validExt checks chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] )
// with value a token or quoted-string (RFC 9112 §7.1.1).
func validExt(b []byte) bool {
	ws := func() {
		for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
			b = b[1:]
		}
	}
	tok := func() bool {
		n := 0
		for n < len(b) && is(b[n], cTchar) {
			n++
		}
		b = b[n:]
		return n > 0
	}
	for {
		ws()
		if len(b) == 0 {
			return true
		}
		if b[0] != ';' {
			return false
		}
		b = b[1:]
		ws()
		if !tok() {
			return false
		}
		ws()
		if len(b) == 0 || b[0] != '=' {
			continue
		}
		b = b[1:]
		ws()
		if len(b) > 0 && b[0] == '"' {
			b = b[1:]
			for {
				if len(b) == 0 {
					return false
				}
				c := b[0]
				b = b[1:]
				if c == '"' {
					break
				}
				if c == '\\' {
					if len(b) == 0 || (!is(b[0], cVchar) && b[0] != ' ' && b[0] != '\t') {
						return false
					}
					b = b[1:]
					continue
				}
				if !is(c, cVchar) && c != ' ' && c != '\t' {
					return false
				}
			}
		} else if !tok() {
			return false
		}
	}
}

// checkTrailer validates one trailer field line and refuses fields that must
// not appear in trailers (RFC 9110 §6.5.1): framing, routing, request
// modifiers, authentication and content metadata.
func checkTrailer(line []byte) reason {
	if len(line) == 0 || line[0] == ' ' || line[0] == '\t' {
		return rTrailer
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return rTrailer
	}
	name := line[:colon]
	var low [32]byte
	for i, c := range name {
		if !is(c, cTchar) {
			return rTrailer
		}
		if i < len(low) {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			low[i] = c
		}
	}
	for _, c := range http1.TrimOWS(line[colon+1:]) {
		if !is(c, cVchar) && c != ' ' && c != '\t' {
			return rTrailer
		}
	}
	if len(name) <= len(low) {
		if _, bad := forbiddenTrailers[string(low[:len(name)])]; bad {
			return rTrailer
		}
	}
	return rNone
}

var forbiddenTrailers = map[string]struct{}{
	"content-length": {}, "transfer-encoding": {}, "trailer": {}, "host": {},
	"connection": {}, "keep-alive": {}, "upgrade": {}, "te": {}, "proxy-connection": {},
	"expect": {}, "max-forwards": {}, "range": {}, "if-match": {}, "if-none-match": {},
	"if-modified-since": {}, "if-unmodified-since": {}, "if-range": {},
	"authorization": {}, "proxy-authorization": {}, "cookie": {}, "set-cookie": {},
	"content-type": {}, "content-encoding": {}, "content-range": {}, "cache-control": {},
	"x-forwarded-for": {}, "x-forwarded-host": {}, "x-forwarded-proto": {}, "forwarded": {},
}
