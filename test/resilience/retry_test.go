package resilience

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestKillTargetUnderLoad is the high-availability promise: a target dies
// (its listener closes and its open connections are reset) under steady
// concurrent load while a healthy one remains, and with retries on
// idempotent GETs no client request fails.
func TestKillTargetUnderLoad(t *testing.T) {
	const (
		workers = 8
		runFor  = 2 * time.Second
		killAt  = 700 * time.Millisecond
	)
	for _, tc := range []struct {
		name    string
		passive string
	}{
		{"retries", ""},
		{"retries+passive-ejection", "    health_check:\n      passive: {consecutive_5xx: 5, consecutive_connect_failures: 2, base_ejection_time: 30s}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newServer(t, "a"), newServer(t, "b")
			// A little latency keeps requests in flight on b when it dies.
			a.delay.Store(int64(5 * time.Millisecond))
			b.delay.Store(int64(5 * time.Millisecond))
			g := start(t, "upstreams:\n  app:\n"+targetsYAML([]*server{a, b})+tc.passive+
				oneRoute("    retry: {attempts: 3, on: [connect_failure, reset, gateway_error], backoff: {base: 5ms, max: 50ms}}\n"))
			c := newClient(t)

			var total, failed atomic.Int64
			var mu sync.Mutex
			var firstErrs []string
			stop := time.Now().Add(runFor)
			var wg sync.WaitGroup
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for n := 0; n < 100_000 && time.Now().Before(stop); n++ {
						r := get(c, g.URL+"/x")
						total.Add(1)
						if r.err != nil || r.status != 200 {
							failed.Add(1)
							mu.Lock()
							if len(firstErrs) < 5 {
								firstErrs = append(firstErrs, fmt.Sprintf("err=%v status=%d body=%q", r.err, r.status, r.body))
							}
							mu.Unlock()
						}
					}
				}()
			}
			time.Sleep(killAt)
			bBefore := b.hits.Load()
			inflight := b.inflight.Load()
			b.kill()
			wg.Wait()
			t.Logf("%s: %d requests by %d workers over %s, b killed after %d hits with %d in flight; failed client requests: %d",
				tc.name, total.Load(), workers, runFor, bBefore, inflight, failed.Load())
			if bBefore == 0 {
				t.Fatal("b got no traffic before it was killed")
			}
			if n := failed.Load(); n != 0 {
				t.Fatalf("%d of %d client requests failed, want 0; first: %v", n, total.Load(), firstErrs)
			}
			if v, _ := g.metric(t, "rampart_retries_total", lbl("route", "app"), lbl("upstream", "app")); v == 0 {
				t.Error("no retries counted although a target died under load")
			}
		})
	}
}

// TestRetryBudget: during a total outage, the retry budget holds upstream
// attempts near (1 + percent) × requests, where five attempts per request
// would otherwise be made.
func TestRetryBudget(t *testing.T) {
	const (
		requests = 500
		percent  = 20.0
		minPerS  = 5.0
		window   = 10 * time.Second // retry.DefaultWindow: the reserve is min_per_second × window
	)
	a, b := newServer(t, "a"), newServer(t, "b")
	a.set(modeFail)
	b.set(modeFail)
	g := start(t, "upstreams:\n  app:\n"+targetsYAML([]*server{a, b})+
		oneRoute(fmt.Sprintf("    retry: {attempts: 5, on: [503], backoff: {base: 1ms, max: 2ms}, budget: {percent: %v, min_per_second: %v}}\n", percent, minPerS)))
	c := newClient(t)
	begin := time.Now()
	got := counts(doFunc(func(int) reply { return get(c, g.URL+"/x") }), requests, 8)
	elapsed := time.Since(begin)
	if got[""] != requests {
		t.Fatalf("want every request to fail with the upstream's 503, got %v", got)
	}
	attempts := a.hits.Load() + b.hits.Load()
	// The reserve covers min_per_second over the budget's whole window,
	// however short the run. While the run fits in one window (its first
	// 1 s bucket has not slid out) the budget's bound is exact. On a
	// machine so loaded that the run outlives that, each retry is still
	// bounded by the window ending at it: cut the run into K windows, and
	// each window's retries are within percent of the requests of it and
	// the one before, plus one reserve.
	reserve := minPerS * window.Seconds()
	limit := (1+percent/100)*requests + reserve + 5
	if elapsed >= window-window/10 {
		k := math.Ceil(elapsed.Seconds()/window.Seconds()) + 1
		limit = (1+2*percent/100)*requests + k*reserve + 5
		t.Logf("the run outlived the budget window (machine under load): looser bound")
	}
	t.Logf("budget: %d requests caused %d upstream attempts (%.2f per request) in %s; limit %.0f, without a budget %d",
		requests, attempts, float64(attempts)/requests, elapsed.Round(time.Millisecond), limit, 5*requests)
	if float64(attempts) > limit {
		t.Errorf("%d upstream attempts for %d requests, over the budget's %.0f", attempts, requests, limit)
	}
	if attempts <= requests {
		t.Errorf("%d upstream attempts for %d requests: no retry happened", attempts, requests)
	}
	retries, _ := g.metric(t, "rampart_retries_total", lbl("route", "app"))
	if int64(retries) != attempts-requests {
		t.Errorf("rampart_retries_total %v, want attempts - requests = %d", retries, attempts-requests)
	}
}

