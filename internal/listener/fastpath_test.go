package listener

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rampart-gw/rampart/internal/config"
)

// The tests in this file drive the fast path (h1server.Server, the default
// for plain listeners) and net/http behind the guard (Config.NetHTTP) with
// the same raw bytes over real sockets, and compare what the client reads
// and what the handler sees.

// ioTimeout bounds every client read and write: generous, so that a loaded
// machine does not make the tests flaky, and finite, so that a hang fails.
const ioTimeout = 10 * time.Second

// noLeaks checks, after everything else the test registered has been
// cleaned up, that no goroutine the test started is left. net/http lingers
// up to 500 ms in closeWriteAndWait after closing a connection on a failed
// or unread body; that goroutine ends by itself.
func noLeaks(t *testing.T) {
	t.Helper()
	opts := []goleak.Option{
		goleak.IgnoreAnyFunction("net/http.(*conn).closeWriteAndWait"),
		goleak.IgnoreCurrent(),
	}
	t.Cleanup(func() { goleak.VerifyNone(t, opts...) })
}

// observed is what a handler saw of a request.
type observed struct {
	Method, Path, RawPath, RawQuery, RequestURI, Host string
	Header                                            http.Header
	ContentLength                                     int64
	Close                                             bool
	Proto                                             string
	ProtoMajor, ProtoMinor                            int
	RemoteHost                                        string
	TLS                                               bool
	Body                                              string
	BodyErr                                           string
	Note                                              string // what the handler reports after it acted
}

// recorder keeps what the handler observed, in order.
type recorder struct {
	mu   sync.Mutex
	seen []*observed
}

func (rc *recorder) add(o *observed) {
	rc.mu.Lock()
	rc.seen = append(rc.seen, o)
	rc.mu.Unlock()
}

func (rc *recorder) note(o *observed, s string) {
	rc.mu.Lock()
	o.Note = s
	rc.mu.Unlock()
}

func (rc *recorder) snapshot() []observed {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make([]observed, len(rc.seen))
	for i, o := range rc.seen {
		out[i] = *o
	}
	return out
}

func summarize(s string) string {
	if len(s) <= 64 {
		return s
	}
	return fmt.Sprintf("%q...(%d bytes)", s[:32], len(s))
}

// bodyPaths are the routes whose handler does not read the request body
// before it answers.
func readsBody(path string) bool {
	switch path {
	case "/unread", "/partial-read", "/flush-then-read":
		return false
	}
	return true
}

// diffHandler serves the routes of the differential test.
func diffHandler(rc *recorder) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/probe" {
			io.WriteString(w, "probe")
			return
		}
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		o := &observed{
			Method: r.Method, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery,
			RequestURI: r.RequestURI, Host: r.Host, Header: r.Header.Clone(),
			ContentLength: r.ContentLength, Close: r.Close, Proto: r.Proto,
			ProtoMajor: r.ProtoMajor, ProtoMinor: r.ProtoMinor, RemoteHost: host,
			// net/http behind the guard cannot fill r.TLS (TLS runs
			// beneath the guard); the gateway's handler restores it from
			// TLSState, as here. The fast path sets it itself.
			TLS: r.TLS != nil || TLSState(r.Context()) != nil,
		}
		if readsBody(r.URL.Path) {
			b, err := io.ReadAll(r.Body)
			o.Body = summarize(string(b))
			if err != nil {
				o.BodyErr = err.Error()
			}
		}
		rc.add(o)
		h := w.Header()
		switch r.URL.Path {
		case "/empty":
		case "/small":
			io.WriteString(w, "small body")
		case "/html":
			io.WriteString(w, "<!DOCTYPE html><html><body>hi</body></html>")
		case "/mid":
			w.Write(make([]byte, 3000))
		case "/large":
			w.Write([]byte(strings.Repeat("0123456789", 1000)))
		case "/large-pieces":
			for i := range 100 {
				fmt.Fprintf(w, "%099d\n", i)
			}
		case "/cl":
			h.Set("Content-Length", "5")
			io.WriteString(w, "hello")
		case "/cl-typed":
			h.Set("Content-Length", "5")
			h.Set("Content-Type", "text/x-test")
			io.WriteString(w, "hello")
		case "/cl-short":
			h.Set("Content-Length", "10")
			io.WriteString(w, "hello")
		case "/cl-long":
			h.Set("Content-Length", "3")
			_, err := io.WriteString(w, "hello")
			rc.note(o, fmt.Sprint(err))
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/204-cl":
			h.Set("Content-Length", "0")
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			h.Set("Etag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		case "/304-ct":
			h.Set("Etag", `"v1"`)
			h.Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusNotModified)
		case "/head":
			io.WriteString(w, "head body!")
		case "/early":
			h.Set("Link", "</style.css>; rel=preload; as=style")
			w.WriteHeader(http.StatusEarlyHints)
			h.Set("X-Final", "yes")
			io.WriteString(w, "after hints")
		case "/trailer":
			h.Set("Trailer", "X-Sum, X-Count")
			io.WriteString(w, "body with trailers")
			h.Set("X-Sum", "abc")
			h.Set("X-Count", "1")
		case "/trailer-prefix-flush":
			io.WriteString(w, "streamed")
			w.(http.Flusher).Flush()
			h.Set(http.TrailerPrefix+"X-Late", "late")
		case "/trailer-prefix-late":
			io.WriteString(w, "small")
			h.Set(http.TrailerPrefix+"X-Late", "late")
		case "/trailer-prefix-early":
			h.Set(http.TrailerPrefix+"X-Early", "early")
			io.WriteString(w, "small")
		case "/flush":
			for i := range 3 {
				fmt.Fprintf(w, "part %d;", i)
				w.(http.Flusher).Flush()
			}
		case "/abort":
			panic(http.ErrAbortHandler)
		case "/abort-after-flush":
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		case "/unread":
			io.WriteString(w, "did not read")
		case "/partial-read":
			b := make([]byte, 10)
			n, _ := io.ReadFull(r.Body, b)
			rc.note(o, string(b[:n]))
			io.WriteString(w, "read some")
		case "/flush-then-read":
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			b, err := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%d %v", len(b), err)
		case "/content-encoding":
			h.Set("Content-Encoding", "x-custom")
			io.WriteString(w, "<html>not sniffed</html>")
		case "/status-custom":
			w.WriteHeader(599)
			io.WriteString(w, "odd")
		case "/header-newline":
			h.Set("X-Bad", "a\r\nInjected: yes")
			h["bad name"] = []string{"x"}
			io.WriteString(w, "ok")
		case "/multi-value":
			h.Add("Set-Cookie", "a=1")
			h.Add("Set-Cookie", "b=2")
			h.Set("X-Pad", "  padded \t")
			io.WriteString(w, "ok")
		case "/header-after-write":
			io.WriteString(w, "x")
			h.Set("X-After", "too late") // no effect: the header was written
			h.Set("Content-Type", "text/late")
		case "/conn-close":
			h.Set("Connection", "close")
			io.WriteString(w, "bye")
		default:
			io.WriteString(w, "ok "+r.URL.Path)
		}
	})
}

