package h1

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/exchange"
	"github.com/rampart-gw/rampart/internal/http1"
	"github.com/rampart-gw/rampart/internal/listener/httpcore"
)

// rawServer accepts connections on 127.0.0.1 and hands each to handle,
// which speaks exact bytes.
type rawServer struct {
	ln      net.Listener
	accepts atomic.Int32
	wg      sync.WaitGroup
}

func startRaw(t *testing.T, handle func(c net.Conn, br *bufio.Reader)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln}
	var conns sync.Map
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepts.Add(1)
			conns.Store(c, true)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				handle(c, bufio.NewReader(c))
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		s.wg.Wait()
	})
	return s
}

func (s *rawServer) url(path string) string { return "http://" + s.ln.Addr().String() + path }

// readRequest reads one request head and a Content-Length body, returning
// the head.
func readRequest(br *bufio.Reader) (string, error) {
	var head strings.Builder
	cl := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return head.String(), err
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Content-Length") {
			cl, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	_, err := io.CopyN(io.Discard, br, int64(cl))
	return head.String(), err
}

// answer serves every request on a connection with resp; closeAfter
// closes the connection after the first answer.
func answer(resp string, closeAfter bool) func(net.Conn, *bufio.Reader) {
	return func(c net.Conn, br *bufio.Reader) {
		for {
			if _, err := readRequest(br); err != nil {
				return
			}
			if _, err := io.WriteString(c, resp); err != nil || closeAfter {
				return
			}
		}
	}
}

