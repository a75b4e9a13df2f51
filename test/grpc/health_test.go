package grpc

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// targetHealth returns the admin API's health verdict of each target of
// upstream up, with the last probe error after it when there is one.
func targetHealth(t *testing.T, g *gateway, up string) map[string]string {
	t.Helper()
	resp, err := http.Get(g.Admin + "/api/v1/upstreams")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Upstreams []struct {
			Name    string
			Targets []struct {
				Address     string
				Healthy     bool
				HealthError string `json:"health_error"`
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, u := range body.Upstreams {
		if u.Name != up {
			continue
		}
		for _, tg := range u.Targets {
			out[tg.Address] = strings.TrimSpace(fmt.Sprint(tg.Healthy) + " " + tg.HealthError)
		}
	}
	return out
}

// TestGRPCHealthCheck: two targets checked with grpc.health.v1. One set
// NOT_SERVING is ejected and every call goes to the other; set SERVING
// again it takes calls again. A service the server does not know, and a
// target that is down, are unhealthy too.
func TestGRPCHealthCheck(t *testing.T) {
	b1, b2 := startBackend(t), startBackend(t)
	b1.Health.SetServingStatus("test.Echo", healthpb.HealthCheckResponse_SERVING)
	b2.Health.SetServingStatus("test.Echo", healthpb.HealthCheckResponse_SERVING)
	down := closedAddr(t)
	ups := fmt.Sprintf(`  echo:
    protocol: h2c
    targets: [{address: %q}, {address: %q}]
    health_check:
      active: {grpc: {service: test.Echo}, interval: 50ms, timeout: 500ms, healthy_threshold: 1, unhealthy_threshold: 2}
  other:
    protocol: h2c
    targets: [{address: %q}, {address: %q}]
    health_check:
      panic_threshold: 0
      active: {grpc: {service: no.Such}, interval: 50ms, timeout: 500ms, healthy_threshold: 1, unhealthy_threshold: 1}
`, b1.Addr, b2.Addr, b1.Addr, down)
	g := startGateway(t, ups, `routes:
  - {name: echo, match: {path: {prefix: /test.Echo/}}, upstream: echo}
  - {name: other, match: {path: {prefix: /other/}}, upstream: other}
`)
	cc := dial(t, g.Addr, nil, "")
	calls := func(n int) (int64, int64) {
		t.Helper()
		s1, s2 := b1.Echo.unary.Load(), b2.Echo.unary.Load()
		for i := range n {
			if out, err := unary(ctxTimeout(t, 5*time.Second), cc, fmt.Sprint(i)); err != nil {
				t.Fatalf("call %d: %q, %v", i, out, err)
			}
		}
		return b1.Echo.unary.Load() - s1, b2.Echo.unary.Load() - s2
	}
	if n1, n2 := calls(20); n1 == 0 || n2 == 0 {
		t.Fatalf("both serving: %d and %d calls, want both some", n1, n2)
	}

	b1.Health.SetServingStatus("test.Echo", healthpb.HealthCheckResponse_NOT_SERVING)
	gwtest.WaitFor(t, 5*time.Second, "b1 unhealthy", func() bool { return strings.HasPrefix(targetHealth(t, g, "echo")[b1.Addr], "false") })
	if n1, n2 := calls(20); n1 != 0 || n2 != 20 {
		t.Fatalf("b1 NOT_SERVING: %d and %d calls, want 0 and 20", n1, n2)
	}
	if h := targetHealth(t, g, "echo")[b1.Addr]; !strings.Contains(h, "NOT_SERVING") {
		t.Errorf("admin API for b1: %q, want the NOT_SERVING verdict", h)
	}

	b1.Health.SetServingStatus("test.Echo", healthpb.HealthCheckResponse_SERVING)
	gwtest.WaitFor(t, 5*time.Second, "b1 healthy", func() bool { return targetHealth(t, g, "echo")[b1.Addr] == "true" })
	if n1, n2 := calls(20); n1 == 0 || n2 == 0 {
		t.Fatalf("b1 SERVING again: %d and %d calls, want both some", n1, n2)
	}

	// b1 does not know the service no.Such (NOT_FOUND), and down is down.
	gwtest.WaitFor(t, 5*time.Second, "other's targets unhealthy", func() bool {
		h := targetHealth(t, g, "other")
		return strings.HasPrefix(h[down], "false") && strings.Contains(h[b1.Addr], "grpc-status 5")
	})
}
