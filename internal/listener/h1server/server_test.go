package h1server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rampart-gw/rampart/internal/listener/guard"
)

// These tests run Server on real sockets, with net/http behind the guard
// serving what it hands over, as the listener package wires them.

const ioTimeout = 10 * time.Second

// noLeaks checks, after the test's other clean-ups, that no goroutine it
// started is left (net/http's closeWriteAndWait ends by itself).
func noLeaks(t testing.TB) {
	t.Helper()
	opts := []goleak.Option{
		goleak.IgnoreAnyFunction("net/http.(*conn).closeWriteAndWait"),
		goleak.IgnoreCurrent(),
	}
	t.Cleanup(func() { goleak.VerifyNone(t, opts...) })
}

// chanListener is what Server hands connections over through.
type chanListener struct {
	addr net.Addr
	c    chan net.Conn
	once sync.Once
	done chan struct{}
}

func (l *chanListener) push(g *guard.Conn) {
	select {
	case l.c <- g:
	case <-l.done:
		g.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.c:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *chanListener) Addr() net.Addr { return l.addr }

// guardListener guards every connection it accepts, as the listener package
// does when net/http serves HTTP/1.1 too.
type guardListener struct {
	net.Listener
	cfg *guard.Config
}

func (l guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return guard.New(c, l.cfg), nil
}

// panicLog records log records that report a panic in the server itself.
type panicLog struct {
	slog.Handler
	n *atomic.Int64
}

func (h panicLog) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panic") {
		h.n.Add(1)
	}
	return nil
}

type testServer struct {
	srv    *Server
	hs     *http.Server
	hand   *chanListener
	addr   string
	panics atomic.Int64
	served chan error
	hsDone chan struct{}
	stop   sync.Once
}

// startServer runs a fast-path Server for h on 127.0.0.1 and stops it when
// the test ends. set adjusts the Server before it starts.
func startServer(t testing.TB, h http.Handler, cfg *guard.Config, set func(*Server)) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{addr: ln.Addr().String(), served: make(chan error, 1), hsDone: make(chan struct{})}
	ts.hand = &chanListener{addr: ln.Addr(), c: make(chan net.Conn), done: make(chan struct{})}
	ts.hs = &http.Server{
		Handler:           guard.Handler(h, cfg),
		ConnContext:       guard.ConnContext,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(slog.DiscardHandler, slog.LevelDebug),
	}
	ts.srv = &Server{
		Handler:           h,
		Config:            cfg,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       time.Minute,
		HandOver:          ts.hand.push,
		Log:               slog.New(panicLog{slog.DiscardHandler, &ts.panics}),
	}
	if set != nil {
		set(ts.srv)
	}
	go func() { defer close(ts.hsDone); ts.hs.Serve(ts.hand) }()
	go func() { ts.served <- ts.srv.Serve(ln) }()
	t.Cleanup(func() {
		ts.shutdown(t)
		if n := ts.panics.Load(); n > 0 {
			t.Errorf("the server logged %d panics", n)
		}
	})
	return ts
}

func (ts *testServer) shutdown(t testing.TB) {
	ts.stop.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		if err := ts.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		ts.hs.Shutdown(ctx)
		ts.hand.Close()
		select {
		case err := <-ts.served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(ioTimeout):
			t.Errorf("Serve did not return")
		}
		<-ts.hsDone
	})
}

func (ts *testServer) dial(t testing.TB) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", ts.addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(3 * ioTimeout))
	t.Cleanup(func() { c.Close() })
	return c
}

// count returns the server's tracked and parked connections.
func (ts *testServer) count() (tracked, parked int) {
	tracked = ts.srv.conns.Len()
	if p := ts.srv.poll; p != nil {
		p.mu.Lock()
		parked = p.n
		p.mu.Unlock()
	}
	return tracked, parked
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func closedByPeer(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(ioTimeout))
	var b [1]byte
	_, err := c.Read(b[:])
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// roundTrip writes raw and reads one response (skipping 1xx ones).
func roundTrip(t testing.TB, c net.Conn, br *bufio.Reader, method, raw string) (*http.Response, string) {
	t.Helper()
	if raw != "" {
		if _, err := io.WriteString(c, raw); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	for {
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("read response: %v", err)
		}
		if resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("read body: %v", err)
		}
		return resp, string(b)
	}
}

func echoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		w.Header().Set("X-Proto", r.Proto)
		fmt.Fprintf(w, "%s %s %d %q %v", r.Method, r.RequestURI, r.ContentLength, b, err)
	})
}

func get(path string, fields ...string) string {
	var b strings.Builder
	b.WriteString("GET " + path + " HTTP/1.1\r\nHost: a\r\n")
	for _, f := range fields {
		b.WriteString(f + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

func post(path, body string) string {
	return "POST " + path + " HTTP/1.1\r\nHost: a\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// TestServerParks checks that idle connections go to the poller (no
// goroutine, no buffers), wake up on their next request and are closed by
// the sweeper after the idle timeout.
func TestServerParks(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("parking needs epoll")
	}
	noLeaks(t)
	ts := startServer(t, echoHandler(), &guard.Config{}, func(s *Server) { s.IdleTimeout = 1500 * time.Millisecond })
	const n = 50
	conns := make([]net.Conn, n)
	brs := make([]*bufio.Reader, n)
	for i := range conns {
		conns[i] = ts.dial(t)
		brs[i] = bufio.NewReader(conns[i])
		if _, body := roundTrip(t, conns[i], brs[i], "GET", get("/a")); body != `GET /a 0 "" <nil>` {
			t.Fatalf("body %q", body)
		}
	}
	waitFor(t, "all connections to park", func() bool { _, p := ts.count(); return p == n })
	ts.srv.poll.mu.Lock()
	for c := ts.srv.poll.head; c != nil; c = c.next {
		if c.connWork != nil || c.state.Load() != csParked {
			t.Errorf("parked connection holds buffers or its request (state %d)", c.state.Load())
		}
	}
	ts.srv.poll.mu.Unlock()

	// Wake each one up, twice, with a pipelined pair the second time.
	for round := range 2 {
		for i, c := range conns {
			raw := post("/b", strconv.Itoa(i))
			if round == 1 {
				raw += get("/c")
			}
			if _, body := roundTrip(t, c, brs[i], "POST", raw); body != fmt.Sprintf(`POST /b %d %q <nil>`, len(strconv.Itoa(i)), strconv.Itoa(i)) {
				t.Fatalf("round %d conn %d: body %q", round, i, body)
			}
			if round == 1 {
				if _, body := roundTrip(t, c, brs[i], "GET", ""); body != `GET /c 0 "" <nil>` {
					t.Fatalf("conn %d: pipelined body %q", i, body)
				}
			}
		}
		waitFor(t, "all connections to park again", func() bool { _, p := ts.count(); return p == n })
	}

	// The sweeper closes them after the idle timeout.
	start := time.Now()
	for i, c := range conns {
		if !closedByPeer(c) {
			t.Fatalf("conn %d not closed after the idle timeout", i)
		}
	}
	if el := time.Since(start); el > 8*time.Second {
		t.Errorf("idle connections closed after %v", el)
	}
	waitFor(t, "the server to forget them", func() bool { tr, p := ts.count(); return tr == 0 && p == 0 })
}

// TestServerCloseParked checks that Close and Shutdown end parked and
// active connections and that nothing is left running.
func TestServerCloseParked(t *testing.T) {
	for _, how := range []string{"close", "shutdown"} {
		t.Run(how, func(t *testing.T) {
			noLeaks(t)
			// Shutdown waits for half a head until the header timeout.
			ts := startServer(t, echoHandler(), &guard.Config{}, func(s *Server) { s.ReadHeaderTimeout = time.Second })
			idle := ts.dial(t)
			roundTrip(t, idle, bufio.NewReader(idle), "GET", get("/"))
			half := ts.dial(t)
			io.WriteString(half, "GET / HTTP/1.1\r\n")
			fresh := ts.dial(t)
			waitFor(t, "three connections", func() bool { tr, _ := ts.count(); return tr == 3 })
			if how == "close" {
				ts.srv.Close()
			} else {
				ts.shutdown(t)
			}
			for name, c := range map[string]net.Conn{"idle": idle, "half": half, "fresh": fresh} {
				if !closedByPeer(c) {
					t.Errorf("%s connection still open", name)
				}
			}
			ts.shutdown(t)
			if tr, p := ts.count(); tr != 0 || p != 0 {
				t.Errorf("%d tracked, %d parked after %s", tr, p, how)
			}
		})
	}
}

// TestServerRequests checks request parsing details of the fast path that
// the listener's differential test does not reach: heads split across
// reads, heads larger than the first buffer, bodies split from their heads.
func TestServerRequests(t *testing.T) {
	noLeaks(t)
	ts := startServer(t, echoHandler(), &guard.Config{}, nil)
	bigHead := get("/big", "X-Big: "+strings.Repeat("x", 12000), "X-More: "+strings.Repeat("y", 9000))
	for _, tc := range []struct {
		name string
		raw  string
		step int // write in pieces of step bytes (0: at once)
		want []string
	}{
		{name: "byte-by-byte", raw: post("/x?y=1", "hello") + get("/z"), step: 1, want: []string{`POST /x?y=1 5 "hello" <nil>`, `GET /z 0 "" <nil>`}},
		{name: "odd-pieces", raw: post("/x", strings.Repeat("b", 9000)) + get("/z"), step: 7,
			want: []string{`POST /x 9000 "` + strings.Repeat("b", 9000) + `" <nil>`, `GET /z 0 "" <nil>`}},
		{name: "big-head", raw: bigHead + get("/after"), want: []string{`GET /big 0 "" <nil>`, `GET /after 0 "" <nil>`}},
		{name: "big-head-pieces", raw: bigHead, step: 1000, want: []string{`GET /big 0 "" <nil>`}},
		{name: "many-pipelined", raw: strings.Repeat(get("/p"), 200), want: slicesRepeat(`GET /p 0 "" <nil>`, 200)},
		{name: "crlf-between", raw: get("/1") + "\r\n\r\n" + get("/2"), step: 3, want: []string{`GET /1 0 "" <nil>`, `GET /2 0 "" <nil>`}},
		{name: "then-chunked", raw: get("/1") + "POST /2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + get("/3"),
			want: []string{`GET /1 0 "" <nil>`, `POST /2 -1 "abc" <nil>`, `GET /3 0 "" <nil>`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ts.dial(t)
			if tc.step == 0 {
				go io.WriteString(c, tc.raw)
			} else {
				go func() {
					for raw := tc.raw; raw != ""; {
						k := min(tc.step, len(raw))
						if _, err := io.WriteString(c, raw[:k]); err != nil {
							return
						}
						raw = raw[k:]
					}
				}()
			}
			br := bufio.NewReader(c)
			for i, want := range tc.want {
				m := "GET"
				if strings.HasPrefix(want, "POST") {
					m = "POST"
				}
				resp, body := roundTrip(t, c, br, m, "")
				if body != want {
					t.Fatalf("response %d: %q, want %q", i, trim(body), trim(want))
				}
				if resp.Header.Get("X-Proto") != "HTTP/1.1" {
					t.Errorf("response %d: proto %q", i, resp.Header.Get("X-Proto"))
				}
			}
		})
	}
}

func trim(s string) string {
	if len(s) > 80 {
		return s[:40] + "..." + s[len(s)-20:]
	}
	return s
}

func slicesRepeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// TestServerResponses checks the response framing of the fast path against
// what net/http sends for the same handler (the wire form the gateway's
// clients see), one field at a time.
func TestServerResponses(t *testing.T) {
	noLeaks(t)
	for _, tc := range []struct {
		name    string
		method  string
		handler http.HandlerFunc
		// want maps a header field to its expected value ("" = absent);
		// "body" and "trailer:Name" check the body and a trailer.
		want map[string]string
	}{
		{
			// RFC 9110 §9.3.2: a HEAD response carries the fields a GET
			// would; net/http sets Content-Length and sniffs Content-Type
			// for a handler that writes its body for HEAD too.
			name: "head-gets-length-and-type", method: "HEAD",
			handler: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "head body!") },
			want:    map[string]string{"Content-Length": "10", "Content-Type": "text/plain; charset=utf-8"},
		},
		{
			name: "head-with-declared-length-gets-type", method: "HEAD",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "5")
				io.WriteString(w, "hello")
			},
			want: map[string]string{"Content-Length": "5", "Content-Type": "text/plain; charset=utf-8"},
		},
		{
			// RFC 9110 §8.6: no Content-Length in a 204.
			name: "204-drops-content-length",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "0")
				w.WriteHeader(http.StatusNoContent)
			},
			want: map[string]string{"Content-Length": "", "Transfer-Encoding": ""},
		},
		{
			name: "304-drops-content-type",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusNotModified)
			},
			want: map[string]string{"Content-Type": ""},
		},
		{
			// The first Write is larger than the fast path holds back.
			name: "large-first-write-sniffed",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte("<html>" + strings.Repeat("x", 8000)))
			},
			want: map[string]string{"Content-Type": "text/html; charset=utf-8", "Transfer-Encoding": "chunked"},
		},
		{
			// net/http (issue 31753): no sniffing under a Content-Encoding.
			name: "content-encoding-not-sniffed",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Encoding", "gzip")
				w.Write([]byte("\x1f\x8b\x08\x00\x00\x00\x00\x00"))
			},
			want: map[string]string{"Content-Type": ""},
		},
		{
			// http.ResponseWriter: "Changing the header map after a call
			// to WriteHeader (or Write) has no effect unless ... the
			// modified headers are trailers."
			name: "header-frozen-at-write",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "x")
				w.Header().Set("X-After", "too late")
			},
			want: map[string]string{"X-After": "", "body": "x"},
		},
		{
			name: "declared-trailer-only-in-trailer",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Trailer", "X-Sum")
				io.WriteString(w, "body")
				w.Header().Set("X-Sum", "abc")
			},
			want: map[string]string{"X-Sum": "", "trailer:X-Sum": "abc", "body": "body"},
		},
		{
			name: "trailer-prefix-set-before-write",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set(http.TrailerPrefix+"X-Early", "early")
				io.WriteString(w, "small")
			},
			want: map[string]string{"trailer:X-Early": "early", "body": "small"},
		},
		{
			name: "trailer-prefix-after-flush",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "streamed")
				http.NewResponseController(w).Flush()
				w.Header().Set(http.TrailerPrefix+"X-Late", "late")
			},
			want: map[string]string{"trailer:X-Late": "late", "body": "streamed", "Transfer-Encoding": "chunked"},
		},
		{
			name: "small-body-length",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "abc")
				io.WriteString(w, "def")
			},
			want: map[string]string{"Content-Length": "6", "Transfer-Encoding": "", "body": "abcdef"},
		},
		{
			name: "early-hints",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Link", "</a.css>; rel=preload")
				w.WriteHeader(http.StatusEarlyHints)
				io.WriteString(w, "final")
			},
			want: map[string]string{"Link": "</a.css>; rel=preload", "body": "final"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = "GET"
			}
			raw := method + " / HTTP/1.1\r\nHost: a\r\n\r\n"
			check := func(t *testing.T, resp *http.Response, body string) {
				for k, v := range tc.want {
					var got string
					switch {
					case k == "body":
						got = body
					case strings.HasPrefix(k, "trailer:"):
						got = resp.Trailer.Get(k[len("trailer:"):])
					case k == "Transfer-Encoding":
						got = strings.Join(resp.TransferEncoding, ",")
					case k == "Content-Length" && resp.Header.Get(k) == "" && resp.ContentLength >= 0 && resp.TransferEncoding == nil && tc.method != "HEAD":
						got = ""
					default:
						got = resp.Header.Get(k)
					}
					if got != v {
						t.Errorf("%s: %q, want %q", k, got, v)
					}
				}
			}
			t.Run("net-http", func(t *testing.T) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				hs := &http.Server{Handler: tc.handler}
				done := make(chan struct{})
				go func() { defer close(done); hs.Serve(ln) }()
				defer func() { hs.Close(); <-done }()
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(ioTimeout))
				resp, body := roundTrip(t, c, bufio.NewReader(c), method, raw)
				check(t, resp, body)
			})
			t.Run("fast", func(t *testing.T) {
				ts := startServer(t, tc.handler, &guard.Config{}, nil)
				c := ts.dial(t)
				resp, body := roundTrip(t, c, bufio.NewReader(c), method, raw)
				check(t, resp, body)
			})
		})
	}
}

