package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/app"
	"github.com/rampart-gw/rampart/test/gwtest"
)

func TestHeaders(t *testing.T) {
	up := newUpstream(t)
	g := startGateway(t, fmt.Sprintf(`
upstreams:
  echo: {targets: [{address: %q}]}
routes:
  - {name: all, match: {path: {prefix: /}}, upstream: echo, policies: [hdr]}
policies:
  hdr:
    type: headers
    request:  {set: {X-Env: prod}, add: {X-Via: rampart}, remove: [X-Debug]}
    response: {set: {Strict-Transport-Security: max-age=31536000}, remove: [Server]}
`, up.addr))
	c := newClient(t)
	resp, b := send(t, c, "GET", g.URL+"/x", "X-Env: dev", "X-Debug: 1")
	s := decodeSeen(t, resp, b)
	if got := s.Header.Values("X-Env"); len(got) != 1 || got[0] != "prod" {
		t.Errorf("upstream X-Env %q, want [prod]", got)
	}
	if s.Header.Get("X-Debug") != "" {
		t.Error("X-Debug reached the upstream")
	}
	if s.Header.Get("X-Via") != "rampart" {
		t.Errorf("upstream X-Via %q", s.Header.Get("X-Via"))
	}
	if resp.Header.Get("Strict-Transport-Security") != "max-age=31536000" {
		t.Errorf("response HSTS %q", resp.Header.Get("Strict-Transport-Security"))
	}
	if resp.Header.Get("Server") != "" {
		t.Errorf("response Server %q not removed", resp.Header.Get("Server"))
	}
	if resp.Header.Get("X-Upstream") != "echo" {
		t.Errorf("other upstream headers lost")
	}
}

func TestIPFilter(t *testing.T) {
	up := newUpstream(t)
	g := startGateway(t, fmt.Sprintf(`
upstreams:
  echo: {targets: [{address: %q}]}
routes:
  - {name: office, match: {path: {prefix: /office/}}, upstream: echo, policies: [office]}
  - {name: local, match: {path: {prefix: /local/}}, upstream: echo, policies: [local]}
  - {name: blocked, match: {path: {prefix: /blocked/}}, upstream: echo, policies: [blocked]}
policies:
  office: {type: ip_filter, allow: [10.0.0.0/8]}
  local: {type: ip_filter, allow: ["127.0.0.1"]}
  blocked: {type: ip_filter, allow: [127.0.0.0/8], deny: ["127.0.0.1/32"]}
`, up.addr))
	c := newClient(t)
	tests := []struct {
		path   string
		status int
	}{{"/office/x", 403}, {"/local/x", 200}, {"/blocked/x", 403}}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			before := up.calls.Load()
			resp, b := send(t, c, "GET", g.URL+tc.path)
			if tc.status == 403 {
				checkError(t, resp, b, 403, "ip_denied")
				if up.calls.Load() != before {
					t.Error("refused request reached the upstream")
				}
				return
			}
			decodeSeen(t, resp, b)
		})
	}
}

func TestCORS(t *testing.T) {
	up := newUpstream(t)
	g := startGateway(t, fmt.Sprintf(`
upstreams:
  echo: {targets: [{address: %q}]}
routes:
  - {name: api, match: {path: {prefix: /}}, upstream: echo, policies: [cors]}
policies:
  cors:
    type: cors
    allow_origins: ["https://app.example.com"]
    allow_methods: [GET, POST, DELETE]
    allow_headers: [Authorization, Content-Type]
    expose_headers: [X-Request-ID]
    allow_credentials: true
    max_age: 10m
`, up.addr))
	c := newClient(t)
	t.Run("preflight answered by the gateway", func(t *testing.T) {
		before := up.calls.Load()
		resp, b := send(t, c, "OPTIONS", g.URL+"/items/1", "Origin: https://app.example.com",
			"Access-Control-Request-Method: DELETE", "Access-Control-Request-Headers: authorization")
		if resp.StatusCode != 204 {
			t.Fatalf("status %d; %s", resp.StatusCode, b)
		}
		want := map[string]string{
			"Access-Control-Allow-Origin":      "https://app.example.com",
			"Access-Control-Allow-Methods":     "GET, POST, DELETE",
			"Access-Control-Allow-Headers":     "Authorization, Content-Type",
			"Access-Control-Allow-Credentials": "true",
			"Access-Control-Max-Age":           "600",
		}
		for k, v := range want {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s = %q, want %q", k, got, v)
			}
		}
		if !strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Origin") {
			t.Errorf("Vary %q", resp.Header.Values("Vary"))
		}
		if up.calls.Load() != before {
			t.Fatal("preflight reached the upstream")
		}
	})
	t.Run("preflight from another origin", func(t *testing.T) {
		before := up.calls.Load()
		resp, b := send(t, c, "OPTIONS", g.URL+"/items/1", "Origin: https://evil.example",
			"Access-Control-Request-Method: GET")
		checkError(t, resp, b, 403, "forbidden")
		if resp.Header.Get("Access-Control-Allow-Origin") != "" || up.calls.Load() != before {
			t.Fatal("refused preflight allowed or forwarded")
		}
	})
	t.Run("actual request", func(t *testing.T) {
		resp, b := send(t, c, "GET", g.URL+"/items/1", "Origin: https://app.example.com")
		decodeSeen(t, resp, b)
		if resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
			resp.Header.Get("Access-Control-Expose-Headers") != "X-Request-Id" {
			t.Fatalf("CORS headers %v", resp.Header)
		}
		if !strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Origin") {
			t.Errorf("Vary %q", resp.Header.Values("Vary"))
		}
	})
}