// listen starts a listener for h and stops it (checking for leaked
// goroutines) when the test ends.
func listen(t *testing.T, cfg Config, h http.Handler) *Listener {
	t.Helper()
	if cfg.Address == "" {
		cfg.Address = "127.0.0.1:0"
	}
	if cfg.Name == "" {
		cfg.Name = "test"
	}
	l, err := Listen(cfg, h, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		if err := l.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(ioTimeout):
			t.Errorf("serve did not return after shutdown")
		}
	})
	return l
}

func dial(t *testing.T, l *Listener) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", l.Addr().String(), ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if l.certs != nil {
		tc := tls.Client(c, &tls.Config{ServerName: "localhost", InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		tc.SetDeadline(time.Now().Add(ioTimeout))
		if err := tc.Handshake(); err != nil {
			c.Close()
			t.Fatal(err)
		}
		c = tc
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// response is what the client read of one response.
type response struct {
	Status  int
	Proto   string
	Header  http.Header
	Close   bool // Connection: close (ReadResponse takes it out of Header)
	Body    string
	BodyErr string
	Trailer http.Header
	Interim []interim
}

type interim struct {
	Status int
	Header http.Header
}

// outcome is everything the differential test compares.
type outcome struct {
	Responses []response
	ReadErr   string // reading a response failed before all arrived
	Open      bool   // the connection still serves a request afterwards
	Seen      []observed
}

// requestMethods parses raw as a sequence of requests and returns their
// methods (ReadResponse needs them to know HEAD responses have no body).
func requestMethods(t *testing.T, raw string) []string {
	t.Helper()
	br := bufio.NewReader(strings.NewReader(raw))
	var methods []string
	for {
		// The guard skips empty lines before a request line; so does
		// this count.
		for {
			b, err := br.Peek(2)
			if err != nil || string(b) != "\r\n" {
				break
			}
			br.Discard(2)
		}
		if _, err := br.Peek(1); err == io.EOF {
			return methods
		}
		req, err := http.ReadRequest(br)
		if err != nil {
			t.Fatalf("test case: raw request %d: %v", len(methods)+1, err)
		}
		io.Copy(io.Discard, req.Body)
		methods = append(methods, req.Method)
	}
}

// readResponses reads one response per method from br.
func readResponses(br *bufio.Reader, methods []string) ([]response, error) {
	var out []response
	for _, m := range methods {
		var inter []interim
		for {
			resp, err := http.ReadResponse(br, &http.Request{Method: m})
			if err != nil {
				return out, err
			}
			if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
				inter = append(inter, interim{resp.StatusCode, resp.Header})
				continue
			}
			b, err := io.ReadAll(resp.Body)
			resp.Header.Del("Date")
			if resp.Header.Get("X-Request-Id") != "" {
				resp.Header.Set("X-Request-Id", "(random)") // the guard's refusals
			}
			rr := response{
				Status: resp.StatusCode, Proto: resp.Proto, Header: resp.Header, Close: resp.Close,
				Body:    summarize(requestID.ReplaceAllString(string(b), "(random)")),
				Trailer: resp.Trailer, Interim: inter,
			}
			if err != nil {
				rr.BodyErr = err.Error()
			}
			// A chunked response's Transfer-Encoding is moved out of
			// Header by ReadResponse; keep it visible.
			if len(resp.TransferEncoding) > 0 {
				rr.Header["X-Test-Transfer-Encoding"] = resp.TransferEncoding
			}
			out = append(out, rr)
			if err != nil {
				return out, err
			}
			break
		}
	}
	return out, nil
}

// exchange sends each step of raw in turn (each after the responses to
// the previous one were read), then probes whether the connection is still
// usable.
func exchange(t *testing.T, l *Listener, rc *recorder, steps []string) outcome {
	t.Helper()
	c := dial(t, l)
	c.SetDeadline(time.Now().Add(4 * ioTimeout))
	br := bufio.NewReader(c)
	var out outcome
	var wg sync.WaitGroup
	defer wg.Wait()
	defer c.Close()
	for i, raw := range steps {
		if i > 0 {
			// Long enough for the fast path to park the connection
			// (its hot wait starts at 5 ms), so keep-alive sequences
			// cover waking up too.
			time.Sleep(30 * time.Millisecond)
		}
		methods := requestMethods(t, raw)
		// Written in the background: a server that does not read a large
		// body must not dead-lock the client.
		wg.Add(1)
		go func() {
			defer wg.Done()
			io.WriteString(c, raw)
		}()
		resps, err := readResponses(br, methods)
		out.Responses = append(out.Responses, resps...)
		if err != nil {
			out.ReadErr = errClass(err)
			out.Seen = rc.snapshot()
			return out
		}
	}
	if _, err := io.WriteString(c, "GET /probe HTTP/1.1\r\nHost: probe\r\n\r\n"); err == nil {
		resp, err := http.ReadResponse(br, nil)
		if err == nil {
			b, err := io.ReadAll(resp.Body)
			out.Open = err == nil && string(b) == "probe"
		}
	}
	out.Seen = rc.snapshot()
	return out
}

var requestID = regexp.MustCompile(`[0-9a-f]{32}`)

// errClass maps read errors to what a client can tell apart.
func errClass(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "EOF"
	case isReset(err):
		return "EOF" // a reset after the last response: the same to a client
	case errors.Is(err, net.ErrClosed):
		return "closed"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return err.Error()
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

type diffCase struct {
	name   string
	steps  []string
	limits config.Limits
	// adjust removes a documented, legitimate difference from both
	// outcomes before they are compared (the comment at the case says
	// why). nil: they must be identical.
	adjust func(fast, std *outcome)
	// check, when set, asserts something both outcomes must hold.
	check func(t *testing.T, o outcome)
}

func get(path string, fields ...string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: example.com\r\n" + joinFields(fields) + "\r\n"
}

func req(method, path, body string, fields ...string) string {
	return method + " " + path + " HTTP/1.1\r\nHost: example.com\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n" + joinFields(fields) + "\r\n" + body
}

func joinFields(fields []string) string {
	var b strings.Builder
	for _, f := range fields {
		b.WriteString(f)
		b.WriteString("\r\n")
	}
	return b.String()
}

func wantStatus(codes ...int) func(*testing.T, outcome) {
	return func(t *testing.T, o outcome) {
		t.Helper()
		if len(o.Responses) != len(codes) {
			t.Fatalf("got %d responses (read error %q), want %d", len(o.Responses), o.ReadErr, len(codes))
		}
		for i, c := range codes {
			if o.Responses[i].Status != c {
				t.Errorf("response %d: status %d, want %d", i, o.Responses[i].Status, c)
			}
		}
	}
}

func dropHeader(keys ...string) func(fast, std *outcome) {
	return func(fast, std *outcome) {
		for _, o := range []*outcome{fast, std} {
			for i := range o.Responses {
				for _, k := range keys {
					o.Responses[i].Header.Del(k)
				}
			}
		}
	}
}

func diffCases() []diffCase {
	big := strings.Repeat("b", 300<<10) // beyond the 256 KiB the servers discard
	return []diffCase{
		{name: "get", steps: []string{get("/", "User-Agent: t/1", "Accept: */*")}, check: wantStatus(200)},
		{name: "head", steps: []string{"HEAD /head HTTP/1.1\r\nHost: example.com\r\n\r\n"}, check: wantStatus(200)},
		{name: "head-large", steps: []string{"HEAD /large HTTP/1.1\r\nHost: example.com\r\n\r\n"}},
		{name: "head-empty", steps: []string{"HEAD /empty HTTP/1.1\r\nHost: example.com\r\n\r\n"}},
		{name: "head-cl", steps: []string{"HEAD /cl HTTP/1.1\r\nHost: example.com\r\n\r\n"}},
		{name: "query", steps: []string{get("/q?a=1&b=two&c=%20x&&d=%2F+e&f={\"j\":[1]}")}},
		{name: "refused-target", steps: []string{get("/q?d=%zz")}, check: wantStatus(400)},
		{name: "force-query", steps: []string{get("/q?")}},
		{name: "escaped-space", steps: []string{get("/a%20b")}},
		{name: "sub-delim-in-path", steps: []string{get("/a!b/c'd(e)*")}},
		{name: "escaped-slash", steps: []string{get("/a%2Fb/%7Euser?x=%2F")}},
		{name: "double-slash", steps: []string{get("//x//y")}},
		{name: "dot-segments", steps: []string{get("/a/../b/./c")}},
		{name: "host-with-port", steps: []string{"GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n"}},
		{name: "methods", steps: []string{
			req("PUT", "/p", "put") + get("/g") + req("DELETE", "/d", "") +
				req("PATCH", "/pa", "x") + "OPTIONS /o HTTP/1.1\r\nHost: a\r\n\r\n" + req("PURGE", "/cache", ""),
		}, check: wantStatus(200, 200, 200, 200, 200, 200)},
		{name: "post-body", steps: []string{req("POST", "/echo", "hello world", "Content-Type: text/plain")}},
		{name: "post-empty-body", steps: []string{req("POST", "/echo", "")}},
		{name: "pipelined", steps: []string{
			get("/small") + req("POST", "/echo", "first body") + get("/cl") + "HEAD /head HTTP/1.1\r\nHost: h\r\n\r\n" + get("/large"),
		}, check: wantStatus(200, 200, 200, 200, 200)},
		{name: "keep-alive-sequence", steps: []string{
			get("/1"), req("POST", "/2", "body two"), get("/3?x=y"), "HEAD /head HTTP/1.1\r\nHost: h\r\n\r\n", get("/5"),
		}, check: wantStatus(200, 200, 200, 200, 200)},
		{name: "connection-close", steps: []string{get("/", "Connection: close")}},
		{name: "connection-close-token", steps: []string{get("/", "Connection: keep-alive, Close")}},
		{name: "close-mid-pipeline", steps: []string{get("/a") + get("/b", "Connection: close") + get("/never")},
			check: func(t *testing.T, o outcome) {
				if len(o.Seen) != 2 {
					t.Errorf("handler saw %d requests, want 2 (nothing after Connection: close)", len(o.Seen))
				}
			}},
		{name: "leading-empty-lines", steps: []string{"\r\n\r\n" + get("/after-crlf")}},
		{name: "underscore-headers", steps: []string{get("/", "X_Forwarded_For: 6.6.6.6", "X-Forwarded-For: 1.2.3.4", "My_Header: x")}},
		{name: "duplicate-headers", steps: []string{get("/", "Accept: a/b", "Accept: c/d", "X-Dup: 1", "x-dup: 2", "Cookie: a=1", "Cookie: b=2")}},
		{name: "non-canonical-names", steps: []string{
			"GET / HTTP/1.1\r\nhost: example.com\r\nx-foo-bar: 1\r\nCONTENT-TYPE: text/x\r\nuser-agent: u\r\nX-1abc: d\r\nx-api-KEY: k\r\nwww-authenticate: w\r\n\r\n",
		}},
		{name: "odd-values", steps: []string{get("/", "X-Pad: \t padded \t", "X-Empty:", "X-Obs: caf\xc3\xa9", "X-Quote: \"a, b\"")}},
		{name: "many-headers", steps: []string{get("/", func() []string {
			var f []string
			for i := range 40 {
				f = append(f, fmt.Sprintf("X-H%d: %d", i, i))
			}
			return f
		}()...)}},
		{name: "empty-handler", steps: []string{get("/empty")}},
		{name: "small-no-cl", steps: []string{get("/small")}},
		{name: "html-sniffed", steps: []string{get("/html")}},
		// net/http buffers 2048 bytes before it commits to chunking; the
		// fast path holds 4096. A 3000-byte body written by a handler that
		// then returns so gets Content-Length from the fast path and is
		// chunked by net/http: both are valid framings of the same body.
		{name: "mid-body-framing", steps: []string{get("/mid")},
			adjust: dropHeader("Content-Length", "X-Test-Transfer-Encoding")},
		{name: "large-chunked", steps: []string{get("/large")}},
		{name: "large-pieces", steps: []string{get("/large-pieces")}},
		{name: "declared-cl", steps: []string{get("/cl"), get("/cl-typed")}},
		{name: "cl-short", steps: []string{get("/cl-short")},
			check: func(t *testing.T, o outcome) {
				if o.Open {
					t.Error("connection kept after a short body")
				}
			}},
		// A handler writes more than the Content-Length it declared. Both
		// servers fail the Write with ErrContentLength (the note), but
		// net/http then writes nothing of the body and closes, while the
		// fast path sends the declared prefix and keeps the connection: a
		// well-formed response either way for a broken handler.
		{name: "cl-long", steps: []string{get("/cl-long")},
			adjust: func(fast, std *outcome) {
				for _, o := range []*outcome{fast, std} {
					o.ReadErr, o.Open = "", false
					for i := range o.Responses {
						o.Responses[i].Body, o.Responses[i].BodyErr = "", ""
						o.Responses[i].Header.Del("Content-Type")
					}
				}
			},
			check: func(t *testing.T, o outcome) {
				if len(o.Seen) != 1 || o.Seen[0].Note != http.ErrContentLength.Error() {
					t.Errorf("handler's Write error: %+v", o.Seen)
				}
			}},
		{name: "204", steps: []string{get("/204")}},
		{name: "204-with-content-length", steps: []string{get("/204-cl")}},
		{name: "304", steps: []string{get("/304")}},
		{name: "304-with-content-type", steps: []string{get("/304-ct")}},
		{name: "early-hints", steps: []string{get("/early")}},
		{name: "trailers-declared", steps: []string{get("/trailer")}},
		{name: "trailer-prefix-after-flush", steps: []string{get("/trailer-prefix-flush")}},
		{name: "trailer-prefix-small", steps: []string{get("/trailer-prefix-late")}},
		{name: "trailer-prefix-before-write", steps: []string{get("/trailer-prefix-early")}},
		{name: "flush-streaming", steps: []string{get("/flush")}},
		{name: "abort", steps: []string{get("/abort")},
			check: func(t *testing.T, o outcome) {
				if len(o.Responses) != 0 || o.ReadErr != "EOF" {
					t.Errorf("got %d responses, read error %q; want none and EOF", len(o.Responses), o.ReadErr)
				}
			}},
		{name: "abort-after-flush", steps: []string{get("/abort-after-flush")}},
		{name: "unread-small-body", steps: []string{req("POST", "/unread", strings.Repeat("u", 1000)) + get("/next")},
			check: wantStatus(200, 200)},
		{name: "partial-read", steps: []string{req("POST", "/partial-read", strings.Repeat("p", 5000)) + get("/next")},
			check: wantStatus(200, 200)},
		{name: "unread-large-body", steps: []string{req("POST", "/unread", big)},
			check: func(t *testing.T, o outcome) {
				if len(o.Responses) != 1 || !o.Responses[0].Close || o.Open {
					t.Errorf("want one response with Connection: close, then the connection closed; got %+v", o.Responses)
				}
			}},
		{name: "read-large-body", steps: []string{req("POST", "/echo", big) + get("/next")}, check: wantStatus(200, 200)},
		// net/http discards an unread body as soon as the response head is
		// written (without EnableFullDuplex a later Read fails with
		// ErrBodyReadAfterClose); the fast path leaves the body readable
		// until the handler returns, as full duplex would. A handler that
		// depends on either is already non-portable (HTTP/2 is full duplex).
		{name: "flush-then-read", steps: []string{req("POST", "/flush-then-read", "12345")},
			adjust: func(fast, std *outcome) {
				for _, o := range []*outcome{fast, std} {
					if len(o.Responses) == 1 {
						o.Responses[0].Body = "(full duplex or not)"
					}
				}
			}},
		{name: "content-encoding-not-sniffed", steps: []string{get("/content-encoding")}},
		{name: "custom-status", steps: []string{get("/status-custom")}},
		{name: "header-sanitized", steps: []string{get("/header-newline")}},
		{name: "multi-value-response", steps: []string{get("/multi-value")}},
		{name: "header-after-write", steps: []string{get("/header-after-write")}},
		{name: "handler-connection-close", steps: []string{get("/conn-close")}},
		{name: "max-requests", limits: config.Limits{MaxRequestsPerConnection: 3},
			steps: []string{get("/1"), get("/2") + get("/3") + get("/4")},
			check: func(t *testing.T, o outcome) {
				if len(o.Responses) != 3 || !o.Responses[2].Close || o.Open {
					t.Errorf("want 3 responses, the last with Connection: close, then close; got %d (%q)", len(o.Responses), o.ReadErr)
				}
			}},
		// Handed over to net/http by the fast path: the same server
		// answers on both listeners from there on.
		{name: "chunked-handed-over", steps: []string{
			get("/1") + "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n0\r\n\r\n" + get("/3"),
		}, check: wantStatus(200, 200, 200)},
		{name: "expect-continue", steps: []string{
			get("/1"), "POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbody",
		}, check: wantStatus(200, 200)},
		{name: "http10-handed-over", steps: []string{get("/1"), "GET /old HTTP/1.0\r\nHost: a\r\n\r\n"}, check: wantStatus(200, 200)},
		{name: "max-requests-one", limits: config.Limits{MaxRequestsPerConnection: 1}, steps: []string{get("/1")}},
	}
}

// TestFastPathDifferentialTLS runs part of the differential test over TLS,
// which the fast path serves too.
func TestFastPathDifferentialTLS(t *testing.T) {
	noLeaks(t)
	ca := newTestCA(t)
	cert, key := ca.issue(t, t.TempDir(), "server", false, "localhost")
	tlsCfg := &config.ListenerTLS{Certificates: []config.Certificate{{CertFile: cert, KeyFile: key}}}
	some := map[string]bool{
		"get": true, "head": true, "post-body": true, "pipelined": true, "keep-alive-sequence": true,
		"connection-close": true, "unread-small-body": true, "partial-read": true, "read-large-body": true,
		"flush-streaming": true, "early-hints": true, "trailer-prefix-after-flush": true, "abort": true,
		"cl-short": true, "max-requests": true, "chunked-handed-over": true, "expect-continue": true, "underscore-headers": true, "escaped-slash": true,
	}
	for _, tc := range diffCases() {
		if !some[tc.name] {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			fast, _ := runDiff(t, tc, tlsCfg)
			for _, o := range fast.Seen {
				if !o.TLS {
					t.Errorf("fast path: handler saw %s without r.TLS", o.Path)
				}
			}
		})
	}
}

// runDiff runs tc against a fast-path listener and a net/http one (with TLS
// when tlsCfg is set), requires the same outcome from both and runs the
// case's own check on each.
func runDiff(t *testing.T, tc diffCase, tlsCfg *config.ListenerTLS) (fast, std outcome) {
	t.Helper()
	run := func(netHTTP bool) outcome {
		rc := &recorder{}
		l := listen(t, Config{Limits: tc.limits, NetHTTP: netHTTP, TLS: tlsCfg}, diffHandler(rc))
		if (l.fast != nil) == netHTTP {
			t.Fatalf("NetHTTP=%v: fast path %v", netHTTP, l.fast != nil)
		}
		return exchange(t, l, rc, tc.steps)
	}
	fast, std = run(false), run(true)
	if tc.adjust != nil {
		tc.adjust(&fast, &std)
	}
	if !reflect.DeepEqual(fast, std) {
		t.Errorf("fast path and net/http differ:\n%s", diffOutcomes(fast, std))
	}
	if tc.check != nil {
		t.Run("fast", func(t *testing.T) { tc.check(t, fast) })
		t.Run("net-http", func(t *testing.T) { tc.check(t, std) })
	}
	return fast, std
}

// TestFastPathDifferential sends the same bytes to a listener on the fast
// path and to one on net/http and requires the same responses and the same
// requests seen by the handler.
func TestFastPathDifferential(t *testing.T) {
	noLeaks(t)
	for _, tc := range diffCases() {
		t.Run(tc.name, func(t *testing.T) { runDiff(t, tc, nil) })
	}
}

func diffOutcomes(fast, std outcome) string {
	var b strings.Builder
	d := func(what string, f, s any) {
		if !reflect.DeepEqual(f, s) {
			fmt.Fprintf(&b, "  %s:\n    fast:     %#v\n    net/http: %#v\n", what, f, s)
		}
	}
	d("read error", fast.ReadErr, std.ReadErr)
	d("open after", fast.Open, std.Open)
	d("responses", len(fast.Responses), len(std.Responses))
	for i := range min(len(fast.Responses), len(std.Responses)) {
		f, s := fast.Responses[i], std.Responses[i]
		p := fmt.Sprintf("response %d ", i)
		d(p+"status", f.Status, s.Status)
		d(p+"proto", f.Proto, s.Proto)
		d(p+"Connection: close", f.Close, s.Close)
		for _, k := range unionKeys(f.Header, s.Header) {
			d(p+"header "+k, f.Header[k], s.Header[k])
		}
		d(p+"body", f.Body, s.Body)
		d(p+"body error", f.BodyErr, s.BodyErr)
		d(p+"trailer", f.Trailer, s.Trailer)
		d(p+"interim", f.Interim, s.Interim)
	}
	d("requests seen", len(fast.Seen), len(std.Seen))
	for i := range min(len(fast.Seen), len(std.Seen)) {
		f, s := fast.Seen[i], std.Seen[i]
		fv, sv := reflect.ValueOf(f), reflect.ValueOf(s)
		for j := range fv.NumField() {
			name := fv.Type().Field(j).Name
			if name == "Header" {
				for _, k := range unionKeys(f.Header, s.Header) {
					d(fmt.Sprintf("request %d header %s", i, k), f.Header[k], s.Header[k])
				}
				continue
			}
			d(fmt.Sprintf("request %d %s", i, name), fv.Field(j).Interface(), sv.Field(j).Interface())
		}
	}
	if b.Len() == 0 {
		return "(no field differs)"
	}
	return b.String()
}

func unionKeys(a, b http.Header) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// roundTrip writes raw on c and reads one response.
func roundTrip(t *testing.T, c net.Conn, br *bufio.Reader, raw string) (*http.Response, string, error) {
	t.Helper()
	c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(c, raw); err != nil {
		return nil, "", err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitClosed reads from c until the server closes it; false if it is still
// open (or sent data) at the deadline.
func waitClosed(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	var b [1]byte
	_, err := c.Read(b[:])
	return err != nil && errClass(err) != "timeout"
}

// TestFastPathParksIdle checks that idle keep-alive connections hold no
// goroutine on the fast path and are still served when they wake up.
func TestFastPathParksIdle(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("parking needs epoll")
	}
	noLeaks(t)
	const n = 200
	l := listen(t, Config{Limits: config.Limits{IdleTimeout: config.Duration(time.Minute)}}, diffHandler(&recorder{}))
	if l.fast == nil {
		t.Fatal("no fast path")
	}
	// A request on a throw-away connection starts what the server runs
	// once (the poller, the sweeper, net/http's hand-over loop).
	c0 := dial(t, l)
	if _, _, err := roundTrip(t, c0, bufio.NewReader(c0), get("/warm")); err != nil {
		t.Fatal(err)
	}
	c0.Close()
	waitFor(t, ioTimeout, "the warm-up connection to close", func() bool { return l.ActiveConnections() == 0 })
	base := runtime.NumGoroutine()

	conns := make([]net.Conn, n)
	readers := make([]*bufio.Reader, n)
	for i := range conns {
		conns[i] = dial(t, l)
		readers[i] = bufio.NewReader(conns[i])
		resp, body, err := roundTrip(t, conns[i], readers[i], get("/first/"+strconv.Itoa(i)))
		if err != nil || resp.StatusCode != 200 || body != "ok /first/"+strconv.Itoa(i) {
			t.Fatalf("conn %d: first request: %v %q", i, err, body)
		}
	}
	if got := l.ActiveConnections(); got != n {
		t.Fatalf("%d active connections, want %d", got, n)
	}
	// The hot wait is at most 250 ms; the slack is for a loaded machine.
	const slack = 20
	waitFor(t, ioTimeout, "idle connections to give back their goroutines", func() bool {
		return runtime.NumGoroutine() <= base+slack
	})
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := "/second/" + strconv.Itoa(i)
			resp, body, err := roundTrip(t, conns[i], readers[i], get(path))
			if err == nil && (resp.StatusCode != 200 || body != "ok "+path) {
				err = fmt.Errorf("status %d body %q", resp.StatusCode, body)
			}
			if err != nil {
				errs <- fmt.Errorf("conn %d: second request after parking: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, c := range conns {
		c.Close()
	}
	waitFor(t, ioTimeout, "connections to close", func() bool { return l.ActiveConnections() == 0 })
}

// TestTimeouts checks the idle and header timeouts on both paths.
func TestTimeouts(t *testing.T) {
	noLeaks(t)
	const idle = 1500 * time.Millisecond
	for _, tc := range []struct {
		name string
		// before is sent and answered before the wait; partial is sent
		// (and never completed) after it.
		before, partial string
		timeout         time.Duration // the one that applies
	}{
		{name: "idle-after-request", before: get("/"), timeout: idle},
		{name: "partial-first-head", partial: "GET / HTTP/1.1\r\nHost: a\r\n", timeout: idle / 2},
		{name: "nothing-sent", timeout: idle / 2},
		{name: "partial-head-after-request", before: get("/"), partial: "GET /x HTTP/1.1\r\n", timeout: idle / 2},
		{name: "partial-request-line", partial: "GET /pa", timeout: idle / 2},
	} {
		for _, netHTTP := range []bool{false, true} {
			t.Run(tc.name+"/"+serverName(netHTTP), func(t *testing.T) {
				t.Parallel()
				l := listen(t, Config{NetHTTP: netHTTP, Limits: config.Limits{
					IdleTimeout:       config.Duration(idle),
					ReadHeaderTimeout: config.Duration(idle / 2),
				}}, diffHandler(&recorder{}))
				c := dial(t, l)
				br := bufio.NewReader(c)
				if tc.before != "" {
					if _, _, err := roundTrip(t, c, br, tc.before); err != nil {
						t.Fatal(err)
					}
				}
				start := time.Now()
				if tc.partial != "" {
					// Let a fast-path connection park first, so that the
					// partial head wakes it.
					time.Sleep(50 * time.Millisecond)
					start = time.Now()
					io.WriteString(c, tc.partial)
				}
				if !waitClosed(c, ioTimeout) {
					t.Fatal("connection not closed")
				}
				// The fast path sweeps parked connections once a second;
				// net/http's deadlines are exact.
				el := time.Since(start)
				if el < tc.timeout-100*time.Millisecond {
					t.Errorf("closed after %v, before the %v timeout", el, tc.timeout)
				}
				if el > tc.timeout+6*time.Second {
					t.Errorf("closed after %v, long after the %v timeout", el, tc.timeout)
				}
			})
		}
	}
}

// TestFastPathShutdown checks graceful shutdown on both paths: idle,
// parked and half-sent connections are closed at once, an in-flight request
// completes with Connection: close, and Shutdown returns.
func TestShutdown(t *testing.T) {
	noLeaks(t)
	for _, netHTTP := range []bool{false, true} {
		t.Run(serverName(netHTTP), func(t *testing.T) {
			started := make(chan struct{})
			release := make(chan struct{})
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/slow" {
					close(started)
					<-release
				}
				io.WriteString(w, "done "+r.URL.Path)
			})
			// Shutdown waits for a connection with half a head until its
			// header timeout (net/http: for a new connection, 5 s at
			// most); a short one keeps the test short.
			l, err := Listen(Config{Address: "127.0.0.1:0", NetHTTP: netHTTP, Limits: config.Limits{
				ReadHeaderTimeout: config.Duration(2 * time.Second),
				IdleTimeout:       config.Duration(time.Minute),
			}}, h, Deps{})
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan error, 1)
			go func() { served <- l.Serve() }()
			defer l.Close()

			// parked: served one request and went idle long ago.
			parked := dial(t, l)
			if _, _, err := roundTrip(t, parked, bufio.NewReader(parked), get("/p")); err != nil {
				t.Fatal(err)
			}
			// fresh: connected, nothing sent.
			fresh := dial(t, l)
			// partial: half a head.
			partial := dial(t, l)
			io.WriteString(partial, "GET /partial HTTP/1.1\r\n")
			// busy: a request in its handler.
			busy := dial(t, l)
			busyBR := bufio.NewReader(busy)
			io.WriteString(busy, get("/slow"))
			<-started
			waitFor(t, ioTimeout, "all connections accepted", func() bool { return l.ActiveConnections() == 4 })
			time.Sleep(50 * time.Millisecond) // let the idle one park

			shut := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 4*ioTimeout)
				defer cancel()
				shut <- l.Shutdown(ctx)
			}()
			if !waitClosed(parked, ioTimeout) {
				t.Error("idle connection not closed by Shutdown")
			}
			if !waitClosed(fresh, ioTimeout) {
				t.Error("new connection not closed by Shutdown")
			}
			select {
			case err := <-shut:
				t.Fatalf("Shutdown returned %v with a request in flight", err)
			case <-time.After(100 * time.Millisecond):
			}
			// New connections are refused.
			if c, err := net.DialTimeout("tcp", l.Addr().String(), time.Second); err == nil {
				c.SetDeadline(time.Now().Add(ioTimeout))
				io.WriteString(c, get("/late"))
				if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
					t.Errorf("a connection made during Shutdown was served: %d", resp.StatusCode)
				}
				c.Close()
			}
			close(release)
			busy.SetDeadline(time.Now().Add(ioTimeout))
			resp, err := http.ReadResponse(busyBR, nil)
			if err != nil {
				t.Fatalf("in-flight request: %v", err)
			}
			b, _ := io.ReadAll(resp.Body)
			if string(b) != "done /slow" {
				t.Errorf("in-flight body %q", b)
			}
			if !resp.Close {
				t.Errorf("in-flight response during Shutdown has no Connection: close (header %v)", resp.Header)
			}
			if !waitClosed(busy, ioTimeout) {
				t.Error("busy connection not closed after its response")
			}
			if !waitClosed(partial, ioTimeout) {
				t.Error("half-sent connection not closed")
			}
			select {
			case err := <-shut:
				if err != nil {
					t.Errorf("Shutdown: %v", err)
				}
			case <-time.After(2 * ioTimeout):
				t.Fatal("Shutdown did not return")
			}
			select {
			case err := <-served:
				if err != nil {
					t.Errorf("Serve: %v", err)
				}
			case <-time.After(ioTimeout):
				t.Fatal("Serve did not return")
			}
			if n := l.ActiveConnections(); n != 0 {
				t.Errorf("%d connections open after Shutdown", n)
			}
		})
	}
}

