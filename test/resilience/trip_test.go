package resilience

import (
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// tripUpstream is an upstream over s with a failure-tripped breaker.
func tripUpstream(s *server, trip string) string {
	return "upstreams:\n  app:\n" + targetsYAML([]*server{s}) + "    circuit_breaker: {trip: " + trip + "}\n"
}

// shedCircuit checks that one request is answered 503 circuit_open with a
// Retry-After, without reaching s, and returns how long it took.
func shedCircuit(t *testing.T, g *gw, s *server) time.Duration {
	t.Helper()
	before := s.hits.Load()
	begin := time.Now()
	r := get(newClient(t), g.URL+"/x")
	took := time.Since(begin)
	if r.err != nil || r.status != 503 || errorCode(r.body) != "circuit_open" {
		t.Fatalf("while open: %v %d %q, want 503 circuit_open", r.err, r.status, r.body)
	}
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After %q, want whole seconds >= 1", r.header.Get("Retry-After"))
	}
	if h := s.hits.Load(); h != before {
		t.Errorf("the upstream got %d requests while the circuit was open", h-before)
	}
	return took
}

// TestTripOpensOnConsecutiveFailures: after consecutive_failures 5xx in a
// row the circuit opens: requests are answered at once with no upstream
// attempt; after open_for, half-open probes that succeed close it.
func TestTripOpensOnConsecutiveFailures(t *testing.T) {
	s := newServer(t, "s")
	s.set(modeFail)
	g := start(t, tripUpstream(s, "{consecutive_failures: 3, min_requests: 1000, open_for: 400ms, half_open_requests: 2}")+oneRoute(""))
	c := newClient(t)
	for i := range 3 {
		if r := get(c, g.URL+"/x"); r.status != 503 || errorCode(r.body) == "circuit_open" {
			t.Fatalf("failure %d: %d %q, want the upstream's own 503", i, r.status, r.body)
		}
	}
	took := shedCircuit(t, g, s)
	t.Logf("answered while open in %s (client-side, loopback included)", took)
	if u := g.upstreams(t)["app"]; u.Circuit != "open" {
		t.Errorf("admin circuit %q, want open", u.Circuit)
	}
	gwtest.WaitFor(t, 3*time.Second, "rampart_upstream_circuit_open 1", func() bool {
		v, _ := g.metric(t, "rampart_upstream_circuit_open", lbl("upstream", "app"))
		return v == 1
	})
	// The upstream recovers; once open_for has passed, two probes close it.
	s.set(modeOK)
	time.Sleep(450 * time.Millisecond)
	for i := range 2 {
		if r := get(c, g.URL+"/x"); r.status != 200 {
			t.Fatalf("probe %d: %d %q", i, r.status, r.body)
		}
	}
	gwtest.WaitFor(t, 3*time.Second, "circuit closed", func() bool { return g.upstreams(t)["app"].Circuit == "closed" })
	for range 5 {
		if r := get(c, g.URL+"/x"); r.status != 200 {
			t.Fatalf("after closing: %d %q", r.status, r.body)
		}
	}
}

// TestTripOpensOnFailureRatio: half the requests in the window failing
// opens the circuit once min_requests were seen, although no run of
// failures reached consecutive_failures.
func TestTripOpensOnFailureRatio(t *testing.T) {
	s := newServer(t, "s")
	g := start(t, tripUpstream(s, "{consecutive_failures: 100, failure_ratio: 0.5, min_requests: 10, window: 10s, open_for: 5s}")+oneRoute(""))
	c := newClient(t)
	for i := range 10 {
		if i%2 == 1 { // the tenth request is a failure
			s.set(modeFail)
		} else {
			s.set(modeOK)
		}
		if r := get(c, g.URL+"/x"); errorCode(r.body) == "circuit_open" {
			t.Fatalf("request %d: opened before min_requests", i)
		}
	}
	s.set(modeOK)
	shedCircuit(t, g, s)
}

// TestTripHalfOpenFailureReopensLonger: a failed probe opens the circuit
// again, for twice as long.
func TestTripHalfOpenFailureReopensLonger(t *testing.T) {
	s := newServer(t, "s")
	s.set(modeFail)
	g := start(t, tripUpstream(s, "{consecutive_failures: 1, open_for: 400ms, max_open_for: 10s, half_open_requests: 1}")+oneRoute(""))
	c := newClient(t)
	get(c, g.URL+"/x") // opens for 400ms
	shedCircuit(t, g, s)
	time.Sleep(450 * time.Millisecond)
	if r := get(c, g.URL+"/x"); r.status != 503 || errorCode(r.body) == "circuit_open" {
		t.Fatalf("probe: %d %q, want the upstream's 503", r.status, r.body)
	}
	// Reopened for 800ms: still open after another 450ms.
	time.Sleep(450 * time.Millisecond)
	shedCircuit(t, g, s)
	time.Sleep(450 * time.Millisecond)
	s.set(modeOK)
	if r := get(c, g.URL+"/x"); r.status != 200 {
		t.Fatalf("probe after the longer open period: %d %q", r.status, r.body)
	}
}