func hashKey(k string) string {
	h := sha256.Sum256([]byte(k))
	return "sha256:" + hex.EncodeToString(h[:])
}

// TestAuthRolesAndPerConsumerLimits combines api_key, require_role and a
// rate limit keyed by consumer with by_role rates.
func TestAuthRolesAndPerConsumerLimits(t *testing.T) {
	up := newUpstream(t)
	g := startGateway(t, fmt.Sprintf(`
upstreams:
  echo: {targets: [{address: %q}]}
routes:
  - {name: admin, match: {path: {prefix: /admin/}}, upstream: echo, policies: [keys, admins]}
  - {name: api, match: {path: {prefix: /api/}}, upstream: echo, policies: [keys, per-consumer]}
policies:
  keys: {type: api_key, query: api_key}
  admins: {type: require_role, any_of: [admin]}
  per-consumer:
    type: rate_limit
    key: consumer
    rate: 2/m
    burst: 2
    by_role: {premium: 5/m}
consumers:
  - {name: acme, api_keys: [%q], roles: [premium, admin]}
  - {name: freeloader, api_keys: [free-key], roles: [free]}
`, up.addr, hashKey("acme-secret")))
	c := newClient(t)

	t.Run("missing key", func(t *testing.T) {
		resp, b := send(t, c, "GET", g.URL+"/api/x")
		checkError(t, resp, b, 401, "unauthenticated")
		if got := resp.Header.Get("WWW-Authenticate"); got != `ApiKey realm="rampart"` {
			t.Errorf("WWW-Authenticate %q", got)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		resp, b := send(t, c, "GET", g.URL+"/api/x", "X-API-Key: nope")
		checkError(t, resp, b, 401, "unauthenticated")
	})
	t.Run("key never forwarded, consumer is", func(t *testing.T) {
		resp, b := send(t, c, "GET", g.URL+"/admin/x?api_key=acme-secret&a=1", "X-Consumer-Name: forged")
		s := decodeSeen(t, resp, b)
		if s.Header.Get("X-Api-Key") != "" || strings.Contains(s.Query, "acme-secret") {
			t.Fatalf("key forwarded: %v %q", s.Header, s.Query)
		}
		if s.Query != "a=1" {
			t.Errorf("query %q, want a=1", s.Query)
		}
		if got := s.Header.Values("X-Consumer-Name"); len(got) != 1 || got[0] != "acme" {
			t.Errorf("X-Consumer-Name %q, want [acme]", got)
		}
	})
	t.Run("role missing", func(t *testing.T) {
		resp, b := send(t, c, "GET", g.URL+"/admin/x", "X-API-Key: free-key")
		checkError(t, resp, b, 403, "forbidden")
	})
	t.Run("per role limits", func(t *testing.T) {
		count := func(key string) (ok int, last *http.Response) {
			for range 8 {
				resp, _ := send(t, c, "GET", g.URL+"/api/x", "X-API-Key: "+key)
				if resp.StatusCode == 200 {
					ok++
				}
				last = resp
			}
			return ok, last
		}
		if ok, last := count("free-key"); ok != 2 || last.StatusCode != 429 || last.Header.Get("RateLimit-Limit") != "2" {
			t.Errorf("free consumer: %d allowed (last %d, limit %s), want 2", ok, last.StatusCode, last.Header.Get("RateLimit-Limit"))
		}
		if ok, last := count("acme-secret"); ok != 5 || last.Header.Get("RateLimit-Limit") != "5" {
			t.Errorf("premium consumer: %d allowed (limit %s), want 5", ok, last.Header.Get("RateLimit-Limit"))
		}
	})
}

func TestRateLimitBurst(t *testing.T) {
	up := newUpstream(t)
	g := startGateway(t, fmt.Sprintf(`
upstreams:
  echo: {targets: [{address: %q}]}
routes:
  - {name: api, match: {path: {prefix: /}}, upstream: echo, policies: [limit]}
policies:
  limit: {type: rate_limit, key: ip, rate: 1/m, burst: 3}
`, up.addr))
	c := newClient(t)
	for i := range 3 {
		resp, b := send(t, c, "GET", g.URL+"/x")
		decodeSeen(t, resp, b)
		if got := resp.Header.Get("RateLimit-Limit"); got != "3" {
			t.Errorf("request %d: RateLimit-Limit %q", i, got)
		}
		if got := resp.Header.Get("RateLimit-Remaining"); got != strconv.Itoa(2-i) {
			t.Errorf("request %d: RateLimit-Remaining %q, want %d", i, got, 2-i)
		}
		if reset, _ := strconv.Atoi(resp.Header.Get("RateLimit-Reset")); reset < 1 || reset > 180 {
			t.Errorf("request %d: RateLimit-Reset %q", i, resp.Header.Get("RateLimit-Reset"))
		}
	}
	before := up.calls.Load()
	resp, b := send(t, c, "GET", g.URL+"/x")
	checkError(t, resp, b, 429, "rate_limited")
	if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); ra < 1 || ra > 60 {
		t.Errorf("Retry-After %q, want 1..60", resp.Header.Get("Retry-After"))
	}
	if resp.Header.Get("RateLimit-Remaining") != "0" || resp.Header.Get("RateLimit-Limit") != "3" {
		t.Errorf("429 RateLimit headers %v", resp.Header)
	}
	if up.calls.Load() != before {
		t.Error("limited request reached the upstream")
	}
	if v := metric(t, g, `rampart_rate_limit_decisions_total{decision="limited",policy="limit"}`); v != "1" {
		t.Errorf("limited metric %q, want 1", v)
	}
	if v := metric(t, g, `rampart_rate_limit_decisions_total{decision="allowed",policy="limit"}`); v != "3" {
		t.Errorf("allowed metric %q, want 3", v)
	}
}

