package http1

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"testing"
)

func TestParseLength(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"5", 5, true},
		{"00", 0, true},
		{"0005", 5, true},
		{"123456789012345678", 123456789012345678, true},   // 18 digits
		{"1234567890123456789", 1234567890123456789, true}, // 19 digits (the old client refused it)
		{"9223372036854775807", math.MaxInt64, true},
		{"09223372036854775807", math.MaxInt64, true}, // 20 digits with a leading zero (the old guard refused it)
		{"000000000000000000000001", 1, true},
		{"9223372036854775808", 0, false}, // MaxInt64+1
		{"9999999999999999999", 0, false},
		{"18446744073709551616", 0, false}, // 1<<64 wraps to 0 with a naive loop
		{"99999999999999999999", 0, false},
		{"", 0, false},
		{"+1", 0, false},
		{"-1", 0, false},
		{" 1", 0, false},
		{"1 ", 0, false},
		{"1,1", 0, false},
		{"0x10", 0, false},
		{"1_000", 0, false},
		{"١", 0, false}, // a non-ASCII digit
	} {
		n, ok := ParseLength(tc.in)
		if n != tc.want || ok != tc.ok {
			t.Errorf("ParseLength(%q) = %d, %v; want %d, %v", tc.in, n, ok, tc.want, tc.ok)
		}
		if bn, bok := ParseLength([]byte(tc.in)); bn != n || bok != ok {
			t.Errorf("ParseLength([]byte(%q)) = %d, %v; string form %d, %v", tc.in, bn, bok, n, ok)
		}
		// net/http's rule, pinned.
		u, err := strconv.ParseUint(tc.in, 10, 63)
		if (err == nil) != ok || ok && int64(u) != n {
			t.Errorf("ParseLength(%q) = %d, %v; strconv.ParseUint(s, 10, 63) = %d, %v", tc.in, n, ok, u, err)
		}
	}
}

func FuzzParseLength(f *testing.F) {
	for _, s := range []string{"0", "1", "00", "9223372036854775807", "9223372036854775808", "18446744073709551616", "+1", "", " 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := ParseLength(s)
		u, err := strconv.ParseUint(s, 10, 63)
		if (err == nil) != ok || ok && int64(u) != n {
			t.Fatalf("ParseLength(%q) = %d, %v; strconv.ParseUint(s, 10, 63) = %d, %v", s, n, ok, u, err)
		}
		if bn, bok := ParseLength([]byte(s)); bn != n || bok != ok {
			t.Fatalf("[]byte and string forms differ on %q", s)
		}
	})
}

