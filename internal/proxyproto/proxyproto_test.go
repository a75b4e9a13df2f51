package proxyproto

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
)

func v2(cmdFam string, rest string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(cmdFam+rest, " ", ""))
	if err != nil {
		panic(err)
	}
	return append(append([]byte{}, signature...), b...)
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// Parse and Read agree on every header, good or bad, and Read leaves the
// bytes after the header unread.
func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want Header
		// err: "" ok, "eof" incomplete, "none" ErrNoHeader, else *Error
		// containing it.
		err string
	}{
		{"v1 tcp4", []byte("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"), Header{Version: V1, Source: ap("192.0.2.1:56324"), Destination: ap("198.51.100.2:443")}, ""},
		{"v1 tcp6", []byte("PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n"), Header{Version: V1, Source: ap("[2001:db8::1]:1"), Destination: ap("[2001:db8::2]:65535")}, ""},
		{"v1 unknown", []byte("PROXY UNKNOWN\r\n"), Header{Version: V1, Local: true}, ""},
		{"v1 unknown with junk", []byte("PROXY UNKNOWN ffff::1 whatever\r\n"), Header{Version: V1, Local: true}, ""},
		{"v1 family mismatch", []byte("PROXY TCP4 2001:db8::1 192.0.2.1 1 2\r\n"), Header{}, "not an TCP4 address"},
		{"v1 bad port", []byte("PROXY TCP4 192.0.2.1 192.0.2.2 65536 2\r\n"), Header{}, "out of range"},
		{"v1 leading zero", []byte("PROXY TCP4 192.0.2.1 192.0.2.2 080 2\r\n"), Header{}, "port"},
		{"v1 no CR", []byte("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n"), Header{}, "CRLF"},
		{"v1 fields", []byte("PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n"), Header{}, "fields"},
		{"v1 protocol", []byte("PROXY UDP4 192.0.2.1 192.0.2.2 1 2\r\n"), Header{}, "protocol"},
		{"v1 too long", []byte("PROXY UNKNOWN " + strings.Repeat("x", 120) + "\r\n"), Header{}, "longer than"},
		{"v1 cut short", []byte("PROXY TCP4 192.0.2.1"), Header{}, "eof"},
		{"not a header", []byte("GET / HTTP/1.1\r\n\r\n"), Header{}, "none"},
		{"redis", []byte("*1\r\n$4\r\nPING\r\n"), Header{}, "none"},
		{"v2 inet", v2("21 11 000c", "c0000201 c6336402 dc04 01bb"), Header{Version: V2, Source: ap("192.0.2.1:56324"), Destination: ap("198.51.100.2:443")}, ""},
		{"v2 inet6", v2("21 21 0024", "20010db8000000000000000000000001 20010db8000000000000000000000002 0001 ffff"), Header{Version: V2, Source: ap("[2001:db8::1]:1"), Destination: ap("[2001:db8::2]:65535")}, ""},
		{"v2 inet with tlvs", v2("21 11 0014", "c0000201 c6336402 dc04 01bb 04 0001 00 ea 0001 ff"), Header{Version: V2, Source: ap("192.0.2.1:56324"), Destination: ap("198.51.100.2:443")}, ""},
		{"v2 local", v2("20 00 0000", ""), Header{Version: V2, Local: true}, ""},
		{"v2 local with addresses", v2("20 11 000c", "c0000201 c6336402 dc04 01bb"), Header{Version: V2, Local: true}, ""},
		{"v2 unspec", v2("21 00 0000", ""), Header{Version: V2, Local: true}, ""},
		{"v2 unix", v2("21 31 00d8", strings.Repeat("00", 216)), Header{Version: V2, Local: true}, ""},
		{"v2 udp", v2("21 12 000c", "c0000201 c6336402 dc04 01bb"), Header{Version: V2, Local: true}, ""},
		{"v2 version 3", v2("31 11 000c", "c0000201 c6336402 dc04 01bb"), Header{}, "version 3"},
		{"v2 command 2", v2("22 11 000c", "c0000201 c6336402 dc04 01bb"), Header{}, "command"},
		{"v2 family 4", v2("21 41 000c", "c0000201 c6336402 dc04 01bb"), Header{}, "family"},
		{"v2 short for family", v2("21 21 000c", "c0000201 c6336402 dc04 01bb"), Header{}, "too short"},
		{"v2 tlv past end", v2("21 11 0010", "c0000201 c6336402 dc04 01bb 04 0009 00"), Header{}, "TLV"},
		{"v2 tlv cut", v2("21 11 000e", "c0000201 c6336402 dc04 01bb 04 00"), Header{}, "cut short"},
		{"v2 too long", v2("21 11 1000", ""), Header{}, "at most"},
		{"v2 cut short", v2("21 11 000c", "c0000201"), Header{}, "eof"},
		{"v2 bad signature", append([]byte("\r\n\r\n\x00\r\nQUIT\r"), 0x21, 0x11, 0, 0), Header{}, "none"},
	}
	const after = "first client bytes"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, n, err := Parse(tt.in)
			check := func(how string, h Header, err error) {
				t.Helper()
				switch tt.err {
				case "":
					if err != nil || h != tt.want {
						t.Fatalf("%s = %+v, %v; want %+v", how, h, err, tt.want)
					}
				case "eof":
					if !errors.Is(err, io.ErrUnexpectedEOF) {
						t.Fatalf("%s = %+v, %v; want io.ErrUnexpectedEOF", how, h, err)
					}
				case "none":
					if !errors.Is(err, ErrNoHeader) {
						t.Fatalf("%s = %+v, %v; want ErrNoHeader", how, h, err)
					}
				default:
					var e *Error
					if !errors.As(err, &e) || !strings.Contains(e.Error(), tt.err) {
						t.Fatalf("%s = %+v, %v; want an *Error with %q", how, h, err, tt.err)
					}
				}
			}
			check("Parse", h, err)
			if err == nil && n != len(tt.in) {
				t.Fatalf("Parse consumed %d bytes of %d", n, len(tt.in))
			}
			r := bytes.NewReader(append(append([]byte{}, tt.in...), after...))
			h, err = Read(r)
			if tt.err == "eof" {
				r = bytes.NewReader(tt.in) // Read sees the stream end
				_, err = Read(r)
				if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
					t.Fatalf("Read of a cut header = %v, want EOF", err)
				}
				return
			}
			check("Read", h, err)
			if err == nil {
				if rest, _ := io.ReadAll(r); string(rest) != after {
					t.Fatalf("Read left %q unread, want %q", rest, after)
				}
			}
		})
	}
}