// TestBucketsSurviveReload drains a bucket, reloads a changed but
// compatible config, and expects the bucket still drained; a changed rate
// starts afresh.
func TestBucketsSurviveReload(t *testing.T) {
	up := newUpstream(t)
	cfg := func(extraRoute, rate string) string {
		return fmt.Sprintf(`
upstreams:
  echo: {targets: [{address: %q}]}
routes:
  - {name: api, match: {path: {prefix: /api/}}, upstream: echo, policies: [limit, conc]}
%s
policies:
  limit: {type: rate_limit, key: ip, rate: %s, burst: 2}
  conc: {type: concurrency_limit, max_in_flight: 10}
`, up.addr, extraRoute, rate)
	}
	g := startGateway(t, cfg("", "1/h"))
	c := newClient(t)
	for range 2 {
		resp, b := send(t, c, "GET", g.URL+"/api/x")
		decodeSeen(t, resp, b)
	}
	g.reload(t, cfg("  - {name: other, match: {path: {prefix: /other/}}, upstream: echo}", "1/h"))
	if resp, _ := send(t, c, "GET", g.URL+"/other/x"); resp.StatusCode != 200 {
		t.Fatalf("reloaded config not active: %d", resp.StatusCode)
	}
	resp, b := send(t, c, "GET", g.URL+"/api/x")
	checkError(t, resp, b, 429, "rate_limited")

	g.reload(t, cfg("", "2/h"))
	resp, b = send(t, c, "GET", g.URL+"/api/x")
	decodeSeen(t, resp, b)
}