// checkNoLeaks fails if a goroutine of this package outlives the test:
// go.uber.org/goleak is not a direct dependency of the module, so this
// checks the one goroutine the package starts (the janitor) by name.
func checkNoLeaks(t *testing.T) {
	t.Helper()
	t.Cleanup(func() {
		deadline := time.Now().Add(2 * time.Second)
		for {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			if !bytes.Contains(buf, []byte("h1.(*Client).janitor")) && !bytes.Contains(buf, []byte("h1.watchLoop")) {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("leaked goroutines:\n%s", buf)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

func get(t *testing.T, c *Client, method, url string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.RoundTrip(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

func TestFraming(t *testing.T) {
	tests := []struct {
		name, method, resp string
		closeAfter         bool
		status             int
		body               string
		contentLength      int64
		close              bool
		header             http.Header // fields that must be present
		trailer            http.Header
		reused             bool // a second request reuses the connection
	}{
		{name: "content-length", resp: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
			status: 200, body: "hello", contentLength: 5, reused: true},
		{name: "content-length zero", resp: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
			status: 200, contentLength: 0, reused: true},
		{name: "identical content-lengths collapse", resp: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
			status: 200, body: "ok", contentLength: 2, header: http.Header{"Content-Length": {"2"}}, reused: true},
		{name: "chunked with extensions and trailers",
			resp: "HTTP/1.1 200 OK\r\nTrailer: X-Sum, X-Late\r\nTransfer-Encoding: chunked\r\n\r\n" +
				"5;name=value\r\nhello\r\n6 ; x\r\n world\r\n0\r\nX-Sum: 42\r\nX-Extra: 1\r\n\r\n",
			status: 200, body: "hello world", contentLength: -1,
			trailer: http.Header{"X-Sum": {"42"}, "X-Extra": {"1"}, "X-Late": nil}, reused: true},
		{name: "chunked uppercase hex", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n",
			status: 200, body: "0123456789", contentLength: -1, reused: true},
		{name: "close-delimited", resp: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end", closeAfter: true,
			status: 200, body: "until the end", contentLength: -1, close: true},
		{name: "head has no body", method: http.MethodHead, resp: "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n",
			status: 200, contentLength: 42, reused: true},
		{name: "204 has no body", resp: "HTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n",
			status: 204, contentLength: 0, header: http.Header{"X-A": {"b"}}, reused: true},
		{name: "304 ignores content-length", resp: "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nEtag: \"x\"\r\n\r\n",
			status: 304, contentLength: 0, header: http.Header{"Etag": {`"x"`}}, reused: true},
		{name: "1xx skipped", resp: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" +
			"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
			status: 200, body: "ok", contentLength: 2, reused: true},
		{name: "http/1.0 closes", resp: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
			status: 200, body: "ok", contentLength: 2, close: true},
		{name: "http/1.0 keep-alive", resp: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
			status: 200, body: "ok", contentLength: 2, reused: true},
		{name: "connection names a header and close kept", resp: "HTTP/1.1 200 OK\r\nConnection: X-Internal, close\r\nX-Internal: s\r\nContent-Length: 2\r\n\r\nok",
			status: 200, body: "ok", contentLength: 2, close: true,
			header: http.Header{"Connection": {"X-Internal, close"}, "X-Internal": {"s"}}},
		{name: "bare LF lines and OWS", resp: "HTTP/1.1 200 OK\nx-lower:  v1 \nContent-Length: 2\n\nok",
			status: 200, body: "ok", contentLength: 2, header: http.Header{"X-Lower": {"v1"}}, reused: true},
		{name: "status without reason", resp: "HTTP/1.1 201\r\nContent-Length: 0\r\n\r\n",
			status: 201, reused: true},
		{name: "repeated field", resp: "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n",
			status: 200, header: http.Header{"Set-Cookie": {"a=1", "b=2"}}, reused: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkNoLeaks(t)
			srv := startRaw(t, answer(tc.resp, tc.closeAfter))
			c := New(Config{})
			defer c.CloseIdleConnections()
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			resp, body, err := get(t, c, method, srv.url("/x"))
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || string(body) != tc.body || resp.ContentLength != tc.contentLength || resp.Close != tc.close {
				t.Fatalf("got %d %q CL=%d close=%v, want %d %q CL=%d close=%v", resp.StatusCode, body, resp.ContentLength, resp.Close,
					tc.status, tc.body, tc.contentLength, tc.close)
			}
			for k, want := range tc.header {
				if got := resp.Header[k]; fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			if tc.trailer != nil && fmt.Sprint(resp.Trailer) != fmt.Sprint(tc.trailer) {
				t.Errorf("trailer = %v, want %v", resp.Trailer, tc.trailer)
			}
			if _, _, err := get(t, c, method, srv.url("/y")); err != nil {
				t.Fatal(err)
			}
			want := int32(2)
			if tc.reused {
				want = 1
			}
			if n := srv.accepts.Load(); n != want {
				t.Errorf("server accepted %d connections, want %d", n, want)
			}
		})
	}
}

func TestMalformed(t *testing.T) {
	big := strings.Repeat("a", 1<<20)
	tests := []struct {
		name, resp string
		bodyErr    bool // the head parses; the body fails
		want       error
	}{
		{name: "no status code", resp: "HTTP/1.1 OK\r\n\r\n", want: ErrMalformed},
		{name: "letters in status", resp: "HTTP/1.1 2x0 OK\r\n\r\n", want: ErrMalformed},
		{name: "status too long", resp: "HTTP/1.1 2000 OK\r\n\r\n", want: ErrMalformed},
		{name: "unknown version", resp: "HTTP/2.0 200 OK\r\n\r\n", want: ErrMalformed},
		{name: "not http", resp: "SSH-2.0-OpenSSH\r\n\r\n", want: ErrMalformed},
		{name: "bad content-length", resp: "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", want: ErrMalformed},
		{name: "negative content-length", resp: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", want: ErrMalformed},
		{name: "content-length list", resp: "HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok", want: ErrMalformed},
		{name: "conflicting content-lengths", resp: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", want: ErrMalformed},
		{name: "content-length and transfer-encoding", resp: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", want: ErrMalformed},
		{name: "unknown transfer-encoding", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", want: ErrMalformed},
		{name: "obs-fold", resp: "HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\nContent-Length: 0\r\n\r\n", want: ErrMalformed},
		{name: "NUL in value", resp: "HTTP/1.1 200 OK\r\nX-A: b\x00c\r\nContent-Length: 0\r\n\r\n", want: ErrMalformed},
		{name: "CR in value", resp: "HTTP/1.1 200 OK\r\nX-A: b\rX-B: c\r\nContent-Length: 0\r\n\r\n", want: ErrMalformed},
		{name: "space before colon", resp: "HTTP/1.1 200 OK\r\nX-A : b\r\nContent-Length: 0\r\n\r\n", want: ErrMalformed},
		{name: "no colon", resp: "HTTP/1.1 200 OK\r\nX-A\r\nContent-Length: 0\r\n\r\n", want: ErrMalformed},
		{name: "bad trailer name", resp: "HTTP/1.1 200 OK\r\nTrailer: Content-Length\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", want: ErrMalformed},
		{name: "head too large", resp: "HTTP/1.1 200 OK\r\nX-Big: " + big + "\r\n\r\n", want: ErrMalformed},
		{name: "bad chunk size", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", bodyErr: true, want: ErrMalformed},
		{name: "chunk size overflow", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n11111111111111111\r\n", bodyErr: true, want: ErrMalformed},
		{name: "chunk without CRLF", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", bodyErr: true, want: ErrMalformed},
		{name: "chunk line with bare LF", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", bodyErr: true, want: ErrMalformed},
		{name: "bad trailer", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-A b\r\n\r\n", bodyErr: true, want: ErrMalformed},
		{name: "truncated chunked body", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", bodyErr: true, want: io.ErrUnexpectedEOF},
		{name: "truncated content-length body", resp: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", bodyErr: true, want: io.ErrUnexpectedEOF},
		{name: "truncated head", resp: "HTTP/1.1 200 OK\r\nContent-Le", want: io.ErrUnexpectedEOF},
		{name: "closed without a byte", resp: "", want: io.EOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkNoLeaks(t)
			srv := startRaw(t, answer(tc.resp, true))
			c := New(Config{})
			defer c.CloseIdleConnections()
			resp, _, err := get(t, c, http.MethodGet, srv.url("/"))
			if (resp != nil) != tc.bodyErr {
				t.Fatalf("response %v, error %v; want the error in the body: %v", resp != nil, err, tc.bodyErr)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
}

func TestTooManyHeaders(t *testing.T) {
	srv := startRaw(t, answer("HTTP/1.1 200 OK\r\n"+strings.Repeat("X-A: b\r\n", 11)+"\r\n", true))
	c := New(Config{MaxHeaders: 10})
	defer c.CloseIdleConnections()
	if _, _, err := get(t, c, http.MethodGet, srv.url("/")); !errors.Is(err, ErrMalformed) {
		t.Fatalf("error %v, want ErrMalformed", err)
	}
}

func TestRequestWriting(t *testing.T) {
	tests := []struct {
		name  string
		build func() *http.Request
		want  []string // lines of the head, in any order after the first
		body  string
	}{
		{name: "get with host and query", build: func() *http.Request {
			r, _ := http.NewRequest("GET", "http://ADDR/a%20b/c?x=1&y=%2F", nil)
			r.Host = "public.example"
			r.Header = http.Header{"Accept": {"*/*"}, "X-Multi": {"1", "2"}}
			return r
		}, want: []string{"GET /a%20b/c?x=1&y=%2F HTTP/1.1", "Host: public.example", "Accept: */*", "X-Multi: 1", "X-Multi: 2"}},
		{name: "post without body", build: func() *http.Request {
			r, _ := http.NewRequest("POST", "http://ADDR/", nil)
			return r
		}, want: []string{"POST / HTTP/1.1", "Content-Length: 0"}},
		{name: "content-length body", build: func() *http.Request {
			r, _ := http.NewRequest("PUT", "http://ADDR/p", strings.NewReader("hello"))
			r.Header = http.Header{"Content-Length": {"99"}, "Transfer-Encoding": {"chunked"}}
			return r
		}, want: []string{"PUT /p HTTP/1.1", "Content-Length: 5"}, body: "hello"},
		{name: "unknown length is chunked", build: func() *http.Request {
			r, _ := http.NewRequest("POST", "http://ADDR/", io.NopCloser(strings.NewReader("hello")))
			r.ContentLength = -1
			return r
		}, want: []string{"POST / HTTP/1.1", "Transfer-Encoding: chunked"}, body: "5\r\nhello\r\n0\r\n\r\n"},
		{name: "upgrade headers pass", build: func() *http.Request {
			r, _ := http.NewRequest("GET", "http://ADDR/ws", nil)
			r.Header = http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}
			return r
		}, want: []string{"GET /ws HTTP/1.1", "Connection: Upgrade", "Upgrade: websocket"}},
		{name: "close", build: func() *http.Request {
			r, _ := http.NewRequest("GET", "http://ADDR/", nil)
			r.Close = true
			return r
		}, want: []string{"GET / HTTP/1.1", "Connection: close"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan string, 1)
			srv := startRaw(t, func(c net.Conn, br *bufio.Reader) {
				var b bytes.Buffer
				for !bytes.HasSuffix(b.Bytes(), []byte("\r\n\r\n")) {
					x, err := br.ReadByte()
					if err != nil {
						return
					}
					b.WriteByte(x)
				}
				if tc.body != "" {
					rest := make([]byte, len(tc.body))
					io.ReadFull(br, rest)
					b.Write(rest)
				}
				got <- b.String()
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
			})
			req := tc.build()
			req.URL.Host = srv.ln.Addr().String()
			c := New(Config{})
			defer c.CloseIdleConnections()
			resp, err := c.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			raw := <-got
			head, body, _ := strings.Cut(raw, "\r\n\r\n")
			lines := strings.Split(head, "\r\n")
			if lines[0] != tc.want[0] {
				t.Errorf("request line %q, want %q", lines[0], tc.want[0])
			}
			for _, w := range tc.want[1:] {
				if !strings.Contains(head+"\r\n", "\r\n"+w+"\r\n") {
					t.Errorf("head lacks %q:\n%s", w, head)
				}
			}
			if strings.Count(head, "Content-Length")+strings.Count(head, "Transfer-Encoding") > 1 {
				t.Errorf("duplicate framing headers:\n%s", head)
			}
			if body != tc.body {
				t.Errorf("body %q, want %q", body, tc.body)
			}
		})
	}
}

func TestInvalidRequest(t *testing.T) {
	srv := startRaw(t, answer("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false))
	tests := []struct {
		name string
		edit func(r *http.Request)
	}{
		{"CRLF in value", func(r *http.Request) { r.Header.Set("X-A", "b\r\nX-Injected: 1") }},
		{"NUL in value", func(r *http.Request) { r.Header["X-A"] = []string{"b\x00"} }},
		{"space in name", func(r *http.Request) { r.Header["X A"] = []string{"b"} }},
		{"CRLF in host", func(r *http.Request) { r.Host = "a\r\nb" }},
		{"bad method", func(r *http.Request) { r.Method = "GE T" }},
		{"https", func(r *http.Request) { r.URL.Scheme = "https" }},
	}
	c := New(Config{})
	defer c.CloseIdleConnections()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.url("/"), nil)
			tc.edit(req)
			if resp, err := c.RoundTrip(req); err == nil {
				resp.Body.Close()
				t.Fatal("no error")
			}
		})
	}
}

// countingServer is a net/http server that counts new connections and
// closed ones.
func countingServer(t *testing.T, h http.Handler) (url string, opened, closed *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opened, closed = new(atomic.Int32), new(atomic.Int32)
	srv := &http.Server{Handler: h, ConnState: func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			opened.Add(1)
		case http.StateClosed, http.StateHijacked:
			closed.Add(1)
		}
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String(), opened, closed
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func okHandler(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }

func TestReuse(t *testing.T) {
	checkNoLeaks(t)
	url, opened, _ := countingServer(t, http.HandlerFunc(okHandler))
	c := New(Config{})
	defer c.CloseIdleConnections()
	for i := range 20 {
		if _, body, err := get(t, c, http.MethodGet, url+"/"+strconv.Itoa(i)); err != nil || string(body) != "ok" {
			t.Fatalf("request %d: %q %v", i, body, err)
		}
	}
	if n := opened.Load(); n != 1 {
		t.Fatalf("%d connections for 20 sequential requests, want 1", n)
	}
}

func TestPoolLimit(t *testing.T) {
	checkNoLeaks(t)
	release := make(chan struct{})
	var inFlight atomic.Int32
	url, opened, closed := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inFlight.Add(1)
		<-release
		io.WriteString(w, "ok")
	}))
	c := New(Config{MaxIdlePerHost: 2})
	defer c.CloseIdleConnections()
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if _, _, err := get(t, c, http.MethodGet, url); err != nil {
				t.Error(err)
			}
		})
	}
	waitFor(t, "5 requests in flight", func() bool { return inFlight.Load() == 5 })
	close(release)
	wg.Wait()
	if n := opened.Load(); n != 5 {
		t.Fatalf("%d connections, want 5", n)
	}
	waitFor(t, "3 connections closed", func() bool { return closed.Load() == 3 })
	c.mu.Lock()
	idle := c.nidle
	c.mu.Unlock()
	if idle != 2 {
		t.Fatalf("%d idle connections, want 2", idle)
	}
	c.CloseIdleConnections()
	waitFor(t, "all connections closed", func() bool { return closed.Load() == 5 })
}

// TestRetire: retiring an address closes its idle connections at once,
// lets a request in flight finish and closes its connection afterwards
// instead of pooling it, and leaves other addresses' connections alone;
// Readmit pools again.
func TestRetire(t *testing.T) {
	checkNoLeaks(t)
	release := make(chan struct{})
	var inFlight atomic.Int32
	slow := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			inFlight.Add(1)
			<-release
		}
		io.WriteString(w, "ok")
	}
	gone, openedGone, closedGone := countingServer(t, http.HandlerFunc(slow))
	other, _, closedOther := countingServer(t, http.HandlerFunc(okHandler))
	c := New(Config{})
	defer c.CloseIdleConnections()
	done := make(chan error, 1)
	go func() {
		_, body, err := get(t, c, http.MethodGet, gone+"/slow")
		if err == nil && string(body) != "ok" {
			err = fmt.Errorf("body %q", body)
		}
		done <- err
	}()
	waitFor(t, "a request in flight", func() bool { return inFlight.Load() == 1 })
	// A second connection to the address, and one to another, go idle.
	for _, u := range []string{gone, other} {
		if _, _, err := get(t, c, http.MethodGet, u+"/"); err != nil {
			t.Fatal(err)
		}
	}
	c.Retire(strings.TrimPrefix(gone, "http://"))
	waitFor(t, "the idle connection closed", func() bool { return closedGone.Load() == 1 })
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("request in flight: %v", err)
	}
	waitFor(t, "the in-flight connection closed after its exchange", func() bool { return closedGone.Load() == 2 })
	if n := closedOther.Load(); n != 0 {
		t.Errorf("%d connections of another address closed", n)
	}
	c.Readmit(strings.TrimPrefix(gone, "http://"))
	for range 3 {
		if _, _, err := get(t, c, http.MethodGet, gone+"/"); err != nil {
			t.Fatal(err)
		}
	}
	if n := openedGone.Load(); n != 3 {
		t.Errorf("%d connections opened, want 3 (the readmitted address pools again)", n)
	}
}

func TestIdleTimeout(t *testing.T) {
	t.Run("janitor closes idle connections", func(t *testing.T) {
		checkNoLeaks(t)
		url, opened, closed := countingServer(t, http.HandlerFunc(okHandler))
		c := New(Config{IdleTimeout: 20 * time.Millisecond})
		defer c.CloseIdleConnections()
		if _, _, err := get(t, c, http.MethodGet, url); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the idle connection to close", func() bool { return closed.Load() == 1 })
		// The janitor stops with no idle connection left.
		waitFor(t, "the janitor to stop", func() bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.jstop == nil
		})
		if _, _, err := get(t, c, http.MethodGet, url); err != nil {
			t.Fatal(err)
		}
		if n := opened.Load(); n != 2 {
			t.Fatalf("%d connections, want 2", n)
		}
	})
	t.Run("expired connection is not reused", func(t *testing.T) {
		checkNoLeaks(t)
		url, opened, closed := countingServer(t, http.HandlerFunc(okHandler))
		var now atomic.Int64
		now.Store(time.Now().UnixNano())
		c := New(Config{IdleTimeout: time.Hour, Now: func() time.Time { return time.Unix(0, now.Load()) }})
		defer c.CloseIdleConnections()
		for _, advance := range []time.Duration{0, 59 * time.Minute, 61 * time.Minute} {
			now.Add(int64(advance))
			if _, _, err := get(t, c, http.MethodGet, url); err != nil {
				t.Fatal(err)
			}
		}
		// The second request reused the connection (59 min idle); the
		// third found it expired (61 min) and dialed.
		if n := opened.Load(); n != 2 {
			t.Fatalf("%d connections, want 2", n)
		}
		waitFor(t, "the expired connection to close", func() bool { return closed.Load() == 1 })
	})
}

func TestStaleRetry(t *testing.T) {
	// The server answers one request per connection and closes it without
	// saying so: every reuse meets a closed connection.
	tests := []struct {
		name    string
		method  string
		body    func() (io.ReadCloser, func() (io.ReadCloser, error))
		header  http.Header
		retried bool
	}{
		{name: "get", method: "GET", retried: true},
		{name: "put with GetBody", method: "PUT", retried: true, body: func() (io.ReadCloser, func() (io.ReadCloser, error)) {
			return io.NopCloser(strings.NewReader("x")), func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("x")), nil }
		}},
		{name: "put without GetBody", method: "PUT", retried: false, body: func() (io.ReadCloser, func() (io.ReadCloser, error)) {
			return io.NopCloser(strings.NewReader("x")), nil
		}},
		{name: "post is not idempotent", method: "POST", retried: false},
		// http1.Idempotent, the retry loop's rule too.
		{name: "post with Idempotency-Key", method: "POST", header: http.Header{"Idempotency-Key": {"k"}}, retried: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkNoLeaks(t)
			closedConn := make(chan struct{}, 8)
			srv := startRaw(t, func(c net.Conn, br *bufio.Reader) {
				if _, err := readRequest(br); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				c.Close()
				closedConn <- struct{}{}
			})
			c := New(Config{})
			defer c.CloseIdleConnections()
			send := func() error {
				req, _ := http.NewRequest(tc.method, srv.url("/"), nil)
				for k, v := range tc.header {
					req.Header[k] = v
				}
				if tc.body != nil {
					req.Body, req.GetBody = tc.body()
					req.ContentLength = 1
				}
				resp, err := c.RoundTrip(req)
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				_, err = io.ReadAll(resp.Body)
				return err
			}
			if err := send(); err != nil {
				t.Fatal(err)
			}
			<-closedConn
			// Let the FIN arrive; the pooled connection is now stale.
			time.Sleep(10 * time.Millisecond)
			err := send()
			if tc.retried && err != nil {
				t.Fatalf("stale connection not retried: %v", err)
			}
			if !tc.retried && err == nil {
				t.Fatal("request retried on a fresh connection, want the error")
			}
			want := int32(1) // the stale connection only
			if tc.retried {
				want = 2
			}
			if n := srv.accepts.Load(); n != want {
				t.Fatalf("%d connections, want %d", n, want)
			}
		})
	}
}

func TestProbeStaleAfterIdle(t *testing.T) {
	checkNoLeaks(t)
	// A connection idle for longer than probeAfter is checked before reuse,
	// so even a POST (never retried) survives a server-side idle close.
	srv := startRaw(t, answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true))
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	c := New(Config{Now: func() time.Time { return time.Unix(0, now.Load()) }})
	defer c.CloseIdleConnections()
	if _, _, err := get(t, c, http.MethodPost, srv.url("/")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the server to close", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.nidle == 1
	})
	time.Sleep(10 * time.Millisecond) // let the FIN arrive
	now.Add(int64(2 * probeAfter))
	if _, _, err := get(t, c, http.MethodPost, srv.url("/")); err != nil {
		t.Fatalf("POST on a probed connection: %v", err)
	}
	if n := srv.accepts.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

func TestCancel(t *testing.T) {
	t.Run("before", func(t *testing.T) {
		checkNoLeaks(t)
		srv := startRaw(t, answer("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false))
		c := New(Config{})
		defer c.CloseIdleConnections()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.url("/"), nil)
		if _, err := c.RoundTrip(req); !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
		if n := srv.accepts.Load(); n != 0 {
			t.Fatalf("%d connections, want none", n)
		}
	})
	// Cancelled at once the watcher aborts the exchange itself; cancelled
	// later it has handed the exchange over to context.AfterFunc.
	for _, tc := range []struct {
		name string
		wait time.Duration
	}{
		{"waiting for the head", 0},
		{"waiting for the head, handed over to AfterFunc", (watchPromote + 4) * watchTick},
	} {
		for _, kind := range []string{"context.WithCancel", "AfterFunc of its own"} {
			name, wait := tc.name+", "+kind, tc.wait
			t.Run(name, func(t *testing.T) {
				checkNoLeaks(t)
				got := make(chan struct{})
				srv := startRaw(t, func(c net.Conn, br *bufio.Reader) {
					readRequest(br)
					close(got)
					io.Copy(io.Discard, br) // never answer
				})
				c := New(Config{})
				defer c.CloseIdleConnections()
				ctx, cancel := context.WithCancel(context.Background())
				if kind != "context.WithCancel" {
					// As the gateway's requests: h1server's request context,
					// which binds callbacks itself, in an exchange.Context.
					rc := &reqCtx{}
					ctx, cancel = &exchange.Context{Context: rc}, rc.cancel
				}
				cancelled := make(chan time.Time, 1)
				go func() {
					<-got
					time.Sleep(wait)
					cancelled <- time.Now()
					cancel()
				}()
				req, _ := http.NewRequestWithContext(ctx, "GET", srv.url("/"), nil)
				if _, err := c.RoundTrip(req); !errors.Is(err, context.Canceled) {
					t.Fatalf("error %v, want context.Canceled", err)
				}
				if d := time.Since(<-cancelled); d > 2*time.Second {
					t.Fatalf("cancellation took %v", d)
				}
			})
		}
	}
	t.Run("reading the body", func(t *testing.T) {
		checkNoLeaks(t)
		srv := startRaw(t, func(c net.Conn, br *bufio.Reader) {
			readRequest(br)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
			io.Copy(io.Discard, br)
		})
		c := New(Config{})
		defer c.CloseIdleConnections()
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.url("/"), nil)
		resp, err := c.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		buf := make([]byte, 10)
		if _, err := io.ReadFull(resp.Body, buf); err != nil {
			t.Fatal(err)
		}
		cancel()
		if _, err := resp.Body.Read(buf); !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
		c.mu.Lock()
		idle := c.nidle
		c.mu.Unlock()
		if idle != 0 {
			t.Fatal("a cancelled connection was pooled")
		}
	})
}

func TestCloseBeforeEOF(t *testing.T) {
	tests := []struct {
		name   string
		resp   string
		reused bool
	}{
		{"small buffered rest is drained", "HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n01234567890123456789", true},
		{"large rest closes", "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat("x", 100000), false},
		{"chunked rest closes", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nhello\r\n0\r\n\r\n", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkNoLeaks(t)
			srv := startRaw(t, answer(tc.resp, false))
			c := New(Config{})
			defer c.CloseIdleConnections()
			for range 2 {
				req, _ := http.NewRequest("GET", srv.url("/"), nil)
				resp, err := c.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				time.Sleep(5 * time.Millisecond) // let the rest arrive
				resp.Body.Read(make([]byte, 3))
				resp.Body.Close()
			}
			want := int32(2)
			if tc.reused {
				want = 1
			}
			if n := srv.accepts.Load(); n != want {
				t.Fatalf("%d connections, want %d", n, want)
			}
		})
	}
}

func TestUpgrade(t *testing.T) {
	checkNoLeaks(t)
	srv := startRaw(t, func(c net.Conn, br *bufio.Reader) {
		head, err := readRequest(br)
		if err != nil || !strings.Contains(head, "Connection: Upgrade\r\n") {
			return
		}
		// The first upgraded bytes come in the same write as the head.
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhello ")
		io.Copy(c, br)
	})
	c := New(Config{})
	defer c.CloseIdleConnections()
	req, _ := http.NewRequest("GET", srv.url("/"), nil)
	req.Header = http.Header{"Connection": {"Upgrade"}, "Upgrade": {"echo"}}
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	rw, ok := resp.Body.(io.ReadWriteCloser)
	if resp.StatusCode != 101 || !ok {
		t.Fatalf("status %d, body %T", resp.StatusCode, resp.Body)
	}
	defer rw.Close()
	if _, err := io.WriteString(rw, "world"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len("hello world"))
	if _, err := io.ReadFull(rw, buf); err != nil || string(buf) != "hello world" {
		t.Fatalf("read %q, %v", buf, err)
	}
	c.mu.Lock()
	idle := c.nidle
	c.mu.Unlock()
	if idle != 0 {
		t.Fatal("an upgraded connection was pooled")
	}
}

// pattern is a deterministic body of n bytes.
type pattern struct{ n, off int64 }

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.n-p.off)]
	for i := range b {
		b[i] = byte((p.off + int64(i)) * 7 % 251)
	}
	p.off += int64(len(b))
	return len(b), nil
}

func patternSum(n int64) string {
	h := sha256.New()
	io.Copy(h, &pattern{n: n})
	return hex.EncodeToString(h.Sum(nil))
}

func TestLargeBodies(t *testing.T) {
	checkNoLeaks(t)
	const size = 10 << 20
	want := patternSum(size)
	url, opened, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/upload":
			h := sha256.New()
			n, err := io.Copy(h, r.Body)
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			fmt.Fprintf(w, "%d %x %s", n, h.Sum(nil), r.Trailer.Get("X-Sum"))
		case "/download":
			if r.URL.Query().Get("chunked") == "" {
				w.Header().Set("Content-Length", strconv.Itoa(size))
			}
			io.Copy(w, &pattern{n: size})
		}
	}))
	c := New(Config{})
	defer c.CloseIdleConnections()
	t.Run("upload content-length", func(t *testing.T) {
		req, _ := http.NewRequest("PUT", url+"/upload", &pattern{n: size})
		req.ContentLength = size
		resp, err := c.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := string(b); got != fmt.Sprintf("%d %s ", size, want) {
			t.Fatalf("server saw %q", got)
		}
	})
	t.Run("upload chunked with trailers", func(t *testing.T) {
		req, _ := http.NewRequest("PUT", url+"/upload", nil)
		req.Trailer = http.Header{"X-Sum": nil}
		p := &pattern{n: size}
		req.Body = io.NopCloser(readerFunc(func(b []byte) (int, error) {
			n, err := p.Read(b)
			if err == io.EOF {
				req.Trailer.Set("X-Sum", "late-"+want[:8]) // set after the body, as a proxy's inbound trailer is
			}
			return n, err
		}))
		req.ContentLength = -1
		resp, err := c.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := string(b); got != fmt.Sprintf("%d %s late-%s", size, want, want[:8]) {
			t.Fatalf("server saw %q", got)
		}
	})
	for _, q := range []string{"", "?chunked=1"} {
		t.Run("download"+q, func(t *testing.T) {
			req, _ := http.NewRequest("GET", url+"/download"+q, nil)
			resp, err := c.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			n, err := io.Copy(h, resp.Body)
			resp.Body.Close()
			if err != nil || n != size || hex.EncodeToString(h.Sum(nil)) != want {
				t.Fatalf("read %d bytes, %v; sum mismatch", n, err)
			}
		})
	}
	if n := opened.Load(); n != 1 {
		t.Errorf("%d connections, want 1 (every exchange reused it)", n)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(b []byte) (int, error) { return f(b) }

func TestEarlyResponse(t *testing.T) {
	checkNoLeaks(t)
	// The server refuses a large upload without reading it and closes.
	srv := startRaw(t, func(c net.Conn, br *bufio.Reader) {
		for {
			line, err := br.ReadString('\n')
			if err != nil || line == "\r\n" {
				break
			}
		}
		io.WriteString(c, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbig")
		c.(*net.TCPConn).CloseWrite()
		time.Sleep(50 * time.Millisecond)
	})
	c := New(Config{})
	defer c.CloseIdleConnections()
	req, _ := http.NewRequest("PUT", srv.url("/"), &pattern{n: 64 << 20})
	req.ContentLength = 64 << 20
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Skipf("the write error won the race with the early response: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 413 || string(b) != "big" {
		t.Fatalf("got %d %q", resp.StatusCode, b)
	}
}

func TestConcurrent(t *testing.T) {
	checkNoLeaks(t)
	url, _, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path)
	}))
	c := New(Config{MaxIdlePerHost: 4, IdleTimeout: 50 * time.Millisecond})
	defer c.CloseIdleConnections()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				p := fmt.Sprintf("/%d/%d", g, i)
				_, body, err := get(t, c, http.MethodGet, url+p)
				if err != nil || string(body) != p {
					t.Errorf("%s: %q %v", p, body, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestRoundTripDeadline(t *testing.T) {
	checkNoLeaks(t)
	release := make(chan struct{})
	url, opened, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			<-release
		case "/slowbody":
			w.Header().Set("Content-Length", "2")
			w.WriteHeader(http.StatusOK)
			http.NewResponseController(w).Flush()
			time.Sleep(150 * time.Millisecond)
		}
		io.WriteString(w, "ok")
	}))
	defer close(release)
	c := New(Config{})
	defer c.CloseIdleConnections()
	send := func(path string, d time.Duration) (string, error) {
		req, _ := http.NewRequest(http.MethodGet, url+path, nil)
		resp, err := c.RoundTripDeadline(req, time.Now().Add(d))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	t.Run("head in time, deadline lifted for the body and the pooled connection", func(t *testing.T) {
		if body, err := send("/fast", 100*time.Millisecond); err != nil || body != "ok" {
			t.Fatalf("%q %v", body, err)
		}
		time.Sleep(150 * time.Millisecond) // past the first deadline
		if body, err := send("/fast", time.Second); err != nil || body != "ok" {
			t.Fatalf("reused connection: %q %v", body, err)
		}
		if n := opened.Load(); n != 1 {
			t.Fatalf("%d connections, want 1 (reused)", n)
		}
	})
	t.Run("deadline left by a buffered body, cleared for an exchange without one", func(t *testing.T) {
		if body, err := send("/fast", 50*time.Millisecond); err != nil || body != "ok" {
			t.Fatalf("%q %v", body, err)
		}
		time.Sleep(100 * time.Millisecond) // past the deadline left on the connection
		req, _ := http.NewRequest(http.MethodGet, url+"/fast", nil)
		resp, err := c.RoundTrip(req)
		if err != nil {
			t.Fatalf("reused connection: %v", err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(b) != "ok" {
			t.Fatalf("reused connection: %q %v", b, err)
		}
		if n := opened.Load(); n != 1 {
			t.Fatalf("%d connections, want 1 (reused)", n)
		}
	})
	t.Run("body arriving after the deadline", func(t *testing.T) {
		if body, err := send("/slowbody", 50*time.Millisecond); err != nil || body != "ok" {
			t.Fatalf("%q %v", body, err)
		}
	})
	t.Run("head late", func(t *testing.T) {
		start := time.Now()
		_, err := send("/slow", 50*time.Millisecond)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("err %v, want a deadline error", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("took %v", d)
		}
	})
}

func TestRelease(t *testing.T) {
	checkNoLeaks(t)
	url, _, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Path", r.URL.Path)
		io.WriteString(w, r.URL.Path)
	}))
	c := New(Config{})
	defer c.CloseIdleConnections()
	var kept []string
	for i := range 5 {
		path := "/" + strconv.Itoa(i)
		req, _ := http.NewRequest(http.MethodGet, url+path, nil)
		resp, err := c.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			c.Release(resp) // body in use: a no-op
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(body) != path || resp.Header.Get("X-Path") != path || len(resp.Header["X-Path"]) != 1 {
			t.Fatalf("request %d: %q %v %v", i, body, resp.Header, err)
		}
		kept = append(kept, resp.Header["X-Path"]...) // values outlive the release
		c.Release(resp)
	}
	for i, v := range kept {
		if v != "/"+strconv.Itoa(i) {
			t.Fatalf("kept value %d = %q", i, v)
		}
	}
}