// TestTripAnswersWhileOpen: while open, the route's fallback answers, else
// a cached copy (stale_if_error), else 503 circuit_open; retries never
// reach the upstream; the state survives a reload.
func TestTripAnswersWhileOpen(t *testing.T) {
	t.Run("fallback", func(t *testing.T) {
		s := newServer(t, "s")
		s.set(modeFail)
		g := start(t, tripUpstream(s, "{consecutive_failures: 2, open_for: 1m}")+
			oneRoute("    fallback: {status: 200, content_type: text/plain, body: \"later\"}\n"))
		c := newClient(t)
		get(c, g.URL+"/x")
		get(c, g.URL+"/x")
		hits := s.hits.Load()
		r := get(c, g.URL+"/x")
		if r.status != 200 || r.body != "later" || r.header.Get("X-Rampart-Fallback") != "circuit_open" {
			t.Fatalf("got %d %q fallback=%q, want the fallback for circuit_open", r.status, r.body, r.header.Get("X-Rampart-Fallback"))
		}
		if s.hits.Load() != hits {
			t.Error("the upstream was called while the circuit was open")
		}
	})
	t.Run("stale cache", func(t *testing.T) {
		s := newServer(t, "s")
		g := start(t, tripUpstream(s, "{consecutive_failures: 2, open_for: 1m}")+
			oneRoute("    cache: {ttl: 1ms, stale_if_error: 1m}\n"))
		c := newClient(t)
		if r := get(c, g.URL+"/x"); r.status != 200 {
			t.Fatalf("warm: %d", r.status)
		}
		time.Sleep(5 * time.Millisecond)
		s.set(modeFail)
		get(c, g.URL+"/x")
		get(c, g.URL+"/x")
		hits := s.hits.Load()
		r := get(c, g.URL+"/x")
		if r.status != 200 || r.body != "s" || r.header.Get("X-Cache") != "STALE" {
			t.Fatalf("got %d %q X-Cache=%q, want the stale copy", r.status, r.body, r.header.Get("X-Cache"))
		}
		if s.hits.Load() != hits {
			t.Error("the upstream was called while the circuit was open")
		}
	})
	t.Run("retries and reload", func(t *testing.T) {
		s := newServer(t, "s")
		s.set(modeFail)
		trip := tripUpstream(s, "{consecutive_failures: 2, open_for: 1m}")
		g := start(t, trip+oneRoute("    retry: {attempts: 5, on: [\"503\"]}\n"))
		c := newClient(t)
		get(c, g.URL+"/x") // the first attempt and its retry trip it
		if h := s.hits.Load(); h != 2 {
			t.Fatalf("upstream saw %d attempts, want 2: retries stop at an open circuit", h)
		}
		shedCircuit(t, g, s)
		g.reload(t, trip+oneRoute("    retry: {attempts: 4, on: [\"503\"]}\n"))
		shedCircuit(t, g, s) // still open after the reload
	})
}

// TestTripShedsUnderLoad: a whole upstream that fails slowly under load is
// shed at once once the circuit opens, instead of every client waiting for
// its errors (p99 before and after).
func TestTripShedsUnderLoad(t *testing.T) {
	s := newServer(t, "s")
	s.set(modeFail)
	const delay = 200 * time.Millisecond
	s.delay.Store(int64(delay))
	g := start(t, tripUpstream(s, "{consecutive_failures: 10, open_for: 1m}")+oneRoute(""))
	c := newClient(t)
	run := func(n int) []time.Duration {
		var mu sync.Mutex
		var ds []time.Duration
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range n / 8 {
					begin := time.Now()
					get(c, g.URL+"/x")
					mu.Lock()
					ds = append(ds, time.Since(begin))
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds
	}
	p99 := func(ds []time.Duration) time.Duration { return ds[len(ds)*99/100] }
	before := run(16) // trips it: every one waits for the failing upstream
	hits := s.hits.Load()
	after := run(400)
	t.Logf("p99 while failing %s, after the circuit opened %s (p50 %s, max %s; %d upstream requests)", p99(before), p99(after), after[len(after)/2], after[len(after)-1], s.hits.Load()-hits)
	if s.hits.Load()-hits > 8 { // at most the requests in flight when it opened
		t.Errorf("the upstream got %d requests after the circuit opened", s.hits.Load()-hits)
	}
	// Not a timing target (the machine is shared): shed requests must not
	// wait for the upstream at all, which answers only after delay.
	if p99(after) >= delay {
		t.Errorf("p99 after opening %s: shed requests still wait for the upstream (%s)", p99(after), delay)
	}
}
