package gateway

import (
	"math/rand/v2"
	"unsafe"
)

const hexDigits = "0123456789abcdef"

// saneRequestID reports whether a client-supplied request ID may be kept:
// 1 to 128 bytes of letters, digits and - _ . : / + = @. Anything else (a
// log-injection attempt, a huge value) is replaced by a generated ID.
func saneRequestID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '_' || c == '.' || c == ':' || c == '/' || c == '+' || c == '=' || c == '@':
		default:
			return false
		}
	}
	return true
}

// newRequestID returns 32 random hex digits (128 bits).
func newRequestID() string {
	var b [32]byte
	fillRequestID(&b)
	return string(b[:])
}

func fillRequestID(b *[32]byte) {
	appendHex64(b[:0], rand.Uint64())
	appendHex64(b[:16], rand.Uint64())
}

// idBuf is the memory of a request's generated request ID and child
// traceparent, part of the request's state (issue 6: no string allocation
// of their own). The strings returned point into it (unsafe.String); that
// is sound because the bytes are written once, before the strings exist,
// and the state is never reused: like any pointer into it, the strings
// keep it alive.
type idBuf [32 + 55]byte

// newIDs returns a new request ID (as newRequestID) and the child
// traceparent of tp (as child).
func (b *idBuf) newIDs(tp string) (rid, child string) {
	fillRequestID((*[32]byte)(b[:32]))
	fillTraceparent((*[55]byte)(b[32:]), tp)
	s := unsafe.String(&b[0], len(b))
	return s[:32], s[32:]
}

// child returns the W3C traceparent to send upstream: the client's trace
// ID and flags with a new parent (span) ID, or a new trace when the client
// sent none or an invalid one (W3C Trace Context, section 4.3).
func (b *idBuf) child(tp string) string {
	fillTraceparent((*[55]byte)(b[32:]), tp)
	return unsafe.String(&b[32], 55)
}

func appendHex64(b []byte, v uint64) []byte {
	for i := 60; i >= 0; i -= 4 {
		b = append(b, hexDigits[(v>>uint(i))&0xf])
	}
	return b
}

func fillTraceparent(b *[55]byte, in string) {
	if validTraceparent(in) {
		// A newer version is parsed as version 00 and sent on as 00, the
		// version this gateway speaks (W3C Trace Context, section 3.2.4).
		copy(b[:], "00-")
		copy(b[3:], in[3:36]) // trace-id + "-"
		appendHex64(b[36:36], rand.Uint64())
		b[52] = '-'
		copy(b[53:], in[53:55])
		return
	}
	copy(b[:], "00-")
	hi, lo := rand.Uint64(), rand.Uint64()
	if hi == 0 && lo == 0 {
		lo = 1
	}
	appendHex64(b[3:3], hi)
	appendHex64(b[19:19], lo)
	b[35] = '-'
	span := rand.Uint64() | 1
	appendHex64(b[36:36], span)
	copy(b[52:], "-00")
}

// validTraceparent checks the version-00 format: 00-<32 hex>-<16 hex>-<2 hex>
// with non-zero trace and parent IDs. Future versions are accepted when the
// first 55 bytes follow the same layout.
func validTraceparent(s string) bool {
	if len(s) < 55 || (len(s) > 55 && (s[:2] == "00" || s[55] != '-')) {
		return false
	}
	if s[:2] == "ff" || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return false
	}
	allZero := func(x string) bool {
		for i := 0; i < len(x); i++ {
			if x[i] != '0' {
				return false
			}
		}
		return true
	}
	for i, c := range []byte(s[:55]) {
		if i == 2 || i == 35 || i == 52 {
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return !allZero(s[3:35]) && !allZero(s[36:52])
}