func TestConcurrencyShedding(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	arrived := make(chan struct{}, 16)
	hang := newHangingUpstream(t, arrived, release)
	g := startGateway(t, fmt.Sprintf(`
upstreams:
  slow: {targets: [{address: %q}]}
routes:
  - {name: slow, match: {path: {prefix: /}}, upstream: slow, timeout: 30s, policies: [conc]}
policies:
  conc: {type: concurrency_limit, max_in_flight: 2, max_queue: 1, queue_timeout: 100ms}
`, hang))
	c := newClient(t)
	var wg sync.WaitGroup
	codes := make(chan int, 2)
	for range 2 {
		wg.Go(func() {
			resp, _ := send(t, c, "GET", g.URL+"/x")
			codes <- resp.StatusCode
		})
	}
	for range 2 {
		select {
		case <-arrived:
		case <-time.After(5 * time.Second):
			t.Fatal("requests did not reach the upstream")
		}
	}
	// Both slots are taken: the next request queues for 100ms, then is shed.
	start := time.Now()
	resp, b := send(t, c, "GET", g.URL+"/x")
	checkError(t, resp, b, 503, "overloaded")
	if resp.Header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Errorf("shed after %v, want the queue timeout (100ms) first", d)
	}
	unblock()
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != 200 {
			t.Errorf("in-flight request got %d", code)
		}
	}
	// Slots were released: the route serves again.
	resp, _ = send(t, c, "GET", g.URL+"/x")
	if resp.StatusCode != 200 {
		t.Fatalf("after release: %d", resp.StatusCode)
	}
}

// newHangingUpstream answers only once release is closed; it reports each
// request's arrival.
func newHangingUpstream(t *testing.T, arrived chan<- struct{}, release <-chan struct{}) string {
	u := gwtest.Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.Write([]byte("done"))
	}))
	return u
}

// TestSanitizeThroughGateway: a sanitize route refuses injections in the
// query and in a chunked JSON body before the upstream sees them, counts
// them, and forwards a clean chunked JSON body whole, with its length.
func TestSanitizeThroughGateway(t *testing.T) {
	var bodies atomic.Value
	var calls atomic.Int64
	up := gwtest.Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		bodies.Store(fmt.Sprintf("%d %q %v", r.ContentLength, b, r.TransferEncoding))
		io.WriteString(w, "ok")
	}))
	g := startGateway(t, fmt.Sprintf(`
upstreams:
  echo: {targets: [{address: %q}]}
routes:
  - {name: api, match: {path: {prefix: /}}, upstream: echo, policies: [clean]}
policies:
  clean: {type: sanitize}
`, up))
	c := newClient(t)
	post := func(body string) (*http.Response, []byte) {
		req, _ := http.NewRequest("POST", g.URL+"/api", io.MultiReader(strings.NewReader(body))) // unknown length: chunked
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, b := send(t, c, "GET", g.URL+"/items?id=1%27%20OR%20%271%27%3D%271")
	checkError(t, resp, b, 403, "waf_blocked")
	resp, b = post(`{"comment":"<script>alert(1)</script>"}`)
	checkError(t, resp, b, 403, "waf_blocked")
	if n := calls.Load(); n != 0 {
		t.Errorf("the upstream saw %d refused requests", n)
	}
	body := `{"name":"Seán O'Brien","tags":["a","b"]}`
	resp, b = post(body)
	if resp.StatusCode != 200 || string(b) != "ok" {
		t.Fatalf("clean body: %d %s", resp.StatusCode, b)
	}
	if got, want := bodies.Load(), fmt.Sprintf("%d %q []", len(body), body); got != want {
		t.Errorf("upstream saw %v, want %v", got, want)
	}
	if v := metric(t, g, `rampart_sanitize_findings_total{action="blocked",check="sqli",policy="clean"}`); v != "1" {
		t.Errorf("sqli findings metric %q, want 1", v)
	}
	if v := metric(t, g, `rampart_sanitize_findings_total{action="blocked",check="xss",policy="clean"}`); v != "1" {
		t.Errorf("xss findings metric %q, want 1", v)
	}
}

// TestUnavailableTypes checks that refused policy settings get a
// positioned error.
func TestUnavailableTypes(t *testing.T) {
	t.Run("redis store without cluster.redis", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "rampart.yaml")
		os.WriteFile(file, []byte(head+`
upstreams:
  echo: {targets: [{address: "127.0.0.1:1"}]}
routes:
  - {name: api, match: {path: {prefix: /}}, upstream: echo, policies: [p]}
policies:
  p: {type: rate_limit, rate: 1/s, store: redis}
`), 0o600)
		_, err := app.New(app.Options{ConfigPath: file, Log: discardLog()})
		if err == nil || !strings.Contains(err.Error(), "policies.p.store: store redis needs cluster.redis (where Redis is)") {
			t.Fatalf("error %v", err)
		}
	})
}
