package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// release is a signal a test gives an upstream handler; it is also given
// when the test ends so that no handler outlives it.
type release struct {
	ch   chan struct{}
	once sync.Once
}

func newRelease(t *testing.T) *release {
	r := &release{ch: make(chan struct{})}
	t.Cleanup(r.fire)
	return r
}

func (r *release) fire() { r.once.Do(func() { close(r.ch) }) }

// readWithin reads from r until the bytes read so far contain want, or
// fails the test after d. It returns what it read.
func readWithin(t *testing.T, r io.Reader, want string, d time.Duration) string {
	t.Helper()
	type result struct {
		got string
		err error
	}
	done := make(chan result, 1)
	go func() {
		var buf []byte
		p := make([]byte, 4096)
		for {
			n, err := r.Read(p)
			buf = append(buf, p[:n]...)
			if bytes.Contains(buf, []byte(want)) {
				done <- result{string(buf), nil}
				return
			}
			if err != nil {
				done <- result{string(buf), err}
				return
			}
		}
	}()
	select {
	case res := <-done:
		if res.err != nil {
			t.Fatalf("read %q, then %v; want %q", res.got, res.err, want)
		}
		return res.got
	case <-time.After(d):
		t.Fatalf("%q not received within %s: the response is buffered", want, d)
	}
	return ""
}

// TestSSE checks that an event reaches the client before the upstream sends
// the next one: the gateway does not buffer event streams.
func TestSSE(t *testing.T) {
	for _, tc := range []struct {
		name   string
		client func(*testing.T) *http.Client
	}{
		{"http/1.1", newClient},
		{"h2c", h2cClient},
	} {
		t.Run(tc.name, func(t *testing.T) {
			streamCase(t, tc.client(t), "/events", "text/event-stream", "id: 1\ndata: first\n\n", "id: 2\ndata: second\n\n")
		})
	}
}

// TestStreamedBody checks that a plain chunked response body is streamed:
// the client receives the first bytes before the upstream finished writing.
func TestStreamedBody(t *testing.T) {
	streamCase(t, newClient(t), "/download", "application/octet-stream", strings.Repeat("x", 1000)+"|", "end")
}

func streamCase(t *testing.T, c *http.Client, path, ctype, first, second string) {
	rel := newRelease(t)
	up := gwtest.Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ctype)
		io.WriteString(w, first)
		http.NewResponseController(w).Flush()
		select {
		case <-rel.ch:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, second)
	}))
	g := startGateway(t, listenerYAML("")+fmt.Sprintf(`
upstreams:
  up: {targets: [{address: %q}]}
routes:
  - {name: all, match: {path: {prefix: /}}, upstream: up}
`, up))
	resp, err := c.Get(g.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ctype {
		t.Fatalf("status %d Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	br := bufio.NewReader(resp.Body)
	got := readWithin(t, br, first, 5*time.Second)
	if strings.Contains(got, second) {
		t.Fatalf("second part arrived before it was sent: %q", got)
	}
	rel.fire()
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	if all := got + string(rest); all != first+second {
		t.Errorf("body %q, want %q", all, first+second)
	}
}

// TestWebSocket checks a WebSocket echo through the gateway.
func TestWebSocket(t *testing.T) {
	closed := make(chan websocket.StatusCode, 1)
	up := gwtest.Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		if err := c.Write(ctx, websocket.MessageText, []byte("hello from upstream")); err != nil {
			return
		}
		for {
			typ, b, err := c.Read(ctx)
			if err != nil {
				closed <- websocket.CloseStatus(err)
				return
			}
			if err := c.Write(ctx, typ, append([]byte("echo:"), b...)); err != nil {
				return
			}
		}
	}))
	g := startGateway(t, listenerYAML("")+fmt.Sprintf(`
upstreams:
  ws: {targets: [{address: %q}]}
routes:
  - {name: ws, match: {path: {prefix: /ws}}, upstream: ws}
`, up))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws://"+g.Addr+"/ws", &websocket.DialOptions{HTTPClient: newClient(t)})
	if err != nil {
		t.Fatalf("dial through gateway: %v", err)
	}
	defer c.CloseNow()
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("X-Request-ID") == "" {
		t.Errorf("handshake: status %d, X-Request-ID %q", resp.StatusCode, resp.Header.Get("X-Request-ID"))
	}
	typ, b, err := c.Read(ctx)
	if err != nil || typ != websocket.MessageText || string(b) != "hello from upstream" {
		t.Fatalf("first message %v %q %v", typ, b, err)
	}
	msgs := []struct {
		name string
		typ  websocket.MessageType
		data []byte
	}{
		{"text", websocket.MessageText, []byte("one")},
		{"binary", websocket.MessageBinary, []byte{0, 1, 2, 255}},
		{"empty", websocket.MessageText, []byte{}},
		{"large", websocket.MessageBinary, bytes.Repeat([]byte("z"), 20000)},
		{"unicode", websocket.MessageText, []byte("héllo ✓")},
	}
	for _, m := range msgs {
		t.Run(m.name, func(t *testing.T) {
			if err := c.Write(ctx, m.typ, m.data); err != nil {
				t.Fatal(err)
			}
			typ, b, err := c.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if typ != m.typ || !bytes.Equal(b, append([]byte("echo:"), m.data...)) {
				t.Errorf("echo %v %.40q, want %v echo:%.40q", typ, b, m.typ, m.data)
			}
		})
	}
	if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Errorf("close handshake: %v", err)
	}
	select {
	case code := <-closed:
		if code != websocket.StatusNormalClosure {
			t.Errorf("upstream saw close status %v, want %v", code, websocket.StatusNormalClosure)
		}
	case <-time.After(5 * time.Second):
		t.Error("upstream did not see the close")
	}
}