// TestServerUnreadBodyResponseDelivered checks that the response to a
// request whose large body the handler did not read reaches the client
// before the connection closes. Closing a socket with unread input makes
// the kernel send a reset, which discards the response if it is still in
// flight; net/http half-closes and lingers (closeWriteAndWait), as Conn
// does after a refusal.
func TestServerUnreadBodyResponseDelivered(t *testing.T) {
	noLeaks(t)
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "not reading that")
	}), &guard.Config{}, nil)
	body := strings.Repeat("b", 300<<10)
	for i := range 5 {
		c := ts.dial(t)
		go io.WriteString(c, post("/", body))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("attempt %d: response lost: %v", i, err)
		}
		if !resp.Close {
			t.Errorf("attempt %d: no Connection: close", i)
		}
		c.Close()
	}
}

// TestServerShutdownInFlight checks that a response committed after
// Shutdown began tells the client the connection closes.
func TestServerShutdownInFlight(t *testing.T) {
	noLeaks(t)
	started, release := make(chan struct{}), make(chan struct{})
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "late")
	}), &guard.Config{}, nil)
	c := ts.dial(t)
	io.WriteString(c, get("/"))
	<-started
	done := make(chan struct{})
	go func() { defer close(done); ts.shutdown(t) }()
	waitFor(t, "shutdown to begin", func() bool { return ts.srv.closing.Load() })
	close(release)
	resp, body := roundTrip(t, c, bufio.NewReader(c), "GET", "")
	if body != "late" {
		t.Errorf("body %q", body)
	}
	if !resp.Close {
		t.Errorf("response during Shutdown without Connection: close: %v", resp.Header)
	}
	if !closedByPeer(c) {
		t.Error("connection not closed")
	}
	<-done
}

