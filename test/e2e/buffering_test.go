package e2e

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/spool"
	"github.com/rampart-gw/rampart/test/gwtest"
)

// arrival is what a recording upstream saw of one request.
type arrival struct {
	path          string
	contentLength string // the Content-Length field, "" when absent
	chunked       bool   // Transfer-Encoding: chunked
	body          []byte
	readErr       error
	// files are the request_buffering temporary files in the buffer
	// directory while the upstream handled the request.
	files []string
}

// recorder is an upstream that records every request it receives.
type recorder struct {
	mu       sync.Mutex
	arrivals []arrival
	dir      string // the gateway's buffer_dir, listed on each arrival
	// answer, when set, picks the status of the n-th request (0-based).
	answer func(n int, a arrival) int
	// hold, when set, is waited for before answering requests to /hold.
	hold chan struct{}
	held chan struct{} // receives when a /hold request has arrived
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a := arrival{path: r.URL.Path, contentLength: r.Header.Get("Content-Length")}
	for _, te := range r.TransferEncoding {
		a.chunked = a.chunked || te == "chunked"
	}
	if rc.dir != "" {
		a.files, _ = filepath.Glob(filepath.Join(rc.dir, spool.FilePrefix+"*"))
	}
	a.body, a.readErr = io.ReadAll(r.Body)
	rc.mu.Lock()
	n := len(rc.arrivals)
	rc.arrivals = append(rc.arrivals, a)
	rc.mu.Unlock()
	if r.URL.Path == "/hold" && rc.hold != nil {
		rc.held <- struct{}{}
		<-rc.hold
	}
	status := http.StatusOK
	if rc.answer != nil {
		status = rc.answer(n, a)
	}
	w.WriteHeader(status)
	io.WriteString(w, strconv.Itoa(len(a.body)))
}

func (rc *recorder) seen() []arrival {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]arrival(nil), rc.arrivals...)
}

func (rc *recorder) reset() {
	rc.mu.Lock()
	rc.arrivals = nil
	rc.mu.Unlock()
}

// chunkedBody hides the length of b, so the client sends it chunked.
func chunkedBody(b []byte) io.Reader { return io.MultiReader(bytes.NewReader(b)) }

func randomBody(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// TestRequestBufferingLimit sends chunked bodies under, at and over
// max_body_bytes through each request_buffering mode, counting what the
// upstream receives. Buffered (auto, on), a body over the limit is refused
// before the upstream request opens: the upstream sees nothing (issue 15:
// its handler ran for a 200-byte chunked POST against max_body_bytes: 100).
// A body within the limit is forwarded with its Content-Length. Streamed
// (off), the upstream sees the request start, chunked, and its body break
// off.
func TestRequestBufferingLimit(t *testing.T) {
	const limit = 100
	rec := &recorder{}
	up := gwtest.Upstream(t, rec)
	g := startGateway(t, listenerYAML(fmt.Sprintf("{max_body_bytes: %d}", limit))+fmt.Sprintf(`
upstreams:
  up: {targets: [{address: %q}]}
routes:
  - {name: auto, match: {path: {prefix: /auto}}, upstream: up}
  - {name: on, match: {path: {prefix: /on}}, upstream: up, request_buffering: on}
  - {name: off, match: {path: {prefix: /off}}, upstream: up, request_buffering: "off"}
`, up))
	c := newClient(t)
	tests := []struct {
		mode string
		size int
	}{
		{"auto", 10}, {"auto", limit}, {"auto", 2 * limit},
		{"on", 10}, {"on", limit}, {"on", 2 * limit},
		{"off", 10}, {"off", limit}, {"off", 2 * limit},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s %d bytes", tc.mode, tc.size), func(t *testing.T) {
			rec.reset()
			body := randomBody(tc.size)
			resp, got := do(t, c, newRequest(t, http.MethodPost, g.URL+"/"+tc.mode, chunkedBody(body)))
			over := tc.size > limit
			if over {
				checkError(t, resp, got, http.StatusRequestEntityTooLarge, "body_too_large")
			} else if resp.StatusCode != http.StatusOK || string(got) != strconv.Itoa(tc.size) {
				t.Fatalf("got %d %q, want 200 %d", resp.StatusCode, got, tc.size)
			}
			switch {
			case over && tc.mode != "off":
				// Give a late upstream request the time to show up.
				time.Sleep(50 * time.Millisecond)
				if n := len(rec.seen()); n != 0 {
					t.Fatalf("upstream received %d requests, want 0", n)
				}
			case over:
				gwtest.WaitFor(t, 2*time.Second, "the streamed request at the upstream", func() bool { return len(rec.seen()) == 1 })
				a := rec.seen()[0]
				if !a.chunked || a.readErr == nil || len(a.body) >= tc.size {
					t.Errorf("upstream saw chunked %v, %d bytes, read error %v; want a chunked body that breaks off", a.chunked, len(a.body), a.readErr)
				}
			default:
				seen := rec.seen()
				if len(seen) != 1 {
					t.Fatalf("upstream received %d requests, want 1", len(seen))
				}
				a := seen[0]
				if !bytes.Equal(a.body, body) || a.readErr != nil {
					t.Errorf("upstream read %d bytes (error %v), want the %d sent", len(a.body), a.readErr, tc.size)
				}
				buffered := tc.mode != "off"
				if wantCL := strconv.Itoa(tc.size); buffered && (a.contentLength != wantCL || a.chunked) {
					t.Errorf("upstream saw Content-Length %q, chunked %v; want Content-Length %s", a.contentLength, a.chunked, wantCL)
				}
				if !buffered && (a.contentLength != "" || !a.chunked) {
					t.Errorf("upstream saw Content-Length %q, chunked %v; want the body streamed chunked", a.contentLength, a.chunked)
				}
			}
		})
	}
}