// h2cUpstream starts an upstream that speaks only HTTP/2 with prior
// knowledge (h2c).
func h2cUpstream(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: &p, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	})
	return ln.Addr().String()
}

// h2cClient speaks HTTP/2 with prior knowledge only.
func h2cClient(t *testing.T) *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Proxy: nil, Protocols: &p}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// TestH2C checks prior-knowledge HTTP/2 from the client and to an h2c
// upstream, with gRPC-style trailers passed through.
func TestH2C(t *testing.T) {
	grpcLike := h2cUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			http.Error(w, "want h2", http.StatusHTTPVersionNotSupported)
			return
		}
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status, Grpc-Message")
		w.Header().Set("X-Upstream-Proto", r.Proto)
		w.Write([]byte("reply:"))
		w.Write(body)
		w.Header().Set("Grpc-Status", "0")
		w.Header().Set("Grpc-Message", "fine")
	}))
	g := startGateway(t, listenerYAML("")+fmt.Sprintf(`
upstreams:
  h1: {targets: [{address: %q}]}
  grpc: {protocol: h2c, targets: [{address: %q}]}
routes:
  - {name: grpc, match: {path: {prefix: /pkg.Service/}}, upstream: grpc}
  - {name: h1, match: {path: {prefix: /}}, upstream: h1}
`, echoUpstream(t, "h1"), grpcLike))
	tests := []struct {
		name   string
		client *http.Client
		proto  int
	}{
		{"h2c client", h2cClient(t), 2},
		{"http/1.1 client", newClient(t), 1},
	}
	for _, tc := range tests {
		t.Run(tc.name+" to http/1.1 upstream", func(t *testing.T) {
			resp, body := get(t, tc.client, g.URL+"/plain")
			if resp.ProtoMajor != tc.proto {
				t.Errorf("client got %s, want HTTP/%d", resp.Proto, tc.proto)
			}
			if s := decodeSeen(t, resp, body); s.Proto != "HTTP/1.1" {
				t.Errorf("upstream got %s", s.Proto)
			}
		})
		t.Run(tc.name+" to h2c upstream with trailers", func(t *testing.T) {
			req := newRequest(t, http.MethodPost, g.URL+"/pkg.Service/Call", strings.NewReader("ping"))
			req.Header.Set("Content-Type", "application/grpc")
			req.Header.Set("TE", "trailers")
			resp, body := do(t, tc.client, req)
			if resp.StatusCode != 200 || string(body) != "reply:ping" {
				t.Fatalf("got %d %q", resp.StatusCode, body)
			}
			if resp.ProtoMajor != tc.proto {
				t.Errorf("client got %s, want HTTP/%d", resp.Proto, tc.proto)
			}
			if got := resp.Header.Get("X-Upstream-Proto"); got != "HTTP/2.0" {
				t.Errorf("upstream spoke %q, want HTTP/2.0", got)
			}
			// A response with trailers must reach an HTTP/1.1 client
			// chunked, even when the h2 upstream sent a Content-Length.
			if got := resp.Trailer.Get("Grpc-Status"); got != "0" {
				t.Errorf("trailer Grpc-Status %q, want 0 (trailers %v, header %v)", got, resp.Trailer, resp.Header)
			}
			if got := resp.Trailer.Get("Grpc-Message"); got != "fine" {
				t.Errorf("trailer Grpc-Message %q, want fine", got)
			}
		})
	}
}