func TestHeadEnd(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"", -1},
		{"\n", -1},
		{"\r\n", -1},
		{"\n\n", 2},
		{"\r\n\r\n", 4},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody", 27},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r", -1},
		{"GET / HTTP/1.1\r\nHost: a\r\n", -1},
		{"GET / HTTP/1.1\nHost: a\n\n", 24},
		{"GET / HTTP/1.1\r\nHost: a\n\r\n", 26},
		{"GET / HTTP/1.1\r\nHost: a\r\n\n", 26},
		{"a\r\n\r\r\n\r\n", 8}, // "\r\r\n" is not an empty line
		{"a\r\n \r\n\r\n", 8},  // nor is " \r\n"
	} {
		from := 0
		if got := HeadEnd([]byte(tc.in), &from); got != tc.want {
			t.Errorf("HeadEnd(%q) = %d, want %d", tc.in, got, tc.want)
		}
		// Fed a byte at a time, resuming, it finds the same end.
		from, got := 0, -1
		for i := 0; i <= len(tc.in) && got < 0; i++ {
			got = HeadEnd([]byte(tc.in[:i]), &from)
		}
		if got != tc.want {
			t.Errorf("HeadEnd(%q) byte by byte = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// headEndRef is HeadEnd by its definition: the end of the first empty line
// (LF or CR LF) that follows a LF.
func headEndRef(b []byte) int {
	for i := 0; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		if i+1 < len(b) && b[i+1] == '\n' {
			return i + 2
		}
		if i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n' {
			return i + 3
		}
	}
	return -1
}

func FuzzHeadEnd(f *testing.F) {
	for _, s := range []string{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", "\n\n", "a\n\r\n", "a\r\n\r\r\n\r\n", "HTTP/1.1 200 OK\nA: b\n\nbody"} {
		f.Add(s, uint8(3))
	}
	f.Fuzz(func(t *testing.T, s string, step uint8) {
		b := []byte(s)
		from := 0
		n := HeadEnd(b, &from)
		if want := headEndRef(b); n != want {
			t.Fatalf("HeadEnd(%q) = %d, reference %d", s, n, want)
		}
		// Resuming on a growing buffer finds the same end.
		st := int(step%16) + 1
		from, got := 0, -1
		for i := 0; got < 0; i += st {
			got = HeadEnd(b[:min(i, len(b))], &from)
			if i >= len(b) {
				break
			}
		}
		if got != n {
			t.Fatalf("HeadEnd(%q) in steps of %d = %d, whole %d", s, st, got, n)
		}
	})
}

func TestTrimOWS(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""}, {" \t", ""}, {" a b\t", "a b"}, {"a", "a"}, {"\ta \t", "a"},
		{"\r a \r", "\r a \r"}, {"\v a", "\v a"}, {"\u00a0a", "\u00a0a"},
	} {
		if got := TrimOWS(tc.in); got != tc.want {
			t.Errorf("TrimOWS(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got := TrimOWS([]byte(tc.in)); string(got) != tc.want {
			t.Errorf("TrimOWS([]byte(%q)) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzTrimOWS(f *testing.F) {
	for _, s := range []string{"", " a ", "\t\ta\t b \t", "\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := strings.Trim(s, " \t")
		if got := TrimOWS(s); got != want {
			t.Fatalf("TrimOWS(%q) = %q, strings.Trim %q", s, got, want)
		}
		if got := TrimOWS([]byte(s)); !bytes.Equal(got, []byte(want)) {
			t.Fatalf("TrimOWS([]byte(%q)) = %q, strings.Trim %q", s, got, want)
		}
	})
}

func TestHasToken(t *testing.T) {
	for _, tc := range []struct {
		v, token string
		want     bool
	}{
		{"close", "close", true},
		{"Close", "close", true},
		{"CLOSE", "close", true},
		{" close ", "close", true},
		{"keep-alive, close", "close", true},
		{"keep-alive,close", "close", true},
		{",,close,", "close", true},
		{"x-close", "close", false},
		{"closed", "close", false},
		{"clo se", "close", false},
		{"", "close", false},
		{",", "close", false},
		{"Upgrade", "upgrade", true},
		{"keep-alive\t,\tUpgrade", "upgrade", true},
	} {
		if got := HasToken(tc.v, tc.token); got != tc.want {
			t.Errorf("HasToken(%q, %q) = %v, want %v", tc.v, tc.token, got, tc.want)
		}
		if got := HasTokenIn([]string{"a", tc.v}, tc.token); got != tc.want {
			t.Errorf("HasTokenIn({a, %q}, %q) = %v, want %v", tc.v, tc.token, got, tc.want)
		}
	}
	if HasTokenIn(nil, "close") {
		t.Error("HasTokenIn(nil) = true")
	}
}

func FuzzHasToken(f *testing.F) {
	f.Add("keep-alive, close", "close")
	f.Add(",, Upgrade ,", "upgrade")
	f.Fuzz(func(t *testing.T, v, token string) {
		if token == "" {
			return // callers ask for a token
		}
		want := false
		for _, el := range strings.Split(v, ",") {
			if el != "" && strings.EqualFold(strings.Trim(el, " \t"), token) {
				want = true
			}
		}
		if v == "" {
			want = false
		}
		if got := HasToken(v, token); got != want {
			t.Fatalf("HasToken(%q, %q) = %v, reference %v", v, token, got, want)
		}
	})
}

func TestValidToken(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"GET", true}, {"Content-Type", true}, {"!#$%&'*+-.^_`|~09azAZ", true},
		{"", false}, {"a b", false}, {"a:b", false}, {"a\x00", false}, {"Ä", false},
		{"a(b", false}, {"a\"", false}, {"a/b", false}, {"a\t", false}, {"\x7f", false},
	} {
		if got := ValidToken(tc.in); got != tc.want {
			t.Errorf("ValidToken(%q) = %v, want %v", tc.in, got, tc.want)
		}
		if got := ValidToken([]byte(tc.in)); got != tc.want {
			t.Errorf("ValidToken([]byte(%q)) = %v, want %v", tc.in, got, tc.want)
		}
	}
	n := 0
	for c := 0; c < 256; c++ {
		if IsTchar(byte(c)) {
			n++
		}
	}
	if n != 77 { // 62 alphanumerics and 15 symbols
		t.Errorf("%d token bytes, want 77", n)
	}
}