// TestRequestBufferingThreshold: auto buffers a body of unknown length up
// to body_buffer_bytes only. A longer body streams, chunked, and one that
// then runs over max_body_bytes breaks off at the upstream. A body with a
// declared length streams as it is. on buffers them all.
func TestRequestBufferingThreshold(t *testing.T) {
	const memory, limit = 1024, 8192
	rec := &recorder{}
	up := gwtest.Upstream(t, rec)
	g := startGateway(t, listenerYAML(fmt.Sprintf("{max_body_bytes: %d, body_buffer_bytes: %d, buffer_dir: %q}", limit, memory, t.TempDir()))+fmt.Sprintf(`
upstreams:
  up: {targets: [{address: %q}]}
routes:
  - {name: auto, match: {path: {prefix: /auto}}, upstream: up}
  - {name: on, match: {path: {prefix: /on}}, upstream: up, request_buffering: on}
`, up))
	c := newClient(t)
	tests := []struct {
		name    string
		path    string
		size    int
		chunked bool // how the client sends it
		status  int
		// what the upstream sees: "length" (Content-Length), "chunked"
		// (the whole body, chunked), "broken" (chunked, breaking off),
		// "nothing"
		want string
	}{
		{"auto at the threshold", "/auto", memory, true, 200, "length"},
		{"auto over the threshold streams", "/auto", memory + 100, true, 200, "chunked"},
		{"auto over the threshold and the limit breaks off", "/auto", 2 * limit, true, 413, "broken"},
		{"auto with content-length streams as declared", "/auto", 4 * memory, false, 200, "length"},
		{"on over the threshold", "/on", 4 * memory, true, 200, "length"},
		{"on at the limit", "/on", limit, true, 200, "length"},
		{"on over the limit", "/on", limit + 1, true, 413, "nothing"},
		{"on with content-length", "/on", 4 * memory, false, 200, "length"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec.reset()
			body := randomBody(tc.size)
			var r io.Reader = bytes.NewReader(body)
			if tc.chunked {
				r = chunkedBody(body)
			}
			resp, got := do(t, c, newRequest(t, http.MethodPost, g.URL+tc.path, r))
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tc.status, got)
			}
			if tc.want == "nothing" {
				time.Sleep(50 * time.Millisecond)
				if n := len(rec.seen()); n != 0 {
					t.Fatalf("upstream received %d requests, want 0", n)
				}
				return
			}
			gwtest.WaitFor(t, 2*time.Second, "the request at the upstream", func() bool { return len(rec.seen()) == 1 })
			a := rec.seen()[0]
			switch tc.want {
			case "length":
				if a.contentLength != strconv.Itoa(tc.size) || a.chunked || !bytes.Equal(a.body, body) {
					t.Errorf("upstream saw Content-Length %q, chunked %v, %d bytes; want Content-Length %d and the body", a.contentLength, a.chunked, len(a.body), tc.size)
				}
			case "chunked":
				if a.contentLength != "" || !a.chunked || !bytes.Equal(a.body, body) {
					t.Errorf("upstream saw Content-Length %q, chunked %v, %d bytes; want the whole body chunked", a.contentLength, a.chunked, len(a.body))
				}
			case "broken":
				if !a.chunked || a.readErr == nil || len(a.body) > limit {
					t.Errorf("upstream saw chunked %v, %d bytes, read error %v; want a chunked body breaking off within the limit", a.chunked, len(a.body), a.readErr)
				}
			}
		})
	}
}