// TestClientGone checks that a slow handler's context ends when its client
// disconnects, and that a client that stays (and pipelines its next request
// meanwhile) is served normally.
func TestClientGone(t *testing.T) {
	noLeaks(t)
	for _, netHTTP := range []bool{false, true} {
		t.Run(serverName(netHTTP), func(t *testing.T) {
			started := make(chan string, 4)
			ended := make(chan error, 4)
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/wait":
					started <- r.URL.Path
					select {
					case <-r.Context().Done():
						ended <- r.Context().Err()
					case <-time.After(2 * ioTimeout):
						ended <- nil
					}
				case "/slow":
					started <- r.URL.Path
					d, _ := time.ParseDuration(r.URL.Query().Get("d"))
					select {
					case <-r.Context().Done():
						ended <- r.Context().Err()
						return
					case <-time.After(d):
						ended <- nil
					}
					io.WriteString(w, "slow done")
				default:
					io.WriteString(w, "ok "+r.URL.Path)
				}
			})
			l := listen(t, Config{NetHTTP: netHTTP}, h)

			for _, tc := range []struct {
				name  string
				delay time.Duration
			}{
				{"disconnect-cancels", 0},
				{"disconnect-after-watch", 150 * time.Millisecond}, // past the fast path's 50 ms watch delay
			} {
				t.Run(tc.name, func(t *testing.T) {
					c := dial(t, l)
					io.WriteString(c, get("/wait"))
					<-started
					time.Sleep(tc.delay)
					c.Close()
					select {
					case err := <-ended:
						if !errors.Is(err, context.Canceled) {
							t.Errorf("handler context: %v, want canceled", err)
						}
					case <-time.After(3 * ioTimeout):
						t.Fatal("handler context not canceled after the client left")
					}
				})
			}
			t.Run("pipelined-during-slow", func(t *testing.T) {
				c := dial(t, l)
				br := bufio.NewReader(c)
				c.SetDeadline(time.Now().Add(ioTimeout))
				io.WriteString(c, get("/slow?d=400ms"))
				<-started
				time.Sleep(150 * time.Millisecond) // the watch reads a byte of what follows
				io.WriteString(c, get("/next")+req("POST", "/after", "xyz"))
				for _, want := range []string{"slow done", "ok /next", "ok /after"} {
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						t.Fatalf("reading the response with %q: %v", want, err)
					}
					b, _ := io.ReadAll(resp.Body)
					if string(b) != want {
						t.Errorf("body %q, want %q", b, want)
					}
				}
				if err := <-ended; err != nil {
					t.Errorf("slow handler's context ended: %v", err)
				}
			})
			t.Run("stays-usable", func(t *testing.T) {
				c := dial(t, l)
				br := bufio.NewReader(c)
				_, body, err := roundTrip(t, c, br, get("/slow?d=200ms"))
				<-started
				if err != nil || body != "slow done" {
					t.Fatalf("slow request: %v %q", err, body)
				}
				if err := <-ended; err != nil {
					t.Errorf("slow handler's context ended: %v", err)
				}
				if _, body, err := roundTrip(t, c, br, get("/again")); err != nil || body != "ok /again" {
					t.Fatalf("request after a watched one: %v %q", err, body)
				}
			})
		})
	}
}