func TestUnhex(t *testing.T) {
	for c := 0; c < 256; c++ {
		v, err := strconv.ParseUint(string(rune(c)), 16, 8)
		if c >= 0x80 {
			err = strconv.ErrSyntax
		}
		if IsHex(byte(c)) != (err == nil) {
			t.Errorf("IsHex(%#x) = %v", c, IsHex(byte(c)))
		}
		if err == nil && uint64(Unhex(byte(c))) != v {
			t.Errorf("Unhex(%#x) = %d, want %d", c, Unhex(byte(c)), v)
		}
	}
}

func TestParseChunkSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0\r\n", 0, true},
		{"5\r\n", 5, true},
		{"a\r\n", 10, true},
		{"fF\r\n", 255, true},
		{"5;ext=1\r\n", 5, true},
		{"5 ;ext\r\n", 5, true},
		{"5\t\r\n", 5, true},
		{"000000000000000a\r\n", 10, true},
		{"4000000000000000\r\n", 1 << 62, true},
		{"4000000000000001\r\n", 0, false},
		{"00000000000000000\r\n", 0, false}, // 17 digits
		{"5\n", 0, false},                   // bare LF
		{"\r\n", 0, false},
		{";x\r\n", 0, false},
		{" 5\r\n", 0, false},
		{"5 5\r\n", 0, false},
		{"g\r\n", 0, false},
		{"-1\r\n", 0, false},
		{"0x5\r\n", 0, false},
		{"5;\x00\r\n", 0, false},
		{"5;\x7f\r\n", 0, false},
		{"5\r\r\n", 0, false},
	} {
		n, ok := ParseChunkSize(tc.in)
		if n != tc.want || ok != tc.ok {
			t.Errorf("ParseChunkSize(%q) = %d, %v; want %d, %v", tc.in, n, ok, tc.want, tc.ok)
		}
		if bn, bok := ParseChunkSize([]byte(tc.in)); bn != n || bok != ok {
			t.Errorf("[]byte and string forms differ on %q", tc.in)
		}
	}
}

// parseChunkSizeRef restates ParseChunkSize with the strings package.
func parseChunkSizeRef(s string) (int64, bool) {
	line, ok := strings.CutSuffix(s, "\r\n")
	if !ok || strings.ContainsFunc(line, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
		return 0, false
	}
	line, _, _ = strings.Cut(line, ";")
	line = strings.TrimRight(line, " \t")
	if len(line) == 0 || len(line) > 16 || strings.ContainsAny(line, "+-_xX") {
		return 0, false
	}
	u, err := strconv.ParseUint(line, 16, 64)
	if err != nil || u > 1<<62 {
		return 0, false
	}
	return int64(u), true
}

func FuzzParseChunkSize(f *testing.F) {
	for _, s := range []string{"0\r\n", "5;a=b\r\n", "ffffffffffffffff\r\n", "4000000000000000\r\n", "5\n", "5 ;x\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := ParseChunkSize(s)
		wn, wok := parseChunkSizeRef(s)
		if n != wn || ok != wok {
			t.Fatalf("ParseChunkSize(%q) = %d, %v; reference %d, %v", s, n, ok, wn, wok)
		}
	})
}

func TestIdempotent(t *testing.T) {
	tests := []struct {
		method string
		header map[string][]string
		want   bool
	}{
		{"", nil, true},
		{"GET", nil, true},
		{"HEAD", nil, true},
		{"OPTIONS", nil, true},
		{"TRACE", nil, true},
		{"PUT", nil, true},
		{"DELETE", nil, true},
		{"POST", nil, false},
		{"PATCH", nil, false},
		{"CONNECT", nil, false},
		{"get", nil, false}, // methods are case-sensitive
		{"POST", map[string][]string{"Idempotency-Key": {"k"}}, true},
		{"PATCH", map[string][]string{"X-Idempotency-Key": {"k"}}, true},
		{"POST", map[string][]string{"Idempotency-Key": {}}, true},
		{"POST", map[string][]string{"Idempotency": {"k"}}, false},
	}
	for _, tc := range tests {
		if got := Idempotent(tc.method, tc.header); got != tc.want {
			t.Errorf("Idempotent(%q, %v) = %v, want %v", tc.method, tc.header, got, tc.want)
		}
	}
}
