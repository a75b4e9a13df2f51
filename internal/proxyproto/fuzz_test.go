package proxyproto

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzParse: Parse never panics, never claims more bytes than it got, and
// agrees with Read, which consumes exactly the header; a header that
// parses survives Append and Parse again.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n",
		"PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\nrest",
		"PROXY UNKNOWN\r\n",
		"GET / HTTP/1.1\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Add(v2("21 11 000c", "c0000201 c6336402 dc04 01bb"))
	f.Add(v2("21 21 0024", "20010db8000000000000000000000001 20010db8000000000000000000000002 0001 ffff"))
	f.Add(v2("20 00 0000", ""))
	// An IPv6 source with an IPv4-mapped destination stays one IPv6 pair.
	f.Add(v2("21 21 0024", "30303030303030303030303030303030 00000000000000000000ffff30303030 3030 3030"))
	f.Add(v2("21 11 0014", "c0000201 c6336402 dc04 01bb 04 0001 00 ea 0001 ff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := Parse(b)
		if err != nil {
			var e *Error
			if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrNoHeader) && !errors.As(err, &e) {
				t.Fatalf("Parse error of unknown kind: %v", err)
			}
		} else if n <= 0 || n > len(b) {
			t.Fatalf("Parse consumed %d of %d bytes", n, len(b))
		}
		r := bytes.NewReader(b)
		rh, rerr := Read(r)
		switch {
		case err == nil:
			if rerr != nil || rh != h {
				t.Fatalf("Read = %+v, %v; Parse = %+v", rh, rerr, h)
			}
			if left := r.Len(); left != len(b)-n {
				t.Fatalf("Read left %d bytes, want %d", left, len(b)-n)
			}
			again, _, err := Parse(Append(nil, h.Version, h.Local, h.Source, h.Destination))
			if err != nil || again != h {
				t.Fatalf("Parse(Append(%+v)) = %+v, %v", h, again, err)
			}
		case errors.Is(err, io.ErrUnexpectedEOF):
			if rerr == nil {
				t.Fatalf("Read parsed %+v from a header Parse finds incomplete", rh)
			}
		default:
			if rerr == nil {
				t.Fatalf("Read parsed %+v where Parse failed: %v", rh, err)
			}
		}
	})
}