func TestWatch(t *testing.T) {
	newConn := func(t *testing.T) *conn {
		c1, c2 := net.Pipe()
		t.Cleanup(func() { c1.Close(); c2.Close() })
		cn := &conn{nc: c1, shard: newShard()}
		cn.abortF = cn.abort
		return cn
	}
	// aborted reports whether a read on cn fails at once with a timeout,
	// as it does after abort.
	aborted := func(cn *conn) bool {
		var one [1]byte
		_, err := cn.nc.Read(one[:])
		var ne net.Error
		return errors.As(err, &ne) && ne.Timeout()
	}
	waitAborted := func(t *testing.T, cn *conn) {
		t.Helper()
		done := make(chan bool, 1)
		go func() { done <- aborted(cn) }()
		select {
		case ok := <-done:
			if !ok {
				t.Fatal("read ended without the abort's timeout")
			}
		case <-time.After(2 * time.Second):
			cn.abort()
			t.Fatal("the connection was not aborted")
		}
	}
	tests := []struct {
		name     string
		early    bool // the context ends before watch
		handOver bool // wait for the hand-over to context.AfterFunc
		cancel   bool // the context ends before unwatch
		wantOK   bool
	}{
		{name: "ends before its context", wantOK: true},
		{name: "ends after the hand-over", handOver: true, wantOK: true},
		{name: "context ended before", early: true, cancel: true},
		{name: "context ends while listed", cancel: true},
		{name: "context ends after the hand-over", handOver: true, cancel: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkNoLeaks(t)
			cn := newConn(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.early {
				cancel()
			}
			cn.watch(ctx)
			if tc.handOver {
				waitFor(t, "the hand-over", func() bool {
					cn.shard.mu.Lock()
					defer cn.shard.mu.Unlock()
					return cn.w.stop != nil
				})
			}
			if tc.cancel {
				cancel()
				waitAborted(t, cn)
			}
			if ok := cn.unwatch(); ok != tc.wantOK {
				t.Fatalf("unwatch = %v, want %v", ok, tc.wantOK)
			}
			if cn.w.pos != 0 || cn.w.stop != nil || cn.w.ctx != nil {
				t.Fatalf("watch not reset: %+v", cn.w)
			}
		})
	}
}

