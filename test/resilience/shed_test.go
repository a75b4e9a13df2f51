package resilience

import (
	"strings"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// hung starts n GETs that hang at s and returns a channel that receives
// each one's reply; it waits until s holds all n.
func hung(t *testing.T, g *gw, s *server, n int) <-chan reply {
	t.Helper()
	c := newClient(t)
	out := make(chan reply, n)
	for range n {
		go func() { out <- get(c, g.URL+"/x") }()
	}
	gwtest.WaitFor(t, 5*time.Second, "requests hanging at the upstream", func() bool { return s.inflight.Load() == int64(n) })
	return out
}

// TestBreakerShedsFast: over circuit_breaker.max_requests a request is
// answered at once with 503 circuit_open and Retry-After, not after the
// stuck requests time out.
func TestBreakerShedsFast(t *testing.T) {
	s := newServer(t, "s")
	s.set(modeHang)
	g := start(t, "upstreams:\n  app:\n"+targetsYAML([]*server{s})+
		"    circuit_breaker: {max_requests: 2}\n"+oneRoute(""))
	stuck := hung(t, g, s, 2)
	begin := time.Now()
	r := get(newClient(t), g.URL+"/x")
	shedIn := time.Since(begin)
	if r.err != nil || r.status != 503 || errorCode(r.body) != "circuit_open" {
		t.Fatalf("third request: %v %d %q, want 503 circuit_open", r.err, r.status, r.body)
	}
	if r.header.Get("Retry-After") == "" {
		t.Error("circuit_open answer has no Retry-After")
	}
	if h := s.hits.Load(); h != 2 {
		t.Errorf("upstream saw %d requests, want 2: the shed one must not reach it", h)
	}
	// Shed while the two stuck requests were still open: it did not wait
	// for them.
	select {
	case r := <-stuck:
		t.Fatalf("a stuck request finished before the release: %d %q", r.status, r.body)
	default:
	}
	if u := g.upstreams(t)["app"]; u.Circuit != "open" {
		t.Errorf("admin circuit %q while max_requests are in flight, want open", u.Circuit)
	}
	gwtest.WaitFor(t, 5*time.Second, "rampart_upstream_circuit_open 1", func() bool {
		v, _ := g.metric(t, "rampart_upstream_circuit_open", lbl("upstream", "app"))
		return v == 1
	})
	s.set(modeOK)
	holdFor := time.Since(begin)
	s.unblock()
	for range 2 {
		if r := <-stuck; r.err != nil || r.status != 200 {
			t.Errorf("stuck request after release: %v %d", r.err, r.status)
		}
	}
	t.Logf("shed in %s while the stuck requests were held for %s", shedIn.Round(time.Microsecond), holdFor.Round(time.Millisecond))
	gwtest.WaitFor(t, 5*time.Second, "rampart_upstream_circuit_open 0", func() bool {
		v, _ := g.metric(t, "rampart_upstream_circuit_open", lbl("upstream", "app"))
		return v == 0
	})
	if r := get(newClient(t), g.URL+"/x"); r.status != 200 {
		t.Errorf("after the release: %d %q, want 200", r.status, r.body)
	}
}

// TestFallback: the route fallback answers instead of gateway-made errors,
// with the configured status, content type and body.
func TestFallback(t *testing.T) {
	tests := []struct {
		name     string
		fallback string
		status   int
		ctype    string
		body     string
		code     string // X-Rampart-Fallback: what it stood in for
		setup    func(t *testing.T) (*server, string)
	}{
		{
			name:     "connect-failure-502",
			fallback: `{status: 503, content_type: application/json, body: '{"error":"users unavailable"}'}`,
			status:   503, ctype: "application/json", body: `{"error":"users unavailable"}`, code: "upstream_unreachable",
			setup: func(t *testing.T) (*server, string) {
				s := newServer(t, "dead")
				s.kill()
				return s, ""
			},
		},
		{
			name:     "circuit-open",
			fallback: `{status: 200, content_type: text/plain, body: "cached elsewhere"}`,
			status:   200, ctype: "text/plain", body: "cached elsewhere", code: "circuit_open",
			setup: func(t *testing.T) (*server, string) {
				s := newServer(t, "stuck")
				s.set(modeHang)
				return s, "    circuit_breaker: {max_requests: 1}\n"
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, extra := tc.setup(t)
			g := start(t, "upstreams:\n  app:\n"+targetsYAML([]*server{s})+extra+
				oneRoute("    fallback: "+tc.fallback+"\n"))
			if tc.code == "circuit_open" {
				stuck := hung(t, g, s, 1)
				defer func() { s.unblock(); <-stuck }()
			}
			r := get(newClient(t), g.URL+"/x")
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.status != tc.status || r.header.Get("Content-Type") != tc.ctype || r.body != tc.body {
				t.Errorf("got %d %q %q, want %d %q %q", r.status, r.header.Get("Content-Type"), r.body, tc.status, tc.ctype, tc.body)
			}
			if got := r.header.Get("X-Rampart-Fallback"); got != tc.code {
				t.Errorf("X-Rampart-Fallback %q, want %q", got, tc.code)
			}
		})
	}
}

// TestStaleIfError: a cached GET is served from the cache while fresh, and
// as a stale copy with the original body once the upstream fails.
func TestStaleIfError(t *testing.T) {
	for _, tc := range []struct {
		name string
		brk  func(s *server)
	}{
		{"upstream-503", func(s *server) { s.set(modeFail) }},
		{"upstream-closed", func(s *server) { s.kill() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, "original")
			g := start(t, "upstreams:\n  app:\n"+targetsYAML([]*server{s})+
				oneRoute("    cache: {ttl: 100ms, stale_if_error: 10s}\n"))
			c := newClient(t)
			first := get(c, g.URL+"/doc")
			second := get(c, g.URL+"/doc")
			if first.status != 200 || first.header.Get("X-Cache") != "MISS" {
				t.Fatalf("first GET: %d X-Cache %q, want 200 MISS", first.status, first.header.Get("X-Cache"))
			}
			if second.status != 200 || second.header.Get("X-Cache") != "HIT" || second.body != first.body {
				t.Fatalf("second GET: %d X-Cache %q body %q, want 200 HIT %q", second.status, second.header.Get("X-Cache"), second.body, first.body)
			}
			if h := s.hits.Load(); h != 1 {
				t.Errorf("upstream saw %d requests, want 1 (the second was a hit)", h)
			}
			tc.brk(s)
			// Poll until the ttl has passed: every answer must be the
			// original body, fresh or stale.
			var r reply
			gwtest.WaitFor(t, 5*time.Second, "a stale copy", func() bool {
				r = get(c, g.URL+"/doc")
				if r.status != 200 || r.body != first.body {
					t.Fatalf("got %d %q, want the cached copy", r.status, r.body)
				}
				return r.header.Get("X-Cache") == "STALE"
			})
			if !strings.Contains(r.header.Get("Warning"), "110") {
				t.Errorf("stale answer Warning %q, want 110", r.header.Get("Warning"))
			}
		})
	}
}