// TestRequestBufferingSpill: on keeps body_buffer_bytes in memory and the
// rest in a temporary file in buffer_dir, which exists while the upstream
// handles the request and is gone once the request ends.
func TestRequestBufferingSpill(t *testing.T) {
	dir := t.TempDir()
	rec := &recorder{dir: dir}
	up := gwtest.Upstream(t, rec)
	g := startGateway(t, listenerYAML(fmt.Sprintf("{body_buffer_bytes: 4096, buffer_dir: %q}", dir))+fmt.Sprintf(`
upstreams:
  up: {targets: [{address: %q}]}
routes:
  - {name: on, match: {path: {prefix: /}}, upstream: up, request_buffering: on}
`, up))
	c := newClient(t)
	tests := []struct {
		name  string
		size  int
		files int // temporary files while the upstream reads
	}{
		{"within memory", 4096, 0},
		{"spilled", 300 << 10, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec.reset()
			body := randomBody(tc.size)
			resp, got := do(t, c, newRequest(t, http.MethodPost, g.URL+"/", chunkedBody(body)))
			if resp.StatusCode != 200 || string(got) != strconv.Itoa(tc.size) {
				t.Fatalf("got %d %q, want 200 %d", resp.StatusCode, got, tc.size)
			}
			seen := rec.seen()
			if len(seen) != 1 || !bytes.Equal(seen[0].body, body) {
				t.Fatalf("upstream received %d requests, want 1 with the body", len(seen))
			}
			if a := seen[0]; len(a.files) != tc.files {
				t.Fatalf("temporary files while the upstream read: %v, want %d", a.files, tc.files)
			}
			for _, f := range seen[0].files {
				if fi, err := os.Stat(f); err == nil {
					t.Errorf("temporary file %s (%d bytes) left after the request", f, fi.Size())
				}
			}
		})
	}
}

// TestRequestBufferingBudget: the bodies buffered on a listener share
// buffer_memory_bytes. While one request holds the budget, the next body
// finds none: on spills it to a file, auto streams it.
func TestRequestBufferingBudget(t *testing.T) {
	dir := t.TempDir()
	rec := &recorder{dir: dir, hold: make(chan struct{}), held: make(chan struct{})}
	up := gwtest.Upstream(t, rec)
	g := startGateway(t, listenerYAML(fmt.Sprintf("{body_buffer_bytes: 4096, buffer_memory_bytes: 4096, buffer_dir: %q}", dir))+fmt.Sprintf(`
upstreams:
  up: {targets: [{address: %q}]}
routes:
  - {name: on, match: {path: {prefix: /on}}, upstream: up, request_buffering: on}
  - {name: auto, match: {path: {prefix: /auto}}, upstream: up}
  - {name: hold, match: {path: {exact: /hold}}, upstream: up, request_buffering: on}
`, up))
	c := newClient(t)
	tests := []struct {
		name    string
		path    string
		files   int
		chunked bool
	}{
		{"on spills", "/on", 1, false},
		{"auto streams", "/auto", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec.reset()
			holder := make(chan error, 1)
			go func() {
				// A 3 KiB body holds the whole 4 KiB budget (the first
				// memory buffer is 4 KiB) until the upstream answers.
				resp, err := c.Post(g.URL+"/hold", "", chunkedBody(randomBody(3<<10)))
				if err == nil {
					resp.Body.Close()
				}
				holder <- err
			}()
			select {
			case <-rec.held:
			case <-time.After(5 * time.Second):
				t.Fatal("the holding request did not arrive")
			}
			body := randomBody(2 << 10)
			resp, got := do(t, c, newRequest(t, http.MethodPost, g.URL+tc.path, chunkedBody(body)))
			rec.hold <- struct{}{}
			if err := <-holder; err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 200 || string(got) != strconv.Itoa(len(body)) {
				t.Fatalf("got %d %q, want 200 %d", resp.StatusCode, got, len(body))
			}
			var a *arrival
			for _, s := range rec.seen() {
				if s.path == tc.path {
					a = &s
				}
			}
			if a == nil || !bytes.Equal(a.body, body) {
				t.Fatalf("upstream did not receive the body of %s", tc.path)
			}
			if len(a.files) != tc.files || a.chunked != tc.chunked {
				t.Errorf("upstream saw %d temporary files, chunked %v; want %d, %v", len(a.files), a.chunked, tc.files, tc.chunked)
			}
		})
	}
}

