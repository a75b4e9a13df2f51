package conformance

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// recorder is an upstream that counts every request it receives and whether
// its body arrived complete.
type recorder struct {
	addr     string
	started  atomic.Int64
	complete atomic.Int64
	mu       sync.Mutex
	last     seen
	delay    time.Duration
}

type seen struct {
	method, path, host string
	header             http.Header
	body               string
}

func newRecorder(t *testing.T) *recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{addr: ln.Addr().String()}
	srv := &http.Server{Handler: rec, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return rec
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.started.Add(1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "incomplete body", http.StatusBadRequest)
		return
	}
	rec.complete.Add(1)
	rec.mu.Lock()
	rec.last = seen{method: r.Method, path: r.URL.RequestURI(), host: r.Host, header: r.Header.Clone(), body: string(body)}
	rec.mu.Unlock()
	if rec.delay > 0 {
		time.Sleep(rec.delay)
	}
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, "ok")
}

func (rec *recorder) seen() seen {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.last
}

// gateway runs the gateway in-process with one catch-all route to the
// upstream at addr; limits is a YAML flow map or "".
func gateway(t *testing.T, addr, limits string) string {
	t.Helper()
	y := "listeners:\n  - name: public\n    address: \"127.0.0.1:0\"\n"
	if limits != "" {
		y += "    limits: " + limits + "\n"
	}
	y += `admin:
  address: "off"
drain_timeout: 2s
upstreams:
  rec:
    targets: [{address: "` + addr + `"}]
routes:
  - name: all
    match: {path: {prefix: /}}
    upstream: rec
    timeout: 5s
observability:
  access_log: {path: "off"}
`
	return gwtest.Start(t, y).Addr
}

// exchange is what a raw client saw.
type exchange struct {
	responses []*http.Response
	bodies    []string
	closed    bool // the server closed the connection after the responses
	err       error
}

// send writes raw on a new connection and reads up to want responses
// (skipping 1xx), then checks whether the server closed the connection.
func send(t *testing.T, addr string, raw string, want int) exchange {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var ex exchange
	for len(ex.responses) < want {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			ex.err = err
			break
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 {
			continue
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			ex.err = err
		}
		ex.responses = append(ex.responses, resp)
		ex.bodies = append(ex.bodies, string(b))
	}
	c.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
	_, err = br.ReadByte()
	var ne net.Error
	ex.closed = err != nil && !(errors.As(err, &ne) && ne.Timeout())
	return ex
}

// settle waits until the upstream count has not changed for a moment.
func settle(rec *recorder) {
	last := rec.started.Load()
	for range 20 {
		time.Sleep(10 * time.Millisecond)
		n := rec.started.Load()
		if n == last {
			return
		}
		last = n
	}
}

func isJSONError(body string, status string) bool {
	return strings.HasPrefix(body, `{"error":{"status":`+status+`,`) && strings.Contains(body, `"request_id":"`)
}

// h2Servers are the HTTP/2 servers every HTTP/2 gate runs against, by the
// names RAMPART_HTTP2_SERVER takes (internal/listener: HTTP2NetHTTP,
// HTTP2Rampart).
var h2Servers = []string{"net/http", "rampart"}

// eachH2Server runs test once per HTTP/2 server, as a subtest named after
// it, with RAMPART_HTTP2_SERVER set so that every gateway the test starts
// serves HTTP/2 with that server. Its assertions are the same for both.
func eachH2Server(t *testing.T, test func(t *testing.T)) {
	for _, name := range h2Servers {
		t.Run(name, func(t *testing.T) {
			t.Setenv("RAMPART_HTTP2_SERVER", name)
			test(t)
		})
	}
}
