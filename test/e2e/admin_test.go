package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// TestAdminAPI checks the admin endpoints against what the config has.
func TestAdminAPI(t *testing.T) {
	a1, a2, b1 := echoUpstream(t, "a1"), echoUpstream(t, "a2"), echoUpstream(t, "b1")
	g := startGateway(t, listenerYAML("")+fmt.Sprintf(`
upstreams:
  alpha:
    targets:
      - {address: %q, weight: 3}
      - {address: %q}
  beta: {balancer: random, targets: [{address: %q}]}
routes:
  - name: users
    match: {path: {prefix: /users/}, methods: [GET]}
    strip_prefix: true
    upstream: alpha
  - name: orders
    match: {path: {exact: /orders}}
    upstream: beta
`, a1, a2, b1))
	c := newClient(t)
	// Traffic first, so that the metrics have series for the route.
	for range 3 {
		if resp, _ := get(t, c, g.URL+"/users/1"); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	get(t, c, g.URL+"/missing")

	t.Run("healthz", func(t *testing.T) {
		resp, body := get(t, c, g.Admin+"/healthz")
		if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "ok" {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
	})
	t.Run("readyz", func(t *testing.T) {
		resp, body := get(t, c, g.Admin+"/readyz")
		if resp.StatusCode != 200 {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		resp, body := get(t, c, g.Admin+"/metrics")
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
			t.Fatalf("got %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		text := string(body)
		for _, re := range []string{
			`(?m)^rampart_http_requests_total\{[^}]*route="users"[^}]*\} 3$`,
			`(?m)^rampart_http_requests_total\{[^}]*code="200"[^}]*\} 3$`,
			`(?m)^rampart_http_requests_total\{[^}]*code="404"[^}]*\} 1$`,
			`(?m)^rampart_http_request_duration_seconds_bucket\{[^}]*route="users"`,
			`(?m)^rampart_http_request_duration_seconds_count\{route="users"\} 3$`,
			`(?m)^# TYPE rampart_http_request_duration_seconds histogram$`,
		} {
			if !regexp.MustCompile(re).MatchString(text) {
				t.Errorf("metrics do not match %s", re)
			}
		}
	})
	t.Run("config", func(t *testing.T) {
		resp, body := get(t, c, g.Admin+"/api/v1/config")
		var v struct {
			Version string         `json:"version"`
			Config  map[string]any `json:"config"`
		}
		if err := json.Unmarshal(body, &v); err != nil || resp.StatusCode != 200 {
			t.Fatalf("got %d %v: %.300s", resp.StatusCode, err, body)
		}
		if v.Version == "" || v.Config["routes"] == nil || v.Config["upstreams"] == nil {
			t.Errorf("config answer lacks version, routes or upstreams: %.300s", body)
		}
	})
	t.Run("routes", func(t *testing.T) {
		_, body := get(t, c, g.Admin+"/api/v1/routes")
		var v struct {
			Routes []struct {
				Name        string `json:"name"`
				Upstream    string `json:"upstream"`
				StripPrefix bool   `json:"strip_prefix"`
				Match       struct {
					Path    map[string]string `json:"path"`
					Methods []string          `json:"methods"`
				} `json:"match"`
			} `json:"routes"`
		}
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("%v: %.300s", err, body)
		}
		if len(v.Routes) != 2 {
			t.Fatalf("%d routes, want 2: %s", len(v.Routes), body)
		}
		r0, r1 := v.Routes[0], v.Routes[1]
		if r0.Name != "users" || r0.Upstream != "alpha" || !r0.StripPrefix || r0.Match.Path["prefix"] != "/users/" ||
			len(r0.Match.Methods) != 1 || r0.Match.Methods[0] != "GET" {
			t.Errorf("route 0 = %+v", r0)
		}
		if r1.Name != "orders" || r1.Upstream != "beta" || r1.Match.Path["exact"] != "/orders" {
			t.Errorf("route 1 = %+v", r1)
		}
	})
	t.Run("upstreams", func(t *testing.T) {
		_, body := get(t, c, g.Admin+"/api/v1/upstreams")
		var v struct {
			Upstreams []struct {
				Name     string `json:"name"`
				Balancer string `json:"balancer"`
				Targets  []struct {
					Address string `json:"address"`
					Weight  int    `json:"weight"`
					Healthy bool   `json:"healthy"`
				} `json:"targets"`
			} `json:"upstreams"`
		}
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("%v: %.300s", err, body)
		}
		got := map[string]string{}
		for _, u := range v.Upstreams {
			var ts []string
			for _, tg := range u.Targets {
				ts = append(ts, fmt.Sprintf("%s/%d/%v", tg.Address, tg.Weight, tg.Healthy))
			}
			got[u.Name] = u.Balancer + " " + strings.Join(ts, ",")
		}
		want := map[string]string{
			"alpha": fmt.Sprintf("round_robin %s/3/true,%s/1/true", a1, a2),
			"beta":  fmt.Sprintf("random %s/1/true", b1),
		}
		if len(got) != len(want) || got["alpha"] != want["alpha"] || got["beta"] != want["beta"] {
			t.Errorf("upstreams %v, want %v", got, want)
		}
	})
}

// TestAccessLog checks the JSON access log line written for a request.
func TestAccessLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	up := echoUpstream(t, "echo")
	g := startGateway(t, listenerYAML("")+fmt.Sprintf(`
upstreams:
  echo: {targets: [{address: %q}]}
routes:
  - {name: logged, match: {path: {prefix: /}}, upstream: echo}
observability:
  access_log: {path: %q}
`, up, path))
	c := newClient(t)
	req := newRequest(t, http.MethodGet, g.URL+"/some/path?x=1", nil)
	req.Header.Set("X-Request-ID", "access-log-test-1")
	resp, body := do(t, c, req)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var line map[string]any
	gwtest.WaitFor(t, 5*time.Second, "the access log line", func() bool {
		b, _ := os.ReadFile(path)
		for _, m := range jsonLines(t, b) {
			if m["request_id"] == "access-log-test-1" {
				line = m
				return true
			}
		}
		return false
	})
	want := map[string]any{
		"request_id": "access-log-test-1",
		"route":      "logged",
		"upstream":   "echo",
		"target":     up,
		"method":     "GET",
		"path":       "/some/path",
		"status":     float64(200),
		"bytes_out":  float64(len(body)),
	}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %v (%T), want %v", k, line[k], line[k], v)
		}
	}
	if d, ok := line["duration"].(float64); !ok || d < 0 {
		t.Errorf("duration = %v, want a non-negative number of seconds", line["duration"])
	}
}
