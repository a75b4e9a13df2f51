package resilience

import (
	"testing"
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