// TestTrailersHTTP1 checks request and response trailers over HTTP/1.1
// chunked encoding.
func TestTrailersHTTP1(t *testing.T) {
	up := gwtest.Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Trailer", "X-Resp-Sum")
		w.Header().Set("X-Got-Req-Trailer", r.Trailer.Get("X-Req-Sum"))
		w.Write(body)
		http.NewResponseController(w).Flush() // forces chunked encoding
		w.Header().Set("X-Resp-Sum", sha(body))
	}))
	g := startGateway(t, listenerYAML("")+fmt.Sprintf(`
upstreams:
  up: {targets: [{address: %q}]}
routes:
  - {name: all, match: {path: {prefix: /}}, upstream: up}
`, up))
	payload := []byte(strings.Repeat("trailer test ", 100))
	// A reader without a known length makes the client send chunks, and
	// trailers need chunks.
	req := newRequest(t, http.MethodPost, g.URL+"/t", io.MultiReader(bytes.NewReader(payload)))
	req.Trailer = http.Header{"X-Req-Sum": {sha(payload)}}
	resp, body := do(t, newClient(t), req)
	if resp.StatusCode != 200 || !bytes.Equal(body, payload) {
		t.Fatalf("got %d, %d bytes", resp.StatusCode, len(body))
	}
	if got := resp.Header.Get("X-Got-Req-Trailer"); got != sha(payload) {
		t.Errorf("upstream saw request trailer X-Req-Sum %q, want %q", got, sha(payload))
	}
	if got := resp.Trailer.Get("X-Resp-Sum"); got != sha(payload) {
		t.Errorf("response trailer X-Resp-Sum %q, want %q (trailer %v)", got, sha(payload), resp.Trailer)
	}
}

// TestLargeBodies sends 10 MiB through the gateway both ways.
func TestLargeBodies(t *testing.T) {
	const size = 10 << 20
	download := make([]byte, size)
	rand.Read(download)
	up := gwtest.Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			// Read all, then answer: the gateway must not need full duplex.
			b, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			w.Header().Set("X-Body-SHA256", sha(b))
			w.Write(b)
		case "/download":
			w.Header().Set("Content-Length", fmt.Sprint(size))
			w.Write(download)
		case "/download-chunked":
			for off := 0; off < size; off += 1 << 20 {
				w.Write(download[off : off+1<<20])
			}
		}
	}))
	g := startGateway(t, listenerYAML("{max_body_bytes: 33554432}")+fmt.Sprintf(`
upstreams:
  up: {targets: [{address: %q}]}
routes:
  - {name: all, match: {path: {prefix: /}}, upstream: up, timeout: 30s}
`, up))
	c := newClient(t)
	upload := make([]byte, size)
	rand.Read(upload)
	tests := []struct {
		name   string
		method string
		path   string
		body   func() io.Reader
		want   []byte
	}{
		{"upload with content-length and echo", http.MethodPost, "/echo", func() io.Reader { return bytes.NewReader(upload) }, upload},
		{"chunked upload and echo", http.MethodPost, "/echo", func() io.Reader { return io.MultiReader(bytes.NewReader(upload)) }, upload},
		{"download with content-length", http.MethodGet, "/download", nil, download},
		{"chunked download", http.MethodGet, "/download-chunked", nil, download},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != nil {
				body = tc.body()
			}
			resp, got := do(t, c, newRequest(t, tc.method, g.URL+tc.path, body))
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %.200s", resp.StatusCode, got)
			}
			if len(got) != len(tc.want) || sha(got) != sha(tc.want) {
				t.Errorf("got %d bytes sha256 %s, want %d bytes %s", len(got), sha(got), len(tc.want), sha(tc.want))
			}
			if h := resp.Header.Get("X-Body-SHA256"); tc.path == "/echo" && h != sha(tc.want) {
				t.Errorf("upstream received body sha256 %s, want %s", h, sha(tc.want))
			}
		})
	}
}
