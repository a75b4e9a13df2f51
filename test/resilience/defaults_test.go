package resilience

import (
	"testing"
	"time"
)

// TestRetryOnEmptyRetriesNothing is issue 16's retry.on bug end to end: an
// explicit `on: []` retries nothing, not even the 503 that compile's own
// default (gateway_error) used to retry behind config's back.
func TestRetryOnEmptyRetriesNothing(t *testing.T) {
	s := newServer(t, "s")
	s.set(modeFail) // 503
	g := start(t, "upstreams:\n  app:\n"+targetsYAML([]*server{s})+
		oneRoute("    retry: {attempts: 3, on: []}\n"))
	c := newClient(t)
	const n = 5
	for range n {
		if r := get(c, g.URL+"/x"); r.err != nil || r.status != 503 {
			t.Fatalf("got %v %d %q, want the upstream's 503", r.err, r.status, r.body)
		}
	}
	if h := s.hits.Load(); h != n {
		t.Errorf("upstream saw %d attempts for %d requests: on: [] must not retry", h, n)
	}
}

// TestRetryBackoffExplicitZero is issue 16's retry.backoff bug end to end:
// an explicit `backoff: {base: 0s, max: 0s}` means no wait between tries,
// not the 25ms/250ms default. With the default, 20 requests of 5 tries
// would wait about 3.7 s in all (20 × 12.5+25+50+100 ms on average).
func TestRetryBackoffExplicitZero(t *testing.T) {
	s := newServer(t, "s")
	s.set(modeFail)
	g := start(t, "upstreams:\n  app:\n"+targetsYAML([]*server{s})+
		oneRoute("    retry: {attempts: 5, on: [503], backoff: {base: 0s, max: 0s}}\n"))
	c := newClient(t)
	const n = 20
	begin := time.Now()
	for range n {
		if r := get(c, g.URL+"/x"); r.err != nil || r.status != 503 {
			t.Fatalf("got %v %d %q, want 503", r.err, r.status, r.body)
		}
	}
	took := time.Since(begin)
	t.Logf("%d requests of 5 tries took %s", n, took.Round(time.Millisecond))
	if h := s.hits.Load(); h != 5*n {
		t.Errorf("upstream saw %d attempts, want %d", h, 5*n)
	}
	if took > 1500*time.Millisecond {
		t.Errorf("%d requests took %s: backoff {base: 0s, max: 0s} must not wait", n, took)
	}
}
