package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func mustLoad(t *testing.T, doc string) *Config {
	t.Helper()
	c, err := LoadBytes("t.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// retry.on defaults to [connect_failure, reset] only when the key is
// absent; an explicit empty list is kept and retries nothing.
func TestRetryOnDefaultOnlyWhenAbsent(t *testing.T) {
	absent := mustLoad(t, strings.Replace(base, "upstream: app", "upstream: app\n    retry: {attempts: 3}", 1))
	if got := absent.Routes[0].Retry.On; !slices.Equal(got, []string{"connect_failure", "reset"}) {
		t.Errorf("retry.on absent: got %v, want [connect_failure reset]", got)
	}
	empty := mustLoad(t, strings.Replace(base, "upstream: app", "upstream: app\n    retry: {attempts: 3, on: []}", 1))
	if got := empty.Routes[0].Retry.On; len(got) != 0 {
		t.Errorf("retry.on: []: got %v, want it kept empty", got)
	}
}

// retry.backoff defaults only when absent; an explicit zero is kept.
func TestRetryBackoffZeroKept(t *testing.T) {
	absent := mustLoad(t, strings.Replace(base, "upstream: app", "upstream: app\n    retry: {attempts: 3}", 1))
	if b := absent.Routes[0].Retry.Backoff; b.Base.D() != 25*time.Millisecond || b.Max.D() != 250*time.Millisecond {
		t.Errorf("backoff absent: got %v/%v, want 25ms/250ms", b.Base, b.Max)
	}
	zero := mustLoad(t, strings.Replace(base, "upstream: app", "upstream: app\n    retry: {attempts: 3, backoff: {base: 0s, max: 0s}}", 1))
	if b := zero.Routes[0].Retry.Backoff; b.Base != 0 || b.Max != 0 {
		t.Errorf("backoff {0s, 0s}: got %v/%v, want both kept 0", b.Base, b.Max)
	}
}

// validateErr loads doc and returns its one error, or fails.
func validateErr(t *testing.T, doc string) string {
	t.Helper()
	_, err := LoadBytes("t.yaml", []byte(doc))
	if err == nil {
		t.Fatal("config accepted")
	}
	return err.Error()
}

// health_check.panic_threshold and bounded_load are checked by Validate,
// positioned at the field itself (they were only found by cluster.Build,
// positioned at the upstream).
func TestUpstreamFieldPositions(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"panic threshold", strings.Replace(base, `targets: [{address: "127.0.0.1:9001"}]`, "targets: [{address: \"127.0.0.1:9001\"}]\n    health_check:\n      panic_threshold: 101", 1),
			"t.yaml:7:24: upstreams.app.health_check.panic_threshold: 101 out of range 0-100"},
		{"panic threshold negative", strings.Replace(base, `targets: [{address: "127.0.0.1:9001"}]`, "targets: [{address: \"127.0.0.1:9001\"}]\n    health_check: {panic_threshold: -1}", 1),
			"t.yaml:6:37: upstreams.app.health_check.panic_threshold: -1 out of range 0-100"},
		{"bounded load", strings.Replace(base, `targets: [{address: "127.0.0.1:9001"}]`, "targets: [{address: \"127.0.0.1:9001\"}]\n    balancer: ring_hash\n    bounded_load: 0.5", 1),
			"t.yaml:7:19: upstreams.app.bounded_load: bounded load factor must be 0 (off) or at least 1, got 0.5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := validateErr(t, tc.doc); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// A failover cycle is refused by Validate at the failover key that closes
// it, naming the cycle (it was cut at run time by a 4-hop guard).
func TestFailoverCycle(t *testing.T) {
	doc := `listeners:
  - address: "127.0.0.1:8080"
upstreams:
  a:
    targets: [{address: "127.0.0.1:9001"}]
    failover: b
  b:
    targets: [{address: "127.0.0.1:9002"}]
    failover: c
  c:
    targets: [{address: "127.0.0.1:9003"}]
    failover: a
  d:
    targets: [{address: "127.0.0.1:9004"}]
    failover: a
routes:
  - upstream: d
`
	want := "t.yaml:6:15: upstreams.a.failover: failover cycle a -> b -> c -> a"
	if got := validateErr(t, doc); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	two := strings.Replace(strings.Replace(doc, "failover: c", "failover: a", 1), "    failover: a\n  d:", "  d:", 1)
	want = "t.yaml:6:15: upstreams.a.failover: failover cycle a -> b -> a"
	if got := validateErr(t, two); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	chain := strings.Replace(doc, "    failover: a\n  d:", "  d:", 1)
	if _, err := LoadBytes("t.yaml", []byte(chain)); err != nil {
		t.Errorf("a failover chain without a cycle was refused: %v", err)
	}
}

// The passive health check's defaults are applied in config (issue 16):
// max_ejection_time is 300s or base_ejection_time if longer, and
// consecutive_connect_failures 5, also for an explicit 0.
func TestPassiveDefaults(t *testing.T) {
	tests := []struct {
		passive  string
		maxEject time.Duration
		conn     int
	}{
		{"{}", 300 * time.Second, 5},
		{"{base_ejection_time: 400s}", 400 * time.Second, 5},
		{"{base_ejection_time: 10s, max_ejection_time: 20s}", 20 * time.Second, 5},
		{"{consecutive_connect_failures: 0}", 300 * time.Second, 5},
		{"{consecutive_connect_failures: 2}", 300 * time.Second, 2},
	}
	for _, tc := range tests {
		c := mustLoad(t, strings.Replace(base, `targets: [{address: "127.0.0.1:9001"}]`, `targets: [{address: "127.0.0.1:9001"}]`+"\n    health_check: {passive: "+tc.passive+"}", 1))
		p := c.Upstreams["app"].HealthCheck.Passive
		if p.MaxEjectionTime.D() != tc.maxEject || p.ConsecutiveConnectFailures != tc.conn {
			t.Errorf("passive %s: max_ejection_time %v, consecutive_connect_failures %d; want %v, %d", tc.passive, p.MaxEjectionTime, p.ConsecutiveConnectFailures, tc.maxEject, tc.conn)
		}
	}
	for _, bad := range []struct{ passive, want string }{
		{"{consecutive_connect_failures: -1}", "upstreams.app.health_check.passive.consecutive_connect_failures: must not be negative"},
		{"{max_ejection_time: -1s}", "upstreams.app.health_check.passive.max_ejection_time: negative duration"},
	} {
		got := validateErr(t, strings.Replace(base, `targets: [{address: "127.0.0.1:9001"}]`, `targets: [{address: "127.0.0.1:9001"}]`+"\n    health_check: {passive: "+bad.passive+"}", 1))
		if !strings.Contains(got, bad.want) {
			t.Errorf("passive %s: got %s, want %s", bad.passive, got, bad.want)
		}
	}
}
