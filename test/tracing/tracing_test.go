package tracing

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/rampart-gw/rampart/internal/telemetry/tracing/otlptest"
	"github.com/rampart-gw/rampart/test/gwtest"
)

func TestMain(m *testing.M) {
	// Export every 50ms rather than every second, so the tests wait less.
	os.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
	os.Exit(m.Run())
}

const (
	server = tracepb.Span_SPAN_KIND_SERVER
	client = tracepb.Span_SPAN_KIND_CLIENT
)

// upstream is a backend that records the traceparent of each request and
// answers with the statuses queued in fail first, then 200.
type upstream struct {
	addr string
	mu   sync.Mutex
	tps  []string
	fail []int
}

func newUpstream(t *testing.T, fail ...int) *upstream {
	u := &upstream{fail: fail}
	u.addr = gwtest.Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.tps = append(u.tps, r.Header.Get("Traceparent"))
		status := 200
		if len(u.fail) > 0 {
			status, u.fail = u.fail[0], u.fail[1:]
		}
		u.mu.Unlock()
		w.WriteHeader(status)
		io.WriteString(w, "ok")
	}))
	return u
}

func (u *upstream) traceparents() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.tps...)
}

// config returns a gateway config tracing to collector addr with protocol
// and ratio, one upstream app at up and a route "api" on /; extra is added
// to the route, policies at the end.
func config(addr, protocol string, ratio float64, up, route, policies string) string {
	return fmt.Sprintf(`listeners:
  - name: public
    address: "127.0.0.1:0"
admin:
  address: "127.0.0.1:0"
drain_timeout: 5s
observability:
  access_log: {path: "off"}
  tracing:
    otlp_endpoint: %q
    protocol: %s
    sample_ratio: %v
    service_name: edge-gw
    headers: {X-Tenant: team-a}
upstreams:
  app:
    targets: [{address: %q}]
routes:
  - name: api
    match: {path: {prefix: /}}
    upstream: app
%s%s`, addr, protocol, ratio, up, route, policies)
}