// Append writes what Parse reads back.
func TestAppendRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		local    bool
		src, dst netip.AddrPort
		want     Header // Version is set per version
		v1       string
	}{
		{"ipv4", false, ap("192.0.2.1:56324"), ap("198.51.100.2:443"), Header{Source: ap("192.0.2.1:56324"), Destination: ap("198.51.100.2:443")}, "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"},
		{"ipv6", false, ap("[2001:db8::1]:1"), ap("[2001:db8::2]:2"), Header{Source: ap("[2001:db8::1]:1"), Destination: ap("[2001:db8::2]:2")}, "PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n"},
		{"mapped ipv4", false, ap("[::ffff:192.0.2.1]:5"), ap("192.0.2.9:6"), Header{Source: ap("192.0.2.1:5"), Destination: ap("192.0.2.9:6")}, "PROXY TCP4 192.0.2.1 192.0.2.9 5 6\r\n"},
		{"families differ", false, ap("[2001:db8::1]:1"), ap("192.0.2.1:2"), Header{Local: true}, "PROXY UNKNOWN\r\n"},
		{"local", true, ap("192.0.2.1:1"), ap("192.0.2.2:2"), Header{Local: true}, "PROXY UNKNOWN\r\n"},
		{"unknown", false, netip.AddrPort{}, ap("192.0.2.2:2"), Header{Local: true}, "PROXY UNKNOWN\r\n"},
	}
	for _, tt := range tests {
		for _, v := range []int{V1, V2} {
			t.Run(tt.name+"/v"+string(rune('0'+v)), func(t *testing.T) {
				b := Append(nil, v, tt.local, tt.src, tt.dst)
				if v == V1 && string(b) != tt.v1 {
					t.Fatalf("Append = %q, want %q", b, tt.v1)
				}
				h, n, err := Parse(b)
				want := tt.want
				want.Version = v
				if err != nil || n != len(b) || h != want {
					t.Fatalf("Parse(Append) = %+v, %d, %v; want %+v, %d", h, n, err, want, len(b))
				}
			})
		}
	}
	// v2 tells LOCAL (a health check) from PROXY UNSPEC (unknown client).
	if b := Append(nil, V2, true, netip.AddrPort{}, netip.AddrPort{}); b[12] != 0x20 {
		t.Errorf("local v2 command byte %#x, want 0x20", b[12])
	}
	if b := Append(nil, V2, false, netip.AddrPort{}, netip.AddrPort{}); b[12] != 0x21 || b[13] != 0 {
		t.Errorf("unknown v2 bytes %#x %#x, want 0x21 0x00", b[12], b[13])
	}
}