// TestHandOver checks what the fast path passes to net/http behind the
// guard.
func TestHandOver(t *testing.T) {
	noLeaks(t)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Proto", r.Proto)
		switch r.URL.Path {
		case "/ws":
			if r.ProtoMajor != 1 {
				http.Error(w, "not HTTP/1", http.StatusBadRequest)
				return
			}
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			defer conn.Close()
			io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			line, err := brw.ReadString('\n')
			if err == nil {
				io.WriteString(conn, "echo: "+line)
			}
		case "/echo":
			b, err := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s %s %d %q %v", r.Method, r.Host, r.ContentLength, b, err)
		default:
			fmt.Fprintf(w, "%s %s %s", r.Method, r.Host, r.RequestURI)
		}
	})
	for _, netHTTP := range []bool{false, true} {
		t.Run(serverName(netHTTP), func(t *testing.T) {
			l := listen(t, Config{NetHTTP: netHTTP, Limits: config.Limits{MaxBodyBytes: 1 << 20, MaxRequestsPerConnection: 100}}, h)
			type step struct {
				raw    string
				method string
				status int
				body   string // "" = not checked; a prefix ending in "*"
				close  bool   // the response closes the connection
			}
			for _, tc := range []struct {
				name  string
				steps []step
			}{
				{"bare-lf", []step{{raw: "GET / HTTP/1.1\nHost: a\n\n", status: 400, body: `{"error":*`, close: true}}},
				{"bare-lf-second", []step{
					{raw: get("/first"), status: 200, body: "GET example.com /first"},
					{raw: "GET / HTTP/1.1\r\nHost: a\n\r\n", status: 400, body: `{"error":*`, close: true},
				}},
				{"pri-second", []step{
					{raw: get("/first"), status: 200},
					{raw: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", status: 400, body: `*unexpected HTTP/2 preface*`, close: true},
				}},
				{"chunked-post", []step{
					{raw: "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", status: 200, body: `POST a -1 "hello world" <nil>`},
					{raw: req("POST", "/echo", "after"), status: 200, body: `POST example.com 5 "after" <nil>`},
				}},
				{"chunked-after-fast", []step{
					{raw: get("/one"), status: 200},
					{raw: "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + get("/three"), status: 200, body: `POST a -1 "abc" <nil>`},
					{method: "GET", status: 200, body: "GET example.com /three"},
				}},
				{"malformed-chunked", []step{
					{raw: "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", status: 400, close: true},
				}},
				{"expect-continue", []step{
					{raw: "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc", status: 200, body: `POST a 3 "abc" <nil>`},
					{raw: get("/next"), status: 200},
				}},
				{"http10", []step{{raw: "GET /old HTTP/1.0\r\n\r\n", status: 200, body: "GET  /old", close: true}}},
				{"absolute-form", []step{{raw: "GET http://other.example/abs?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n", status: 200, body: "GET other.example http://other.example/abs?q=1"}}},
				{"options-star", []step{{raw: "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", status: 200}}},
				{"body-too-large", []step{{raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n", status: 413, body: `*body_too_large*`, close: true}}},
				{"trace", []step{{raw: "TRACE / HTTP/1.1\r\nHost: a\r\n\r\n", status: 405, close: true}}},
				{"no-host", []step{{raw: "GET / HTTP/1.1\r\n\r\n", status: 400, close: true}}},
				{"head-too-large", []step{{raw: get("/", "X-Big: "+strings.Repeat("x", 70000)), status: 431, close: true}}},
				{"uri-too-long", []step{{raw: get("/" + strings.Repeat("u", 9000)), status: 414, close: true}}},
				{"h2c-upgrade-header-stripped", []step{{raw: get("/", "Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA"), status: 200, body: "GET example.com /"}}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					c := dial(t, l)
					br := bufio.NewReader(c)
					c.SetDeadline(time.Now().Add(ioTimeout))
					for i, s := range tc.steps {
						if s.raw != "" {
							io.WriteString(c, s.raw)
						}
						m := s.method
						if m == "" {
							m, _, _ = strings.Cut(s.raw, " ")
						}
						resp, err := http.ReadResponse(br, &http.Request{Method: m})
						for err == nil && resp.StatusCode == http.StatusContinue {
							resp, err = http.ReadResponse(br, &http.Request{Method: m})
						}
						if err != nil {
							t.Fatalf("step %d: %v", i, err)
						}
						b, err := io.ReadAll(resp.Body)
						if err != nil {
							t.Fatalf("step %d: body: %v", i, err)
						}
						if resp.StatusCode != s.status {
							t.Errorf("step %d: status %d, want %d (%s)", i, resp.StatusCode, s.status, b)
						}
						if s.body != "" && !matchGlob(s.body, string(b)) {
							t.Errorf("step %d: body %q, want %q", i, b, s.body)
						}
						if resp.Close != s.close {
							t.Errorf("step %d: close %v, want %v", i, resp.Close, s.close)
						}
						if s.close && !waitClosed(c, ioTimeout) {
							t.Errorf("step %d: connection not closed", i)
						}
					}
				})
			}

			t.Run("websocket-upgrade", func(t *testing.T) {
				c := dial(t, l)
				br := bufio.NewReader(c)
				c.SetDeadline(time.Now().Add(ioTimeout))
				io.WriteString(c, get("/ws", "Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="))
				resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != http.StatusSwitchingProtocols {
					b, _ := io.ReadAll(resp.Body)
					t.Fatalf("status %d %s", resp.StatusCode, b)
				}
				io.WriteString(c, "ping\n")
				line, err := br.ReadString('\n')
				if err != nil || line != "echo: ping\n" {
					t.Fatalf("after the upgrade: %q %v", line, err)
				}
			})

			t.Run("h2c-prior-knowledge", func(t *testing.T) {
				var protos http.Protocols
				protos.SetUnencryptedHTTP2(true)
				tr := &http.Transport{Protocols: &protos}
				defer tr.CloseIdleConnections()
				client := &http.Client{Transport: tr, Timeout: ioTimeout}
				for i := range 3 {
					resp, err := client.Get("http://" + l.Addr().String() + "/h2/" + strconv.Itoa(i))
					if err != nil {
						t.Fatal(err)
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.ProtoMajor != 2 || resp.Header.Get("X-Proto") != "HTTP/2.0" {
						t.Errorf("proto %s, handler saw %q", resp.Proto, resp.Header.Get("X-Proto"))
					}
					if want := "GET " + l.Addr().String() + " /h2/" + strconv.Itoa(i); string(b) != want {
						t.Errorf("body %q, want %q", b, want)
					}
				}
			})
		})
	}
}

// TestHandOverKeepsRequestCount checks that a connection handed over after
// some fast-path requests keeps its count towards max_requests.
func TestHandOverKeepsRequestCount(t *testing.T) {
	noLeaks(t)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	})
	for _, netHTTP := range []bool{false, true} {
		t.Run(serverName(netHTTP), func(t *testing.T) {
			l := listen(t, Config{NetHTTP: netHTTP, Limits: config.Limits{MaxRequestsPerConnection: 2}}, h)
			c := dial(t, l)
			br := bufio.NewReader(c)
			resp, _, err := roundTrip(t, c, br, get("/1"))
			if err != nil || resp.Close {
				t.Fatalf("first: %v close=%v", err, resp != nil && resp.Close)
			}
			resp, _, err = roundTrip(t, c, br, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n")
			if err != nil {
				t.Fatal(err)
			}
			if !resp.Close {
				t.Error("second request (handed over) of 2 allowed: no Connection: close")
			}
		})
	}
}

func matchGlob(pattern, s string) bool {
	switch {
	case strings.HasPrefix(pattern, "*") && strings.HasSuffix(pattern, "*") && len(pattern) > 1:
		return strings.Contains(s, pattern[1:len(pattern)-1])
	case strings.HasSuffix(pattern, "*"):
		return strings.HasPrefix(s, pattern[:len(pattern)-1])
	}
	return pattern == s
}

// TestServerChoice checks which server a listener runs.
func TestServerChoice(t *testing.T) {
	for _, tc := range []struct {
		name    string
		netHTTP bool
		env     string
		fast    bool
	}{
		{name: "default", fast: true},
		{name: "config", netHTTP: true},
		{name: "env", env: "net/http"},
		{name: "env-other", env: "fast", fast: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("RAMPART_HTTP1_SERVER", tc.env)
			l, err := Listen(Config{Address: "127.0.0.1:0", NetHTTP: tc.netHTTP}, http.NotFoundHandler(), Deps{})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if got := l.fast != nil; got != tc.fast {
				t.Errorf("fast path %v, want %v", got, tc.fast)
			}
		})
	}
}

// serverName names the server a subtest runs against.
func serverName(netHTTP bool) string {
	if netHTTP {
		return "net-http"
	}
	return "fast"
}

// TestFastPathParksDeep checks that connections idle long enough to be
// parked without Go's socket (h1server's deep park, through the counting
// connection's RebindTCP) are served again with their own address, stay
// counted while parked, and are uncounted when they close.
func TestFastPathParksDeep(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("parking needs epoll")
	}
	if testing.Short() {
		t.Skip("waits for the deep park (2 s)")
	}
	noLeaks(t)
	const n = 20
	var mu sync.Mutex
	remote := map[string]string{}
	l := listen(t, Config{Limits: config.Limits{IdleTimeout: config.Duration(time.Minute)}}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		remote[r.URL.Path] = r.RemoteAddr
		mu.Unlock()
		io.WriteString(w, "ok "+r.URL.Path)
	}))
	conns := make([]net.Conn, n)
	readers := make([]*bufio.Reader, n)
	for i := range conns {
		conns[i] = dial(t, l)
		readers[i] = bufio.NewReader(conns[i])
	}
	for round := range 2 {
		for i := range conns {
			path := "/" + strconv.Itoa(round) + "/" + strconv.Itoa(i)
			resp, body, err := roundTrip(t, conns[i], readers[i], get(path))
			if err != nil || resp.StatusCode != 200 || body != "ok "+path {
				t.Fatalf("conn %d round %d: %v %q", i, round, err, body)
			}
			mu.Lock()
			got := remote[path]
			mu.Unlock()
			if got != conns[i].LocalAddr().String() {
				t.Errorf("conn %d round %d: RemoteAddr %q, want %q", i, round, got, conns[i].LocalAddr())
			}
		}
		// The deep park comes after 2 s parked, at the sweeper's next tick.
		time.Sleep(3500 * time.Millisecond)
		if got := l.ActiveConnections(); got != n {
			t.Fatalf("round %d: %d active connections while parked, want %d", round, got, n)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	waitFor(t, ioTimeout, "connections to close", func() bool { return l.ActiveConnections() == 0 })
}
