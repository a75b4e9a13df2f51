package h1

import (
	"bufio"
	"net/http"
	"net/textproto"
	"strings"
	"testing"

	"github.com/rampart-gw/rampart/internal/http1"
)

// FuzzParseHead checks that the response-head parser never panics, that
// what it accepts is well formed (canonical token keys, values without
// control bytes), and that net/http accepts it too with the same status
// and header fields (the client may be stricter, never laxer).
func FuzzParseHead(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n",
		"HTTP/1.0 204\r\nConnection: X-Internal, close\r\nX-Internal: 1\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		"HTTP/1.1 200 OK\nx-a:  b \nx-a: c\n\n",
		"HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 999 \xff\r\nA: \x80\r\n\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		from := 0
		n := http1.HeadEnd([]byte(in), &from)
		if n < 0 {
			return
		}
		head := in[:n]
		var resp http.Response
		if err := parseHead(head, &resp, DefaultMaxHeaders, new(headMem)); err != nil {
			return
		}
		x := &exchangeState{resp: resp}
		req := &http.Request{Method: http.MethodGet}
		ferr := (&Client{}).frame(x, req)
		for k, vv := range resp.Header {
			if !http1.ValidToken(k) || textproto.CanonicalMIMEHeaderKey(k) != k {
				t.Fatalf("key %q", k)
			}
			for _, v := range vv {
				if !validValue(v) || strings.TrimSpace(v) != v && strings.Trim(v, " \t") != v {
					t.Fatalf("value %q for %q", v, k)
				}
			}
		}
		std, err := http.ReadResponse(bufio.NewReader(strings.NewReader(head)), req)
		if err != nil {
			if ferr == nil {
				t.Fatalf("accepted what net/http rejects (%v):\n%q", err, head)
			}
			return
		}
		defer std.Body.Close()
		if std.StatusCode != resp.StatusCode || std.ProtoMinor != resp.ProtoMinor {
			t.Fatalf("status %d HTTP/1.%d, net/http %d HTTP/1.%d", resp.StatusCode, resp.ProtoMinor, std.StatusCode, std.ProtoMinor)
		}
		for k, vv := range std.Header {
			switch k {
			case "Connection", "Content-Length", "Transfer-Encoding", "Trailer":
				continue // framing fields: net/http rewrites them
			}
			if strings.Join(x.resp.Header[k], "\n") != strings.Join(vv, "\n") {
				t.Fatalf("%s: %q, net/http %q", k, x.resp.Header[k], vv)
			}
		}
	})
}