func get(t *testing.T, c *http.Client, url string, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// tree returns the SERVER span and the CLIENT spans of trace id once the
// SERVER span and n CLIENT spans arrived.
func tree(t *testing.T, c *otlptest.Collector, id string, n int) (otlptest.Span, []otlptest.Span) {
	t.Helper()
	spans := c.Wait(t, 10*time.Second, func(s []otlptest.Span) bool {
		tr := otlptest.Trace(s, id)
		return len(otlptest.Kind(tr, server)) == 1 && len(otlptest.Kind(tr, client)) >= n
	})
	tr := otlptest.Trace(spans, id)
	return otlptest.Kind(tr, server)[0], otlptest.Kind(tr, client)
}

var traceparentRE = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$`)

// TestCallerTraceContinued: a caller's traceparent (with tracestate) is
// continued over both protocols: the SERVER span has the caller's trace id
// and its span as parent, the CLIENT span is the SERVER span's child, and
// the upstream gets a traceparent naming the CLIENT span, with the
// tracestate. The export carries the configured headers and service name.
func TestCallerTraceContinued(t *testing.T) {
	for _, protocol := range []string{"grpc", "http"} {
		t.Run(protocol, func(t *testing.T) {
			col := otlptest.StartGRPC(t)
			if protocol == "http" {
				col = otlptest.StartHTTP(t)
			}
			up := newUpstream(t)
			g := gwtest.Start(t, config(col.Addr, protocol, 1, up.addr, "", ""))
			const traceID, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
			resp := get(t, gwtest.Client(t, 5*time.Second), g.URL+"/users/7?x=1",
				"Traceparent", "00-"+traceID+"-"+parent+"-01", "Tracestate", "vendor=opaque", "User-Agent", "tracing-test")
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			srv, clients := tree(t, col, traceID, 1)
			if srv.ParentSpanID != parent {
				t.Errorf("SERVER parent = %q, want the caller's span %q", srv.ParentSpanID, parent)
			}
			if len(clients) != 1 {
				t.Fatalf("%d CLIENT spans, want 1: %+v", len(clients), clients)
			}
			cl := clients[0]
			if cl.ParentSpanID != srv.SpanID {
				t.Errorf("CLIENT parent = %q, want the SERVER span %q", cl.ParentSpanID, srv.SpanID)
			}
			for _, c := range []struct {
				span      otlptest.Span
				key, want string
			}{
				{srv, "http.request.method", "GET"}, {srv, "url.path", "/users/7"}, {srv, "http.route", "api"},
				{srv, "rampart.route", "api"}, {srv, "rampart.upstream", "app"}, {srv, "rampart.target", up.addr},
				{srv, "user_agent.original", "tracing-test"}, {srv, "network.peer.address", "127.0.0.1"},
				{cl, "rampart.route", "api"}, {cl, "rampart.upstream", "app"}, {cl, "rampart.target", up.addr},
				{cl, "http.request.method", "GET"}, {cl, "url.path", "/users/7"}, {cl, "server.address", "127.0.0.1"},
			} {
				if got := c.span.Str(c.key); got != c.want {
					t.Errorf("%s span %s = %q, want %q", c.span.Kind, c.key, got, c.want)
				}
			}
			for _, c := range []struct {
				span otlptest.Span
				key  string
				want int64
			}{
				{srv, "http.response.status_code", 200}, {srv, "rampart.attempts", 1},
				{cl, "http.response.status_code", 200}, {cl, "rampart.attempt", 1},
			} {
				if got := c.span.Int(c.key); got != c.want {
					t.Errorf("%s span %s = %d, want %d", c.span.Kind, c.key, got, c.want)
				}
			}
			if srv.Name != "GET api" || cl.Name != "GET app" {
				t.Errorf("span names %q, %q; want \"GET api\", \"GET app\"", srv.Name, cl.Name)
			}
			if srv.Status != tracepb.Status_STATUS_CODE_UNSET || cl.Status != tracepb.Status_STATUS_CODE_UNSET {
				t.Errorf("statuses %v, %v; want unset", srv.Status, cl.Status)
			}
			if srv.Service != "edge-gw" {
				t.Errorf("service.name %q, want edge-gw", srv.Service)
			}
			tps := up.traceparents()
			if len(tps) != 1 || tps[0] != "00-"+traceID+"-"+cl.SpanID+"-01" {
				t.Errorf("upstream traceparent %q, want the CLIENT span 00-%s-%s-01", tps, traceID, cl.SpanID)
			}
			hs := col.Headers()
			if len(hs) == 0 || hs[0]["x-tenant"] != "team-a" {
				t.Errorf("export headers %v, want x-tenant: team-a", hs)
			}
		})
	}
}

// TestTracestateUpstream: the caller's tracestate goes upstream with the
// CLIENT span's traceparent.
func TestTracestateUpstream(t *testing.T) {
	col := otlptest.StartGRPC(t)
	var got atomic.Value
	addr := gwtest.Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("Tracestate"))
	}))
	g := gwtest.Start(t, config(col.Addr, "grpc", 1, addr, "", ""))
	get(t, gwtest.Client(t, 5*time.Second), g.URL+"/",
		"Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4737-00f067aa0ba902b7-01", "Tracestate", "vendor=opaque,other=1")
	if v, _ := got.Load().(string); v != "vendor=opaque,other=1" {
		t.Errorf("upstream tracestate %q, want the caller's", v)
	}
}

// TestRetryOneServerTwoClients: a request retried after a 503 makes one
// SERVER span and two CLIENT spans, attempts 1 (503, error) and 2 (200),
// both children of the SERVER span; each attempt sent its own span
// upstream.
func TestRetryOneServerTwoClients(t *testing.T) {
	col := otlptest.StartGRPC(t)
	up := newUpstream(t, 503)
	g := gwtest.Start(t, config(col.Addr, "grpc", 1, up.addr, "    retry: {attempts: 2, on: [503], backoff: {base: 1ms, max: 2ms}}\n", ""))
	const traceID = "5bf92f3577b34da6a3ce929d0e0e4736"
	resp := get(t, gwtest.Client(t, 5*time.Second), g.URL+"/r", "Traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d, want 200 after the retry", resp.StatusCode)
	}
	srv, clients := tree(t, col, traceID, 2)
	if len(clients) != 2 {
		t.Fatalf("%d CLIENT spans, want 2", len(clients))
	}
	byAttempt := map[int64]otlptest.Span{}
	for _, c := range clients {
		if c.ParentSpanID != srv.SpanID {
			t.Errorf("CLIENT span %s parent %q, want the SERVER span %q", c.SpanID, c.ParentSpanID, srv.SpanID)
		}
		byAttempt[c.Int("rampart.attempt")] = c
	}
	a1, a2 := byAttempt[1], byAttempt[2]
	if a1.Int("http.response.status_code") != 503 || a1.Status != tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("attempt 1: status %d, span status %v; want 503, error", a1.Int("http.response.status_code"), a1.Status)
	}
	if a2.Int("http.response.status_code") != 200 || a2.Int("http.request.resend_count") != 1 {
		t.Errorf("attempt 2: status %d, resend_count %d; want 200, 1", a2.Int("http.response.status_code"), a2.Int("http.request.resend_count"))
	}
	if srv.Int("rampart.attempts") != 2 || srv.Int("http.response.status_code") != 200 {
		t.Errorf("SERVER attempts %d, status %d; want 2, 200", srv.Int("rampart.attempts"), srv.Int("http.response.status_code"))
	}
	tps := up.traceparents()
	if len(tps) != 2 || !strings.Contains(tps[0], a1.SpanID) || !strings.Contains(tps[1], a2.SpanID) {
		t.Errorf("upstream traceparents %q, want attempt 1's span %s then attempt 2's %s", tps, a1.SpanID, a2.SpanID)
	}
}

// TestRefusedRequest: a request a policy refuses (401 from api_key, 429
// from rate_limit) has a SERVER span naming the policy, with an error
// status carrying the gateway's error code, and no CLIENT span.
func TestRefusedRequest(t *testing.T) {
	tests := []struct {
		name, policies, policy, code string
		status, warm                 int // warm: requests admitted before the refused one
	}{
		{"api_key 401", `    policies: [keys]
policies:
  keys: {type: api_key, header: X-API-Key}
consumers:
  - {name: acme, api_keys: [acme-secret]}
`, "keys", "unauthenticated", 401, 0},
		{"rate_limit 429", `    policies: [limit]
policies:
  limit: {type: rate_limit, key: ip, rate: 1/m, burst: 1}
`, "limit", "rate_limited", 429, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			col := otlptest.StartGRPC(t)
			up := newUpstream(t)
			g := gwtest.Start(t, config(col.Addr, "grpc", 1, up.addr, "", tc.policies))
			c := gwtest.Client(t, 5*time.Second)
			for range tc.warm {
				get(t, c, g.URL+"/")
			}
			const traceID = "6bf92f3577b34da6a3ce929d0e0e4736"
			resp := get(t, c, g.URL+"/", "Traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			srv, clients := tree(t, col, traceID, 0)
			if got := srv.Str("rampart.rejected_by"); got != tc.policy {
				t.Errorf("rampart.rejected_by = %q, want %q", got, tc.policy)
			}
			if srv.Status != tracepb.Status_STATUS_CODE_ERROR || srv.StatusMessage != tc.code {
				t.Errorf("SERVER status %v %q, want error %q", srv.Status, srv.StatusMessage, tc.code)
			}
			if srv.Int("http.response.status_code") != int64(tc.status) || srv.Str("error.type") != tc.code {
				t.Errorf("SERVER status_code %d, error.type %q; want %d, %q", srv.Int("http.response.status_code"), srv.Str("error.type"), tc.status, tc.code)
			}
			if len(clients) != 0 {
				t.Errorf("%d CLIENT spans for a refused request, want 0", len(clients))
			}
		})
	}
}

// TestSamplingOff: with sample_ratio 0 a request without a parent exports
// nothing, though the upstream still gets a (not sampled) traceparent; a
// sampled caller stays sampled and is exported (so the pipeline works).
func TestSamplingOff(t *testing.T) {
	col := otlptest.StartGRPC(t)
	up := newUpstream(t)
	g := gwtest.Start(t, config(col.Addr, "grpc", 0, up.addr, "", ""))
	c := gwtest.Client(t, 5*time.Second)
	for range 20 {
		get(t, c, g.URL+"/unsampled")
	}
	for _, tp := range up.traceparents() {
		if m := traceparentRE.FindStringSubmatch(tp); m == nil || m[3] != "00" {
			t.Errorf("upstream traceparent %q, want a valid one with flags 00", tp)
		}
	}
	// A sampled parent after them: once its spans arrive, anything the
	// unsampled requests had queued before would have arrived too.
	const traceID = "7bf92f3577b34da6a3ce929d0e0e4736"
	get(t, c, g.URL+"/sampled", "Traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	tree(t, col, traceID, 1)
	for _, s := range col.Spans() {
		if s.TraceID != traceID {
			t.Errorf("span of an unsampled request exported: %+v", s)
		}
	}
}

// TestParentDecisionKept: at sample_ratio 1 a caller that sampled its
// trace out (flags 00) is not exported: the caller's decision is kept.
func TestParentDecisionKept(t *testing.T) {
	col := otlptest.StartGRPC(t)
	up := newUpstream(t)
	g := gwtest.Start(t, config(col.Addr, "grpc", 1, up.addr, "", ""))
	c := gwtest.Client(t, 5*time.Second)
	const out, in = "8bf92f3577b34da6a3ce929d0e0e4736", "8bf92f3577b34da6a3ce929d0e0e4737"
	get(t, c, g.URL+"/", "Traceparent", "00-"+out+"-00f067aa0ba902b7-00")
	get(t, c, g.URL+"/", "Traceparent", "00-"+in+"-00f067aa0ba902b7-01")
	tree(t, col, in, 1)
	if n := len(otlptest.Trace(col.Spans(), out)); n != 0 {
		t.Errorf("%d spans of the caller's unsampled trace exported, want 0", n)
	}
	if tps := up.traceparents(); len(tps) != 2 || !strings.HasPrefix(tps[0], "00-"+out+"-") || !strings.HasSuffix(tps[0], "-00") {
		t.Errorf("upstream traceparents %q: want the unsampled trace continued with flags 00", tps)
	}
}

// TestB3Continued: a caller's B3 context, single or multi header, is
// continued (W3C upstream); a 64-bit trace id is widened; a B3 caller
// without a decision is sampled by sample_ratio.
func TestB3Continued(t *testing.T) {
	tests := []struct {
		name    string
		hdr     []string
		traceID string
		parent  string
	}{
		{"single", []string{"B3", "9bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1"}, "9bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"},
		{"single with parent", []string{"B3", "9bf92f3577b34da6a3ce929d0e0e4737-00f067aa0ba902b8-1-00f067aa0ba90200"}, "9bf92f3577b34da6a3ce929d0e0e4737", "00f067aa0ba902b8"},
		{"single 64-bit deferred", []string{"B3", "a3ce929d0e0e4738-00f067aa0ba902b9"}, "0000000000000000a3ce929d0e0e4738", "00f067aa0ba902b9"},
		{"multi", []string{"X-B3-TraceId", "9bf92f3577b34da6a3ce929d0e0e4739", "X-B3-SpanId", "00f067aa0ba902ba", "X-B3-Sampled", "1"}, "9bf92f3577b34da6a3ce929d0e0e4739", "00f067aa0ba902ba"},
		{"multi debug", []string{"X-B3-TraceId", "9bf92f3577b34da6a3ce929d0e0e473a", "X-B3-SpanId", "00f067aa0ba902bb", "X-B3-Flags", "1"}, "9bf92f3577b34da6a3ce929d0e0e473a", "00f067aa0ba902bb"},
	}
	col := otlptest.StartGRPC(t)
	up := newUpstream(t)
	g := gwtest.Start(t, config(col.Addr, "grpc", 1, up.addr, "", ""))
	c := gwtest.Client(t, 5*time.Second)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			get(t, c, g.URL+"/", tc.hdr...)
			srv, clients := tree(t, col, tc.traceID, 1)
			if srv.ParentSpanID != tc.parent {
				t.Errorf("SERVER parent %q, want the B3 span %q", srv.ParentSpanID, tc.parent)
			}
			tps := up.traceparents()
			if want := "00-" + tc.traceID + "-" + clients[0].SpanID + "-01"; tps[len(tps)-1] != want {
				t.Errorf("upstream traceparent %q, want %q", tps[len(tps)-1], want)
			}
		})
	}
	t.Run("sampled out", func(t *testing.T) {
		const id = "9bf92f3577b34da6a3ce929d0e0e47ff"
		get(t, c, g.URL+"/", "X-B3-TraceId", id, "X-B3-SpanId", "00f067aa0ba902bc", "X-B3-Sampled", "0")
		tps := up.traceparents()
		if got := tps[len(tps)-1]; !strings.HasPrefix(got, "00-"+id+"-") || !strings.HasSuffix(got, "-00") {
			t.Errorf("upstream traceparent %q, want trace %s continued unsampled", got, id)
		}
	})
}

// TestDeadCollector: with the collector's port closed, requests are
// unaffected (all 200, in bounded time) and the spans lost are counted in
// rampart_tracing_spans_dropped_total.
func TestDeadCollector(t *testing.T) {
	for _, protocol := range []string{"grpc", "http"} {
		t.Run(protocol, func(t *testing.T) {
			dead := gwtest.FreeAddr(t) // nothing listens there
			up := newUpstream(t)
			g := gwtest.Start(t, config(dead, protocol, 1, up.addr, "", ""))
			c := gwtest.Client(t, 5*time.Second)
			start := time.Now()
			const n = 200
			for i := range n {
				if resp := get(t, c, g.URL+"/"); resp.StatusCode != 200 {
					t.Fatalf("request %d: status %d", i, resp.StatusCode)
				}
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("%d requests took %v with a dead collector", n, d)
			}
			var dropped float64
			gwtest.WaitFor(t, 15*time.Second, "dropped spans counted", func() bool {
				dropped = metric(t, g.Admin, "rampart_tracing_spans_dropped_total")
				return dropped >= 2*n // a SERVER and a CLIENT span per request
			})
		})
	}
}

// metric returns the value of an unlabelled metric from the admin API.
func metric(t *testing.T, admin, name string) float64 {
	t.Helper()
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric %s: %v", name, err)
			}
			return f
		}
	}
	t.Fatalf("metric %s not exported", name)
	return 0
}

// TestReload: a reload that changes tracing sends spans to the new
// collector; one that changes nothing else keeps the tracer (and its
// collector); a reload that turns tracing off stops exporting and goes
// back to the plain traceparent.
func TestReload(t *testing.T) {
	a, b := otlptest.StartGRPC(t), otlptest.StartHTTP(t)
	up := newUpstream(t)
	g := gwtest.Start(t, config(a.Addr, "grpc", 1, up.addr, "", ""))
	c := gwtest.Client(t, 5*time.Second)
	send := func(id string) {
		t.Helper()
		if resp := get(t, c, g.URL+"/", "Traceparent", "00-"+id+"-00f067aa0ba902b7-01"); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	send("a0000000000000000000000000000001")
	tree(t, a, "a0000000000000000000000000000001", 1)

	// A change elsewhere (a new route) keeps the tracer.
	g.Reload(t, config(a.Addr, "grpc", 1, up.addr, "", "  - {name: other, match: {path: {prefix: /other}}, upstream: app}\n"))
	send("a0000000000000000000000000000002")
	tree(t, a, "a0000000000000000000000000000002", 1)

	g.Reload(t, config(b.Addr, "http", 1, up.addr, "", ""))
	send("a0000000000000000000000000000003")
	tree(t, b, "a0000000000000000000000000000003", 1)
	if n := len(otlptest.Trace(a.Spans(), "a0000000000000000000000000000003")); n != 0 {
		t.Errorf("old collector got %d spans after the reload", n)
	}

	g.Reload(t, gwtest.Head+fmt.Sprintf("upstreams:\n  app: {targets: [{address: %q}]}\nroutes:\n  - {name: api, match: {path: {prefix: /}}, upstream: app}\n", up.addr))
	send("a0000000000000000000000000000004")
	time.Sleep(300 * time.Millisecond) // six export intervals
	if n := len(otlptest.Trace(b.Spans(), "a0000000000000000000000000000004")); n != 0 {
		t.Errorf("%d spans exported with tracing off", n)
	}
	tps := up.traceparents()
	if last := tps[len(tps)-1]; !strings.HasPrefix(last, "00-a0000000000000000000000000000004-") {
		t.Errorf("tracing off: upstream traceparent %q, want the caller's trace continued", last)
	}

	// A tracer that cannot be built (its CA file is missing) refuses the
	// config, positioned, and the running one stays.
	g.Reload(t, config(b.Addr, "http", 1, up.addr, "", ""))
	bad := strings.Replace(config(b.Addr, "http", 1, up.addr, "", ""), "    headers: {X-Tenant: team-a}\n",
		"    headers: {X-Tenant: team-a}\n    tls: {ca_file: /nonexistent/ca.pem}\n", 1)
	g.Write(t, bad)
	err := g.App.Reload()
	if err == nil || !strings.Contains(err.Error(), ":15:20: observability.tracing.tls.ca_file: open /nonexistent/ca.pem") {
		t.Errorf("reload with a missing CA file: %v, want it refused at observability.tracing.tls.ca_file", err)
	}
	send("a0000000000000000000000000000005")
	tree(t, b, "a0000000000000000000000000000005", 1)
}

// TestMirrorAndAggregate: the calls a request makes besides its own
// upstream get CLIENT spans too, children of its SERVER span: the mirrored
// copy (to the shadow, after the response) and each backend of an
// aggregate route.
func TestMirrorAndAggregate(t *testing.T) {
	col := otlptest.StartGRPC(t)
	jsonUp := func() string {
		return gwtest.Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"id":1}`)
		}))
	}
	app, shadow, users, orders := jsonUp(), jsonUp(), jsonUp(), jsonUp()
	g := gwtest.Start(t, fmt.Sprintf(`listeners:
  - name: public
    address: "127.0.0.1:0"
admin:
  address: "127.0.0.1:0"
drain_timeout: 5s
observability:
  access_log: {path: "off"}
  tracing: {otlp_endpoint: %q}
upstreams:
  app: {targets: [{address: %q}]}
  shadow: {targets: [{address: %q}]}
  users: {targets: [{address: %q}]}
  orders: {targets: [{address: %q}]}
routes:
  - name: mirrored
    match: {path: {prefix: /m}}
    upstream: app
    mirror: {upstream: shadow, percent: 100}
  - name: agg
    match: {path: {template: "/agg/{id}"}}
    aggregate:
      backends:
        - {upstream: users, path: "/users/{id}", group: user}
        - {upstream: orders, path: "/orders?user={id}", group: orders}
`, col.Addr, app, shadow, users, orders))
	c := gwtest.Client(t, 5*time.Second)
	tests := []struct {
		name, path, traceID string
		upstreams           []string
	}{
		{"mirror", "/m/x", "b0000000000000000000000000000001", []string{"app", "shadow"}},
		{"aggregate", "/agg/7", "b0000000000000000000000000000002", []string{"orders", "users"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if resp := get(t, c, g.URL+tc.path, "Traceparent", "00-"+tc.traceID+"-00f067aa0ba902b7-01"); resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			srv, clients := tree(t, col, tc.traceID, len(tc.upstreams))
			var got []string
			for _, cl := range clients {
				if cl.ParentSpanID != srv.SpanID {
					t.Errorf("CLIENT span to %s: parent %q, want the SERVER span %q", cl.Str("rampart.upstream"), cl.ParentSpanID, srv.SpanID)
				}
				got = append(got, cl.Str("rampart.upstream"))
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.upstreams) {
				t.Errorf("CLIENT spans to %v, want %v", got, tc.upstreams)
			}
		})
	}
}
