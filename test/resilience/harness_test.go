package resilience

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// mode is how a server answers requests outside its health path.
type mode int32

const (
	modeOK    mode = iota // 200 with the server's name as body
	modeFail              // the configured 5xx status
	modeHang              // block until released (or the client goes away)
	modeReset             // read the request, then reset the connection (RST)
)

// server is an upstream on 127.0.0.1 that fails on command. Its health
// path is /healthz; every other path counts as a request (hits).
type server struct {
	name string
	addr string
	ln   net.Listener
	srv  *http.Server

	mode     atomic.Int32
	status   atomic.Int32 // for modeFail; default 503
	failNext atomic.Int32 // when > 0, the next requests fail this way (failMode) whatever mode says
	failMode atomic.Int32
	// retryAfter is sent with failures when set.
	retryAfter atomic.Value
	healthy    atomic.Bool
	delay      atomic.Int64 // ns added to every request
	hits       atomic.Int64
	inflight   atomic.Int64

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	release chan struct{}
	killed  bool
	// bodies are the sha256 of the request bodies received, in order.
	bodies []string
}

// newServer starts a server named name; it is killed when the test ends.
func newServer(t *testing.T, name string) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{name: name, addr: ln.Addr().String(), ln: ln, conns: map[net.Conn]struct{}{}, release: make(chan struct{})}
	s.status.Store(503)
	s.retryAfter.Store("")
	s.healthy.Store(true)
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(c net.Conn, st http.ConnState) {
			s.mu.Lock()
			defer s.mu.Unlock()
			switch st {
			case http.StateNew:
				s.conns[c] = struct{}{}
			case http.StateClosed, http.StateHijacked:
				delete(s.conns, c)
			}
		}}
	go s.srv.Serve(ln)
	t.Cleanup(s.kill)
	return s
}

func (s *server) set(m mode) { s.mode.Store(int32(m)) }

// failNextN makes the next n requests fail as m, then the mode applies.
func (s *server) failNextN(n int, m mode) {
	s.failMode.Store(int32(m))
	s.failNext.Store(int32(n))
}

// unblock releases every hanging request.
func (s *server) unblock() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.release:
	default:
		close(s.release)
	}
}

// kill closes the listener (new connections are refused) and resets every
// open connection, idle or active, with an RST.
func (s *server) kill() {
	s.unblock()
	s.mu.Lock()
	if s.killed {
		s.mu.Unlock()
		return
	}
	s.killed = true
	s.ln.Close()
	for c := range s.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
	}
	s.mu.Unlock()
	s.srv.Close()
}

func (s *server) bodySums() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bodies...)
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" {
		if s.healthy.Load() {
			io.WriteString(w, "ok")
		} else {
			http.Error(w, "unhealthy", http.StatusServiceUnavailable)
		}
		return
	}
	s.hits.Add(1)
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	h := sha256.New()
	io.Copy(h, r.Body)
	sum := hex.EncodeToString(h.Sum(nil))
	s.mu.Lock()
	s.bodies = append(s.bodies, sum)
	s.mu.Unlock()
	if d := s.delay.Load(); d > 0 {
		select {
		case <-time.After(time.Duration(d)):
		case <-r.Context().Done():
			return
		}
	}
	m := mode(s.mode.Load())
	for {
		n := s.failNext.Load()
		if n <= 0 {
			break
		}
		if s.failNext.CompareAndSwap(n, n-1) {
			m = mode(s.failMode.Load())
			break
		}
	}
	switch m {
	case modeFail:
		if ra := s.retryAfter.Load().(string); ra != "" {
			w.Header().Set("Retry-After", ra)
		}
		w.Header().Set("X-Upstream", s.name)
		http.Error(w, s.name+" failing", int(s.status.Load()))
		return
	case modeHang:
		select {
		case <-s.release:
		case <-r.Context().Done():
			return
		case <-time.After(30 * time.Second): // bounded, whatever happens
		}
	case modeReset:
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("X-Upstream", s.name)
	w.Header().Set("X-Body-SHA256", sum)
	io.WriteString(w, s.name)
}

// gw is a gateway running in-process from a config file.
type gw struct{ *gwtest.Gateway }

// head is the start of every test config: one listener and the admin API
// on free ports, no access log.
const head = gwtest.Head

// start runs the gateway from a file holding head+body (see gwtest);
// reload rewrites that file. The gateway stops when the test ends.
func start(t *testing.T, body string) *gw {
	t.Helper()
	return &gw{gwtest.Start(t, head+body)}
}

func (g *gw) write(t *testing.T, body string) {
	t.Helper()
	g.Write(t, head+body)
}

// reload rewrites the config file and applies it.
func (g *gw) reload(t *testing.T, body string) {
	t.Helper()
	g.Reload(t, head+body)
}

// newClient returns an HTTP/1.1 client with a bounded timeout.
func newClient(t *testing.T) *http.Client { return gwtest.Client(t, 20*time.Second) }

// reply is a response with its body read.
type reply struct {
	status int
	header http.Header
	body   string
	err    error
}

// send sends a request through the gateway; it never fails the test, so
// it may be used from worker goroutines.
func send(c *http.Client, method, url string, body []byte, hdr map[string]string) reply {
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(string(body))
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return reply{err: err}
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return reply{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: string(b), err: err}
}

func get(c *http.Client, url string) reply { return send(c, http.MethodGet, url, nil, nil) }

// errorCode returns the code of a gateway-made JSON error body.
func errorCode(body string) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	json.Unmarshal([]byte(body), &e)
	return e.Error.Code
}

// targetView and upstreamView are what /api/v1/upstreams reports.
type targetView struct {
	Address        string     `json:"address"`
	Healthy        bool       `json:"healthy"`
	Ejected        bool       `json:"ejected"`
	EjectedUntil   *time.Time `json:"ejected_until"`
	ActiveRequests int64      `json:"active_requests"`
	LatencyEWMAms  float64    `json:"latency_ewma_ms"`
}

type upstreamView struct {
	Name    string       `json:"name"`
	Circuit string       `json:"circuit"`
	Panic   bool         `json:"panic_mode"`
	Targets []targetView `json:"targets"`
}

// upstreams reads the admin API's view of every upstream, by name.
func (g *gw) upstreams(t *testing.T) map[string]upstreamView {
	t.Helper()
	resp, err := http.Get(g.Admin + "/api/v1/upstreams")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Upstreams []upstreamView `json:"upstreams"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatalf("decode /api/v1/upstreams: %v", err)
	}
	out := map[string]upstreamView{}
	for _, u := range doc.Upstreams {
		out[u.Name] = u
	}
	return out
}

// target returns the admin view of addr in upstream up.
func (g *gw) target(t *testing.T, up, addr string) targetView {
	t.Helper()
	for _, tv := range g.upstreams(t)[up].Targets {
		if tv.Address == addr {
			return tv
		}
	}
	t.Fatalf("upstream %s has no target %s", up, addr)
	return targetView{}
}

// metric returns the value of the series whose name and labels (a subset,
// `k="v"` pairs) match, and whether there is one.
func (g *gw) metric(t *testing.T, name string, labels ...string) (float64, bool) {
	t.Helper()
	resp, err := http.Get(g.Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	total, found := 0.0, false
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(line, l) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		total += v
		found = true
	}
	return total, found
}

// lbl formats a label matcher for metric.
func lbl(k, v string) string { return fmt.Sprintf("%s=%q", k, v) }
