package resilience

import (
	"testing"
	"time"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// TestMetrics: the resilience metrics appear in /metrics with values that
// match what happened.
func TestMetrics(t *testing.T) {
	a, b := newServer(t, "a"), newServer(t, "b")
	b.healthy.Store(false)
	a.failNextN(1, modeFail)
	g := start(t, activeUpstream([]*server{a, b}, "")+
		oneRoute("    retry: {attempts: 2, on: [503], backoff: {base: 1ms, max: 2ms}}\n"))
	gwtest.WaitFor(t, 5*time.Second, "b marked unhealthy", func() bool { return !g.target(t, "app", b.addr).Healthy })
	c := newClient(t)
	for range 5 {
		if r := get(c, g.URL+"/x"); r.status != 200 {
			t.Fatalf("status %d %q", r.status, r.body)
		}
	}
	tests := []struct {
		name   string
		metric string
		labels []string
		want   float64
	}{
		{"retry counted", "rampart_retries_total", []string{lbl("route", "app"), lbl("upstream", "app")}, 1},
		{"503 attempt counted", "rampart_upstream_requests_total", []string{lbl("upstream", "app"), lbl("target", a.addr), lbl("code", "503")}, 1},
		{"200 attempts counted", "rampart_upstream_requests_total", []string{lbl("upstream", "app"), lbl("target", a.addr), lbl("code", "200")}, 5},
		{"healthy target", "rampart_upstream_target_healthy", []string{lbl("upstream", "app"), lbl("target", a.addr)}, 1},
		{"unhealthy target", "rampart_upstream_target_healthy", []string{lbl("upstream", "app"), lbl("target", b.addr)}, 0},
		{"circuit closed", "rampart_upstream_circuit_open", []string{lbl("upstream", "app")}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, ok := g.metric(t, tc.metric, tc.labels...)
			if !ok {
				t.Fatalf("no %s%v in /metrics", tc.metric, tc.labels)
			}
			if v != tc.want {
				t.Errorf("%s%v = %v, want %v", tc.metric, tc.labels, v, tc.want)
			}
		})
	}
	if v, ok := g.metric(t, "rampart_upstream_request_duration_seconds_count", lbl("upstream", "app")); !ok || v != 6 {
		t.Errorf("rampart_upstream_request_duration_seconds_count = %v (present %v), want 6 attempts", v, ok)
	}
}