// TestServerWatch checks the slow-request watch: a client that goes away
// cancels the context, one that pipelines its next request meanwhile loses
// no byte of it.
func TestServerWatch(t *testing.T) {
	noLeaks(t)
	started := make(chan struct{}, 1)
	ctxErr := make(chan error, 1)
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/slow" {
			io.WriteString(w, "fast "+r.URL.Path)
			return
		}
		started <- struct{}{}
		d, _ := time.ParseDuration(r.URL.Query().Get("d"))
		select {
		case <-r.Context().Done():
			ctxErr <- r.Context().Err()
		case <-time.After(d):
			ctxErr <- nil
			io.WriteString(w, "slow")
		}
	}), &guard.Config{}, nil)

	t.Run("gone", func(t *testing.T) {
		c := ts.dial(t)
		io.WriteString(c, get("/slow?d=30s"))
		<-started
		c.Close()
		select {
		case err := <-ctxErr:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("context: %v", err)
			}
		case <-time.After(2 * ioTimeout):
			t.Fatal("context not canceled")
		}
	})
	for _, gap := range []time.Duration{0, 10 * time.Millisecond, 120 * time.Millisecond} {
		t.Run("pipelined-after-"+gap.String(), func(t *testing.T) {
			c := ts.dial(t)
			br := bufio.NewReader(c)
			io.WriteString(c, get("/slow?d=300ms"))
			<-started
			time.Sleep(gap)
			// One byte at a time: the watch's one-byte read takes the
			// first, the rest must follow it.
			next := get("/next") + post("/p", "xy")
			go func() {
				for i := range len(next) {
					if _, err := io.WriteString(c, next[i:i+1]); err != nil {
						return
					}
				}
			}()
			for _, want := range []string{"slow", "fast /next", "fast /p"} {
				if _, body := roundTrip(t, c, br, "GET", ""); body != want {
					t.Fatalf("body %q, want %q", body, want)
				}
			}
			if err := <-ctxErr; err != nil {
				t.Errorf("context ended: %v", err)
			}
		})
	}
}