func TestCheckKey(t *testing.T) {
	for _, k := range []string{"", "Content-Type", "content-type", "CONTENT-TYPE", "Content-type", "X-A", "x-a",
		"X--A", "-A", "A-", "0a", "0A", "Www-Authenticate", "WWW-Authenticate", "A_b", "A b", "A:b", "Ä", "Te", "TE"} {
		valid, canonical := checkKey(k)
		if valid != http1.ValidToken(k) {
			t.Errorf("checkKey(%q) valid = %v, validToken %v", k, valid, !valid)
		}
		if valid && canonical != (textproto.CanonicalMIMEHeaderKey(k) == k) {
			t.Errorf("checkKey(%q) canonical = %v, textproto says %q", k, canonical, textproto.CanonicalMIMEHeaderKey(k))
		}
	}
	for _, tc := range []struct{ in, want string }{{"", ""}, {" \t", ""}, {" a b\t", "a b"}, {"a", "a"}, {"\ta \t", "a"}} {
		if got := http1.TrimOWS(tc.in); got != tc.want {
			t.Errorf("trimOWS(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// reqCtx stands in for the servers' request contexts: their
// httpcore.Ctx, a context that binds callbacks itself (AfterFunc), with a
// done channel made on demand.
type reqCtx struct{ httpcore.Ctx }

func (c *reqCtx) Value(any) any { return nil }

func (c *reqCtx) cancel() { c.Cancel() }