// TestRetryOtherTarget: a retry goes to another target than the one that
// failed.
func TestRetryOtherTarget(t *testing.T) {
	a, b := newServer(t, "a"), newServer(t, "b")
	a.set(modeReset)
	g := start(t, "upstreams:\n  app:\n"+targetsYAML([]*server{a, b})+
		oneRoute("    retry: {attempts: 2, on: [reset, connect_failure]}\n"))
	c := newClient(t)
	const n = 20
	for range n {
		r := get(c, g.URL+"/x")
		if r.err != nil || r.status != 200 || r.header.Get("X-Upstream") != "b" {
			t.Fatalf("want 200 from b, got %v %d %q", r.err, r.status, r.body)
		}
	}
	if a.hits.Load() == 0 {
		t.Fatal("a never got a first attempt: round_robin should alternate")
	}
	if b.hits.Load() != n {
		t.Errorf("b served %d attempts, want exactly %d (one per request)", b.hits.Load(), n)
	}
	resets, _ := g.metric(t, "rampart_upstream_requests_total", lbl("upstream", "app"), lbl("target", a.addr), lbl("code", "reset"))
	retries, _ := g.metric(t, "rampart_retries_total", lbl("route", "app"))
	t.Logf("a reset %d attempts (metric %v); retries %v; b served %d", a.hits.Load(), resets, retries, b.hits.Load())
	if resets == 0 || retries != resets {
		t.Errorf("resets on a %v, retries %v: want equal and > 0", resets, retries)
	}
}