// TestServerHandOverBytes checks that what the fast path already read
// reaches net/http intact when it hands a connection over mid-stream.
func TestServerHandOverBytes(t *testing.T) {
	noLeaks(t)
	ts := startServer(t, echoHandler(), &guard.Config{H2: true, MaxBodyBytes: 1 << 20}, nil)
	for _, tc := range []struct {
		name   string
		raw    string
		want   []string // bodies, or "status:NNN"
		closed bool
	}{
		{"chunked-after-fast", get("/1") + "POST /2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + post("/3", "abc"),
			[]string{`GET /1 0 "" <nil>`, `POST /2 -1 "hello" <nil>`, `POST /3 3 "abc" <nil>`}, false},
		{"http10-after-fast", get("/1") + "GET /2 HTTP/1.0\r\nHost: a\r\n\r\n", []string{`GET /1 0 "" <nil>`, `GET /2 0 "" <nil>`}, true},
		{"pri-second", get("/1") + "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", []string{`GET /1 0 "" <nil>`, "status:400"}, true},
		{"bare-lf-second", get("/1") + "GET /2 HTTP/1.1\nHost: a\n\n", []string{`GET /1 0 "" <nil>`, "status:400"}, true},
		{"head-too-large-second", get("/1") + get("/2", "X: "+strings.Repeat("x", 70000)), []string{`GET /1 0 "" <nil>`, "status:431"}, true},
		{"expect-second", get("/1") + "POST /2 HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
			[]string{`GET /1 0 "" <nil>`, `POST /2 2 "ok" <nil>`}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ts.dial(t)
			br := bufio.NewReader(c)
			go io.WriteString(c, tc.raw)
			for i, want := range tc.want {
				resp, body := roundTrip(t, c, br, "GET", "")
				if s, ok := strings.CutPrefix(want, "status:"); ok {
					if strconv.Itoa(resp.StatusCode) != s {
						t.Errorf("response %d: status %d, want %s (%s)", i, resp.StatusCode, s, body)
					}
					continue
				}
				if body != want {
					t.Errorf("response %d: %q, want %q", i, body, want)
				}
			}
			if tc.closed && !closedByPeer(c) {
				t.Error("connection not closed")
			}
		})
	}
}

