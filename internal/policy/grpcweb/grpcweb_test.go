package grpcweb

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"strings"
	"testing"
)

func TestKind(t *testing.T) {
	for _, tt := range []struct {
		ct       string
		ok, text bool
		suffix   string
	}{
		{"application/grpc-web", true, false, ""},
		{"application/grpc-web+proto", true, false, "+proto"},
		{"Application/GRPC-Web-Text+proto; charset=utf-8", true, true, "+proto"},
		{"application/grpc-web-text", true, true, ""},
		{"application/grpc", false, false, ""},
		{"application/grpc-webx", false, false, ""},
		{"text/plain", false, false, ""},
	} {
		ok, text, suffix := kind(tt.ct)
		if ok != tt.ok || text != tt.text || suffix != tt.suffix {
			t.Errorf("kind(%q) = %v %v %q, want %v %v %q", tt.ct, ok, text, suffix, tt.ok, tt.text, tt.suffix)
		}
	}
}

func decodeAll(s string) ([]byte, error) {
	return io.ReadAll(&b64Reader{src: bufio.NewReader(strings.NewReader(s))})
}

func TestB64Reader(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string
		err  bool
	}{
		{base64.StdEncoding.EncodeToString([]byte("hello world")), "hello world", false},
		{base64.StdEncoding.EncodeToString([]byte("he")) + base64.StdEncoding.EncodeToString([]byte("llo")), "hello", false},
		{"aGVs\r\nbG8=", "hello", false},
		{"aGVsbG", "", true},   // cut short
		{"aGV!bG8=", "", true}, // not base64
	} {
		got, err := decodeAll(tt.in)
		if (err != nil) != tt.err || (!tt.err && string(got) != tt.want) {
			t.Errorf("%q: %q, %v; want %q (error %v)", tt.in, got, err, tt.want, tt.err)
		}
	}
}

// FuzzB64Reader: any input decodes or fails without panicking, and the
// concatenated padded encodings of any split of a body decode to it.
func FuzzB64Reader(f *testing.F) {
	f.Add([]byte("hello, world"), uint8(3), []byte("aGVs bG8="))
	f.Fuzz(func(t *testing.T, body []byte, cut uint8, raw []byte) {
		decodeAll(string(raw))
		i := int(cut) % (len(body) + 1)
		enc := base64.StdEncoding.EncodeToString(body[:i]) + base64.StdEncoding.EncodeToString(body[i:])
		got, err := decodeAll(enc)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("decode(%q) = %q, %v; want %q", enc, got, err, body)
		}
	})
}