// TestRetryNonIdempotent: POST is retried only when the request never left
// (connect_failure), unless retry.non_idempotent is set; the body is
// replayed intact from the 64 KiB buffer, and a larger body is not retried.
func TestRetryNonIdempotent(t *testing.T) {
	small := make([]byte, 10<<10)
	rand.Read(small)
	large := make([]byte, 100<<10)
	rand.Read(large)
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	const retryAll = "    retry: {attempts: 3, on: [connect_failure, reset, gateway_error], backoff: {base: 1ms, max: 5ms}%s}\n"
	tests := []struct {
		name          string
		nonIdempotent bool
		dead          bool // a dead target comes first in the upstream
		fail          mode // how the live target fails its first attempt
		body          []byte
		wantStatus    int
		wantHits      int64 // attempts the live target sees
	}{
		{name: "reset-not-retried", fail: modeReset, body: small, wantStatus: 502, wantHits: 1},
		{name: "503-not-retried", fail: modeFail, body: small, wantStatus: 503, wantHits: 1},
		{name: "connect_failure-retried", dead: true, fail: modeOK, body: small, wantStatus: 200, wantHits: 1},
		{name: "non_idempotent-reset-retried", nonIdempotent: true, fail: modeReset, body: small, wantStatus: 200, wantHits: 2},
		{name: "non_idempotent-503-retried", nonIdempotent: true, fail: modeFail, body: small, wantStatus: 200, wantHits: 2},
		{name: "non_idempotent-body-over-64KiB-not-retried", nonIdempotent: true, fail: modeFail, body: large, wantStatus: 503, wantHits: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			live := newServer(t, "live")
			ss := []*server{live}
			if tc.dead {
				dead := newServer(t, "dead")
				dead.kill()
				ss = []*server{dead, live}
			}
			if tc.fail != modeOK {
				live.failNextN(1, tc.fail)
			}
			ni := ""
			if tc.nonIdempotent {
				ni = ", non_idempotent: true"
			}
			g := start(t, "upstreams:\n  app:\n"+targetsYAML(ss)+oneRoute(fmt.Sprintf(retryAll, ni)))
			c := newClient(t)
			// round_robin starts with the first target: the dead one, if any.
			r := send(c, "POST", g.URL+"/x", tc.body, nil)
			if r.err != nil || r.status != tc.wantStatus {
				t.Fatalf("got %v %d %q, want status %d", r.err, r.status, r.body, tc.wantStatus)
			}
			if h := live.hits.Load(); h != tc.wantHits {
				t.Errorf("upstream saw %d attempts, want %d", h, tc.wantHits)
			}
			for i, s := range live.bodySums() {
				if s != sum(tc.body) {
					t.Errorf("attempt %d: body sha256 %s, want %s", i+1, s, sum(tc.body))
				}
			}
			if tc.dead {
				if v, _ := g.metric(t, "rampart_upstream_requests_total", lbl("code", "connect_failure")); v != 1 {
					t.Errorf("connect failures counted: %v, want 1 (the first attempt, to the dead target)", v)
				}
			}
			if tc.wantStatus == 200 && r.header.Get("X-Body-SHA256") != sum(tc.body) {
				t.Errorf("answering attempt saw body sha256 %s", r.header.Get("X-Body-SHA256"))
			}
		})
	}
}

// TestRetryAfter: an upstream's Retry-After delays the retry, and a retry
// that would outlive the route timeout is not made.
func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name       string
		timeout    string
		wantStatus int
		wantHits   int64
	}{
		{"honoured-within-timeout", "3s", 200, 2},
		{"not-beyond-route-timeout", "500ms", 503, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, "s")
			s.retryAfter.Store("1")
			s.failNextN(1, modeFail)
			g := start(t, "upstreams:\n  app:\n"+targetsYAML([]*server{s})+
				oneRoute("    timeout: "+tc.timeout+"\n    retry: {attempts: 2, on: [503], backoff: {base: 1ms, max: 5ms}}\n"))
			c := newClient(t)
			begin := time.Now()
			r := get(c, g.URL+"/x")
			took := time.Since(begin)
			t.Logf("%s: status %d after %s", tc.name, r.status, took.Round(time.Millisecond))
			if r.err != nil || r.status != tc.wantStatus {
				t.Fatalf("got %v %d %q, want %d", r.err, r.status, r.body, tc.wantStatus)
			}
			if h := s.hits.Load(); h != tc.wantHits {
				t.Errorf("upstream saw %d attempts, want %d", h, tc.wantHits)
			}
			if tc.wantStatus == 200 && took < 900*time.Millisecond {
				t.Errorf("retried after %s, before the upstream's Retry-After: 1", took)
			}
		})
	}
}

// TestRetryFirstAttemptsAlternate is issue 15 bug 6 end to end: two
// targets, one answering 503, retry {attempts: 3, on: [503]}. A retry must
// not advance the round-robin position, so first attempts still alternate:
// the failing target gets half of them, not all.
func TestRetryFirstAttemptsAlternate(t *testing.T) {
	a, b := newServer(t, "a"), newServer(t, "b")
	a.set(modeFail)
	g := start(t, "upstreams:\n  app:\n"+targetsYAML([]*server{a, b})+
		oneRoute("    retry: {attempts: 3, on: [503], backoff: {base: 1ms, max: 1ms}}\n"))
	c := newClient(t)
	const n = 20
	for range n {
		if r := get(c, g.URL+"/x"); r.err != nil || r.status != 200 {
			t.Fatalf("want 200, got %v %d %q", r.err, r.status, r.body)
		}
	}
	// a's hits are all first attempts (a retry never returns to it).
	if got := a.hits.Load(); got != n/2 {
		t.Fatalf("failing target got %d of %d first attempts, want %d (b served %d)", got, n, n/2, b.hits.Load())
	}
}