// FuzzServer feeds arbitrary bytes through a real connection to the fast
// path and to net/http behind the guard. The fast path must not panic, must
// close the connection once the client has sent everything (half-close),
// and must answer the first request with the same status as net/http.
func FuzzServer(f *testing.F) {
	for _, s := range []string{
		get("/"),
		post("/x", "hello") + get("/y"),
		"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX_Y: 1\r\nx-dup: 1\r\nX-Dup: 2\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nshort",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"GET / HTTP/1.1\nHost: a\n\n",
		"GET /a%20b?c=%2F HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET http://x/y HTTP/1.1\r\nHost: a\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" + get("/never"),
		"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
	} {
		f.Add([]byte(s))
	}
	noLeaks(f)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if r.URL.Path == "/stream" {
			http.NewResponseController(w).Flush()
		}
		fmt.Fprintf(w, "%s %q %d %v", r.Method, r.URL.Path, len(b), err)
	})
	cfg := &guard.Config{H2: true, MaxBodyBytes: 1 << 16, MaxHeaderBytes: 8 << 10, MaxURIBytes: 1 << 10}
	fast := startServer(f, h, cfg, func(s *Server) { s.ReadHeaderTimeout = 2 * time.Second })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	std := &http.Server{Handler: guard.Handler(h, cfg), ConnContext: guard.ConnContext, ReadHeaderTimeout: 2 * time.Second,
		ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelDebug)}
	stdDone := make(chan struct{})
	go func() { defer close(stdDone); std.Serve(guardListener{ln, cfg}) }()
	f.Cleanup(func() { std.Close(); <-stdDone })

	send := func(t *testing.T, addr string, in []byte) (status int, closed bool) {
		c, err := net.DialTimeout("tcp", addr, ioTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(ioTimeout))
		go func() {
			c.Write(in)
			c.(*net.TCPConn).CloseWrite()
		}()
		br := bufio.NewReader(c)
		if resp, err := http.ReadResponse(br, nil); err == nil {
			status = resp.StatusCode
		}
		_, err = io.Copy(io.Discard, br)
		var ne net.Error
		return status, !(errors.As(err, &ne) && ne.Timeout())
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 64<<10 {
			return
		}
		fs, closed := send(t, fast.addr, in)
		if !closed {
			t.Fatalf("fast path kept the connection open after the client's half-close")
		}
		if n := fast.panics.Load(); n > 0 {
			t.Fatalf("fast path panicked")
		}
		ss, _ := send(t, ln.Addr().String(), in)
		// HEAD and 1xx make a blind ReadResponse ambiguous; compare only
		// plain final answers.
		if fs != ss && fs >= 200 && ss >= 200 && !strings.HasPrefix(string(in), "HEAD") {
			t.Errorf("first response: fast path %d, net/http %d", fs, ss)
		}
	})
}