// TestRequestBufferingRetry: a body buffered by on is sent whole on every
// attempt, even past the 64 KiB that streaming keeps for replay and past
// the memory (from the temporary file). Streamed, the same POST cannot be
// replayed and is not retried.
func TestRequestBufferingRetry(t *testing.T) {
	rec := &recorder{answer: func(n int, _ arrival) int {
		if n%2 == 0 {
			return http.StatusServiceUnavailable // every first attempt
		}
		return http.StatusOK
	}}
	up1, up2 := gwtest.Upstream(t, rec), gwtest.Upstream(t, rec)
	g := startGateway(t, listenerYAML(fmt.Sprintf("{body_buffer_bytes: 8192, buffer_dir: %q}", t.TempDir()))+fmt.Sprintf(`
upstreams:
  up: {targets: [{address: %q}, {address: %q}]}
routes:
  - name: on
    match: {path: {prefix: /on}}
    upstream: up
    request_buffering: on
    retry: {attempts: 2, on: [503], non_idempotent: true, backoff: {base: 0s, max: 0s}}
  - name: off
    match: {path: {prefix: /off}}
    upstream: up
    request_buffering: "off"
    retry: {attempts: 2, on: [503], non_idempotent: true, backoff: {base: 0s, max: 0s}}
`, up1, up2))
	c := newClient(t)
	tests := []struct {
		name     string
		path     string
		chunked  bool
		status   int
		attempts int
	}{
		{"on, chunked", "/on", true, 200, 2},
		{"on, content-length", "/on", false, 200, 2},
		{"off, chunked", "/off", true, 503, 1},
		{"off, content-length", "/off", false, 503, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec.reset()
			body := randomBody(200 << 10)
			var r io.Reader = bytes.NewReader(body)
			if tc.chunked {
				r = chunkedBody(body)
			}
			resp, got := do(t, c, newRequest(t, http.MethodPost, g.URL+tc.path, r))
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tc.status, got)
			}
			seen := rec.seen()
			if len(seen) != tc.attempts {
				t.Fatalf("upstream received %d attempts, want %d", len(seen), tc.attempts)
			}
			for i, a := range seen {
				if !bytes.Equal(a.body, body) || a.readErr != nil {
					t.Errorf("attempt %d: upstream read %d bytes (error %v), want the %d sent", i+1, len(a.body), a.readErr, len(body))
				}
				if buffered := strings.HasPrefix(tc.path, "/on"); buffered && a.contentLength != strconv.Itoa(len(body)) {
					t.Errorf("attempt %d: Content-Length %q, want %d", i+1, a.contentLength, len(body))
				}
			}
		})
	}
}

// TestRequestBufferingMalformed: a chunked body that breaks its framing
// while it is buffered is answered 400 with the JSON error and the
// connection closed; the upstream sees nothing. Both HTTP/1.1 servers
// (the fast path and net/http behind the guard) answer alike.
func TestRequestBufferingMalformed(t *testing.T) {
	for _, server := range []string{"fast", "net/http"} {
		t.Run(server, func(t *testing.T) {
			if server == "net/http" {
				t.Setenv("RAMPART_HTTP1_SERVER", "net/http")
			}
			rec := &recorder{}
			g := startGateway(t, listenerYAML("")+fmt.Sprintf(`
upstreams:
  up: {targets: [{address: %q}]}
routes:
  - {name: auto, match: {path: {prefix: /auto}}, upstream: up}
  - {name: on, match: {path: {prefix: /on}}, upstream: up, request_buffering: on}
`, gwtest.Upstream(t, rec)))
			for _, path := range []string{"/auto", "/on"} {
				raw := rawExchange(t, g.Addr, "POST "+path+" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nmore\r\n0\r\n\r\n")
				if got := statusOf(t, raw); got != http.StatusBadRequest || !strings.Contains(raw, `"code":"bad_request"`) {
					t.Errorf("%s: got %.300q, want 400 bad_request", path, raw)
				}
			}
			time.Sleep(50 * time.Millisecond)
			if n := len(rec.seen()); n != 0 {
				t.Errorf("upstream received %d requests, want 0", n)
			}
		})
	}
}

