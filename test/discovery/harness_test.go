package discovery

import (
	"bufio"
	"context"
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

// backend is an upstream instance: it answers with its name, counts the
// requests it serves and the connections open to it, and answers
// /healthz with 200 or 503 on command. /slow waits for slowFor first.
type backend struct {
	name    string
	addr    string
	srv     *http.Server
	hits    atomic.Int64
	open    atomic.Int64 // connections open now
	sick    atomic.Bool
	slowFor time.Duration
	stopped sync.Once
}

// newBackend starts a backend listening on addr ("127.0.0.1:0", or a
// given host:port).
func newBackend(t *testing.T, name, addr string) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	return serveBackend(t, name, ln)
}

func serveBackend(t *testing.T, name string, ln net.Listener) *backend {
	b := &backend{name: name, addr: ln.Addr().String(), slowFor: 300 * time.Millisecond}
	b.srv = &http.Server{Handler: b, ConnState: func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			b.open.Add(1)
		case http.StateClosed, http.StateHijacked:
			b.open.Add(-1)
		}
	}}
	go b.srv.Serve(ln)
	t.Cleanup(b.stop)
	return b
}

// pair starts two backends on one port, on 127.0.0.1 and on ::1: DNS
// names give addresses, and every address gets the configured port.
func pair(t *testing.T) (v4, v6 *backend, port int) {
	t.Helper()
	for range 20 {
		ln4, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = ln4.Addr().(*net.TCPAddr).Port
		ln6, err := net.Listen("tcp", net.JoinHostPort("::1", strconv.Itoa(port)))
		if err != nil {
			ln4.Close()
			continue
		}
		return serveBackend(t, "v4", ln4), serveBackend(t, "v6", ln6), port
	}
	t.Fatal("no port free on both 127.0.0.1 and ::1")
	return nil, nil, 0
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" {
		if b.sick.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		return
	}
	io.Copy(io.Discard, r.Body)
	b.hits.Add(1)
	if r.URL.Path == "/slow" {
		time.Sleep(b.slowFor)
	}
	w.Header().Set("X-Backend", b.name)
	io.WriteString(w, b.name)
}

// stop shuts the backend down gracefully: requests in flight finish.
func (b *backend) stop() {
	b.stopped.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b.srv.Shutdown(ctx)
	})
}

// load sends GET requests from n workers until stop is called, and
// counts answers that are not 200 from a backend.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []string
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

func startLoad(t *testing.T, url string, workers int) *load {
	c := gwtest.Client(t, 10*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel}
	for range workers {
		l.wg.Go(func() {
			// Bounded: a worker sends at most this many requests.
			for i := 0; i < 1_000_000 && ctx.Err() == nil; i++ {
				l.record(get(c, url))
				time.Sleep(time.Millisecond)
			}
		})
	}
	t.Cleanup(l.stop)
	return l
}

func (l *load) record(r reply) {
	if r.status == http.StatusOK && r.backend != "" {
		l.ok.Add(1)
		return
	}
	l.failed.Add(1)
	l.mu.Lock()
	if len(l.errs) < 10 {
		l.errs = append(l.errs, fmt.Sprintf("%d %s", r.status, r.body))
	}
	l.mu.Unlock()
}

func (l *load) stop() { l.cancel(); l.wg.Wait() }

type reply struct {
	status  int
	body    string
	backend string
}

func get(c *http.Client, url string) reply {
	resp, err := c.Get(url)
	if err != nil {
		return reply{body: err.Error()}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, body: string(b), backend: resp.Header.Get("X-Backend")}
}

// The admin API's view of upstreams, as much as these tests read.
type targetView struct {
	Address  string `json:"address"`
	Weight   int    `json:"weight"`
	Priority int    `json:"priority"`
	Healthy  bool   `json:"healthy"`
}

type discoveryView struct {
	Type        string     `json:"type"`
	Source      string     `json:"source"`
	LastRefresh *time.Time `json:"last_refresh"`
	LastError   string     `json:"last_error"`
	Targets     int        `json:"targets"`
	Failures    uint64     `json:"failures"`
}

type upstreamView struct {
	Name      string         `json:"name"`
	Discovery *discoveryView `json:"discovery"`
	Targets   []targetView   `json:"targets"`
}

func upstream(t *testing.T, g *gwtest.Gateway, name string) upstreamView {
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
		t.Fatal(err)
	}
	for _, u := range doc.Upstreams {
		if u.Name == name {
			return u
		}
	}
	t.Fatalf("no upstream %s", name)
	return upstreamView{}
}

// addrs returns the target addresses the admin API shows for name.
func addrs(t *testing.T, g *gwtest.Gateway, name string) []string {
	t.Helper()
	var out []string
	for _, tv := range upstream(t, g, name).Targets {
		out = append(out, tv.Address)
	}
	return out
}

// metric returns the sum of the series of name whose labels include all
// of labels (k="v" pairs).
func metric(t *testing.T, g *gwtest.Gateway, name string, labels ...string) (float64, bool) {
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
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatal(err)
		}
		total, found = total+v, true
	}
	return total, found
}

func lbl(k, v string) string { return fmt.Sprintf("%s=%q", k, v) }

// errorBody is the gateway's JSON error.
type errorBody struct {
	Error struct {
		Status  int    `json:"status"`
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func decodeError(t *testing.T, body string) errorBody {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return e
}