// TestBufferDirRefused: a buffer_dir that is not a directory is refused
// at start, positioned, rather than on the first large body.
func TestBufferDirRefused(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct{ name, dir, want string }{
		{"missing", missing, "no such file or directory"},
		{"a file", file, "is not a directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "rampart.yaml")
			doc := listenerYAML(fmt.Sprintf("{buffer_dir: %q}", tc.dir)) + `
upstreams:
  up: {targets: [{address: "127.0.0.1:9"}]}
routes:
  - {name: all, match: {path: {prefix: /}}, upstream: up}
`
			if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
				t.Fatal(err)
			}
			p := gwtest.StartProc(t, rampartBin, io.Discard, "run", "-c", path)
			if code := p.WaitExit(t, 10*time.Second); code == 0 {
				t.Fatalf("run exited 0, want a refusal")
			}
			want := path + ":4:26: listeners[0].limits.buffer_dir: "
			if out := p.Stderr(); !strings.Contains(out, want) || !strings.Contains(out, tc.want) {
				t.Errorf("stderr %q, want %q ... %q", out, want, tc.want)
			}
		})
	}
}

// TestRequestBufferingClientGone: a client that closes its connection
// before its body ends, while the body is buffered, is logged as 499 (in
// rampart_http_requests_total) and the upstream sees nothing.
func TestRequestBufferingClientGone(t *testing.T) {
	for _, server := range []string{"fast", "net/http"} {
		t.Run(server, func(t *testing.T) {
			if server == "net/http" {
				t.Setenv("RAMPART_HTTP1_SERVER", "net/http")
			}
			rec := &recorder{}
			g := startGateway(t, listenerYAML("")+fmt.Sprintf(`
upstreams:
  up: {targets: [{address: %q}]}
routes:
  - {name: on, match: {path: {prefix: /on}}, upstream: up, request_buffering: on}
`, gwtest.Upstream(t, rec)))
			c, err := net.Dial("tcp", g.Addr)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(c, "POST /on HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n400\r\npartial")
			c.(*net.TCPConn).CloseWrite()
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			io.Copy(io.Discard, c)
			c.Close()
			want := `rampart_http_requests_total{code="499",method="POST",route="on"} 1`
			gwtest.WaitFor(t, 2*time.Second, "the 499 in the metrics", func() bool {
				_, body := get(t, newClient(t), g.Admin+"/metrics")
				return strings.Contains(string(body), want)
			})
			if n := len(rec.seen()); n != 0 {
				t.Errorf("upstream received %d requests, want 0", n)
			}
		})
	}
}

// TestRequestBufferingSpillFails: when the temporary file cannot be created
// (the directory went away after start), a body that needs one is answered
// 503 overloaded and the upstream sees nothing; a body that fits in memory
// is still forwarded.
func TestRequestBufferingSpillFails(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	g := startGateway(t, listenerYAML(fmt.Sprintf("{body_buffer_bytes: 1024, buffer_dir: %q}", dir))+fmt.Sprintf(`
upstreams:
  up: {targets: [{address: %q}]}
routes:
  - {name: on, match: {path: {prefix: /}}, upstream: up, request_buffering: on}
`, gwtest.Upstream(t, rec)))
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	c := newClient(t)
	tests := []struct {
		name     string
		size     int
		status   int
		requests int
	}{
		{"needs a file", 4096, http.StatusServiceUnavailable, 0},
		{"fits in memory", 512, http.StatusOK, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec.reset()
			resp, body := do(t, c, newRequest(t, http.MethodPost, g.URL+"/", chunkedBody(randomBody(tc.size))))
			if tc.status != http.StatusOK {
				checkError(t, resp, body, tc.status, "overloaded")
			} else if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tc.status, body)
			}
			if n := len(rec.seen()); n != tc.requests {
				t.Errorf("upstream received %d requests, want %d", n, tc.requests)
			}
		})
	}
}
