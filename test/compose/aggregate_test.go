package compose

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// backends is one real server on 127.0.0.1 with a behaviour per path.
// ?delay=250ms delays any answer.
func backends(t testing.TB, calls *atomic.Int64) string {
	mux := http.NewServeMux()
	js := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		js(w, map[string]any{"id": r.PathValue("id"), "name": "Ada", "email": "ada@example.com",
			"address": map[string]any{"city": "London", "zip": "N1"}})
	})
	mux.HandleFunc("/orders", func(w http.ResponseWriter, r *http.Request) {
		js(w, []any{map[string]any{"id": 1, "user": r.URL.Query().Get("user"), "total": 9.5, "secret": "x"},
			map[string]any{"id": 2, "user": r.URL.Query().Get("user"), "total": 20, "secret": "y"}})
	})
	mux.HandleFunc("/prefs", func(w http.ResponseWriter, r *http.Request) {
		js(w, map[string]any{"theme": "dark", "lang": r.URL.Query().Get("lang")})
	})
	mux.HandleFunc("/html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html>oops</html>")
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		js(w, map[string]any{"blob": strings.Repeat("x", 4096)})
	})
	var flaky atomic.Int64
	mux.HandleFunc("/flaky", func(w http.ResponseWriter, r *http.Request) {
		if flaky.Add(1)%2 == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		js(w, map[string]any{"ok": true})
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	})
	return gwtest.Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls != nil {
			calls.Add(1)
		}
		if d, err := time.ParseDuration(r.URL.Query().Get("delay")); err == nil {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		mux.ServeHTTP(w, r)
	}))
}

// deadAddr is a 127.0.0.1 address nothing listens on.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

type answer struct {
	status    int
	completed string
	body      map[string]any
	raw       string
	took      time.Duration
}

func call(t *testing.T, c *http.Client, url string) answer {
	t.Helper()
	start := time.Now()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, completed: resp.Header.Get("X-Rampart-Completed"), raw: string(b), took: time.Since(start)}
	json.Unmarshal(b, &a.body)
	return a
}

func jsonOf(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestAggregate(t *testing.T) {
	var calls atomic.Int64
	be := backends(t, &calls)
	dead := deadAddr(t)
	g := gwtest.Start(t, gwtest.Head+fmt.Sprintf(`
upstreams:
  users: {targets: [{address: %[1]q}]}
  orders: {targets: [{address: %[1]q}]}
  prefs: {targets: [{address: %[1]q}]}
  down: {targets: [{address: %[2]q}]}
  tripping:
    targets: [{address: %[2]q}]
    circuit_breaker: {trip: {consecutive_failures: 2, open_for: 30s}}
routes:
  - name: profile
    match: {path: {template: "/profile/{id}"}}
    aggregate:
      timeout: 2s
      backends:
        - {upstream: users, path: "/users/{id}", group: user, allow: [id, name, address.city], rename: {name: full_name}}
        - {upstream: orders, path: "/orders?user={id}", group: orders, allow: [id, total]}
        - {upstream: prefs, path: "/prefs?lang={query.lang}"}
  - name: partial
    match: {path: {template: "/partial/{id}"}}
    aggregate:
      backends:
        - {upstream: users, path: "/users/{id}", group: user}
        - {upstream: down, path: "/x", group: extra, optional: true}
        - {upstream: prefs, path: "/prefs?delay=2s", group: slow, optional: true, timeout: 150ms}
  - name: required-down
    match: {path: {prefix: /required-down}}
    aggregate:
      backends:
        - {upstream: users, path: "/users/1", group: user}
        - {upstream: down, path: "/x", group: extra}
  - name: with-fallback
    match: {path: {prefix: /fallback}}
    fallback: {status: 200, content_type: application/json, body: '{"degraded":true}'}
    aggregate:
      backends:
        - {upstream: orders, path: "/fail", group: o}
  - name: non-json
    match: {path: {prefix: /non-json}}
    aggregate:
      backends:
        - {upstream: users, path: "/users/1", group: user}
        - {upstream: prefs, path: "/html", group: page}
  - name: non-json-optional
    match: {path: {prefix: /html-optional}}
    aggregate:
      backends:
        - {upstream: users, path: "/users/1"}
        - {upstream: prefs, path: "/html", group: page, optional: true}
  - name: too-big
    match: {path: {prefix: /big}}
    aggregate:
      backends:
        - {upstream: prefs, path: "/big", group: b, max_body_bytes: 1024}
  - name: big-ok
    match: {path: {prefix: /bigok}}
    aggregate:
      backends:
        - {upstream: prefs, path: "/big", group: b, max_body_bytes: 8192}
  - name: too-slow
    match: {path: {prefix: /too-slow}}
    aggregate:
      timeout: 200ms
      backends:
        - {upstream: prefs, path: "/prefs?delay=3s", group: p}
  - name: parallel
    match: {path: {prefix: /parallel}}
    aggregate:
      backends:
        - {upstream: users, path: "/users/1?delay=200ms", group: a}
        - {upstream: orders, path: "/orders?delay=200ms", group: b}
  - name: three
    match: {path: {prefix: /three}}
    aggregate:
      backends:
        - {upstream: users, path: "/users/1?delay=100ms", group: a}
        - {upstream: orders, path: "/orders?delay=200ms", group: b}
        - {upstream: prefs, path: "/prefs?delay=300ms", group: c}
  - name: retried
    match: {path: {prefix: /retried}}
    retry: {attempts: 2, on: [503], backoff: {base: 1ms, max: 5ms}}
    aggregate:
      backends:
        - {upstream: users, path: "/users/1", group: u}
        - {upstream: orders, path: "/flaky", group: f}
  - name: steps
    match: {path: {template: "/steps/{id}"}}
    aggregate:
      backends:
        - {upstream: users, path: "/users/{id}", group: user, allow: [id]}
        - {upstream: orders, path: "/orders?user={resp.user.name}&city={resp.user.address.city}", group: orders, allow: [user]}
        - {upstream: prefs, path: "/prefs?lang={query.lang}", group: prefs}
  - name: steps-failed
    match: {path: {prefix: /steps-failed}}
    aggregate:
      backends:
        - {upstream: down, path: "/x", group: first, optional: true}
        - {upstream: users, path: "/users/{resp.first.id}", group: second, optional: true}
        - {upstream: prefs, path: "/prefs", group: p}
  - name: breaker
    match: {path: {prefix: /breaker}}
    aggregate:
      backends:
        - {upstream: users, path: "/users/1", group: u}
        - {upstream: tripping, path: "/x", group: t, optional: true}
`, be, dead))
	c := gwtest.Client(t, 10*time.Second)

	t.Run("merge groups allow rename captures query", func(t *testing.T) {
		a := call(t, c, g.URL+"/profile/42?lang=fr%20CA")
		if a.status != 200 || a.completed != "true" {
			t.Fatalf("status %d completed %q body %s", a.status, a.completed, a.raw)
		}
		want := `{"lang":"fr CA","orders":[{"id":1,"total":9.5},{"id":2,"total":20}],"theme":"dark","user":{"address":{"city":"London"},"full_name":"Ada","id":"42"}}`
		if got := jsonOf(a.body); got != want {
			t.Errorf("body\n got %s\nwant %s", got, want)
		}
	})
	t.Run("optional failures give a partial answer", func(t *testing.T) {
		a := call(t, c, g.URL+"/partial/7")
		if a.status != 200 || a.completed != "false" {
			t.Fatalf("status %d completed %q body %s", a.status, a.completed, a.raw)
		}
		if got := jsonOf(a.body); got != `{"user":{"address":{"city":"London","zip":"N1"},"email":"ada@example.com","id":"7","name":"Ada"}}` {
			t.Errorf("body %s", got)
		}
		if a.took > 1500*time.Millisecond {
			t.Errorf("took %v: the optional backend's 150ms timeout did not cut the 2s call", a.took)
		}
	})
	t.Run("required failure is 502", func(t *testing.T) {
		a := call(t, c, g.URL+"/required-down")
		e, _ := a.body["error"].(map[string]any)
		if a.status != 502 || e["code"] != "bad_upstream_response" || !strings.Contains(fmt.Sprint(e["message"]), "upstream down") {
			t.Errorf("status %d body %s", a.status, a.raw)
		}
	})
	t.Run("required failure uses the fallback", func(t *testing.T) {
		a := call(t, c, g.URL+"/fallback")
		if a.status != 200 || a.raw != `{"degraded":true}` {
			t.Errorf("status %d body %s", a.status, a.raw)
		}
	})
	t.Run("non-JSON answer", func(t *testing.T) {
		a := call(t, c, g.URL+"/non-json")
		e, _ := a.body["error"].(map[string]any)
		if a.status != 502 || !strings.Contains(fmt.Sprint(e["message"]), "answer is not JSON") {
			t.Errorf("status %d body %s", a.status, a.raw)
		}
		a = call(t, c, g.URL+"/html-optional")
		if a.status != 200 || a.completed != "false" || a.body["name"] != "Ada" {
			t.Errorf("optional non-JSON: status %d completed %q body %s", a.status, a.completed, a.raw)
		}
	})
	t.Run("body limit", func(t *testing.T) {
		a := call(t, c, g.URL+"/big")
		e, _ := a.body["error"].(map[string]any)
		if a.status != 502 || !strings.Contains(fmt.Sprint(e["message"]), "max_body_bytes") {
			t.Errorf("status %d body %s", a.status, a.raw)
		}
		if a := call(t, c, g.URL+"/bigok"); a.status != 200 {
			t.Errorf("under the limit: status %d", a.status)
		}
	})
	t.Run("overall timeout", func(t *testing.T) {
		a := call(t, c, g.URL+"/too-slow")
		e, _ := a.body["error"].(map[string]any)
		if a.status != 502 || !strings.Contains(fmt.Sprint(e["message"]), "timed out") {
			t.Errorf("status %d body %s", a.status, a.raw)
		}
		if a.took > 1500*time.Millisecond {
			t.Errorf("took %v with a 200ms aggregate timeout", a.took)
		}
	})
	t.Run("parallel", func(t *testing.T) {
		// Two backends of 200ms each: in parallel the answer takes about
		// one of them, well under their sum. Best of 3 against noise.
		best := time.Hour
		for range 3 {
			a := call(t, c, g.URL+"/parallel")
			if a.status != 200 {
				t.Fatalf("status %d body %s", a.status, a.raw)
			}
			best = min(best, a.took)
		}
		t.Logf("two 200ms backends answered in %v (overhead over the slowest %v)", best, best-200*time.Millisecond)
		if best >= 380*time.Millisecond {
			t.Errorf("two 200ms backends took %v: not in parallel", best)
		}
	})
	t.Run("three backends take the slowest", func(t *testing.T) {
		// 100, 200 and 300ms backends: about 300ms, not 600ms.
		best := time.Hour
		for range 3 {
			a := call(t, c, g.URL+"/three")
			if a.status != 200 || len(a.body) != 3 {
				t.Fatalf("status %d body %s", a.status, a.raw)
			}
			best = min(best, a.took)
		}
		t.Logf("100+200+300ms backends answered in %v (overhead over the slowest %v)", best, best-300*time.Millisecond)
		if best < 300*time.Millisecond || best >= 500*time.Millisecond {
			t.Errorf("100, 200 and 300ms backends took %v, want about 300ms", best)
		}
	})
	t.Run("retry per backend", func(t *testing.T) {
		// The flaky backend answers 503 every other call; the route's
		// retry makes each aggregate whole.
		for range 4 {
			if a := call(t, c, g.URL+"/retried"); a.status != 200 || a.completed != "true" {
				t.Fatalf("status %d completed %q body %s", a.status, a.completed, a.raw)
			}
		}
	})
	t.Run("breaker per backend", func(t *testing.T) {
		// Two connect failures open the tripping upstream's circuit;
		// later calls fail at once with circuit_open, and the users
		// backend still answers.
		for range 2 {
			call(t, c, g.URL+"/breaker")
		}
		before := callsOf(t, c, g.Admin, "breaker", "tripping", "circuit_open")
		for range 3 {
			a := call(t, c, g.URL+"/breaker")
			if a.status != 200 || a.completed != "false" || a.body["u"] == nil {
				t.Fatalf("status %d completed %q body %s", a.status, a.completed, a.raw)
			}
		}
		if got := callsOf(t, c, g.Admin, "breaker", "tripping", "circuit_open"); got-before != 3 {
			t.Errorf("tripping backend refused %v calls with circuit_open, want 3", got-before)
		}
	})
	t.Run("sequential steps", func(t *testing.T) {
		a := call(t, c, g.URL+"/steps/9?lang=de")
		want := `{"orders":[{"user":"Ada"},{"user":"Ada"}],"prefs":{"lang":"de","theme":"dark"},"user":{"id":"9"}}`
		if a.status != 200 || jsonOf(a.body) != want {
			t.Errorf("status %d body %s, want %s", a.status, a.raw, want)
		}
		a = call(t, c, g.URL+"/steps-failed")
		if a.status != 200 || a.completed != "false" || jsonOf(a.body) != `{"p":{"lang":"","theme":"dark"}}` {
			t.Errorf("status %d completed %q body %s", a.status, a.completed, a.raw)
		}
		if n := callsOf(t, c, g.Admin, "steps-failed", "users", "skipped"); n != 1 {
			t.Errorf("skipped step counted %v times, want 1", n)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		resp, err := c.Get(g.Admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, tc := range []struct{ route, upstream, outcome string }{
			{"profile", "users", "ok"}, {"required-down", "down", "error"}, {"non-json", "prefs", "invalid_json"},
			{"too-big", "prefs", "too_large"}, {"too-slow", "prefs", "timeout"}, {"partial", "prefs", "timeout"},
			{"with-fallback", "orders", "status"},
		} {
			series := fmt.Sprintf(`rampart_aggregate_backend_requests_total{outcome=%q,route=%q,upstream=%q} `, tc.outcome, tc.route, tc.upstream)
			_, rest, ok := strings.Cut(string(b), "\n"+series)
			v, _, _ := strings.Cut(rest, "\n")
			if n, err := strconv.ParseFloat(v, 64); !ok || err != nil || n < 1 {
				t.Errorf("%s= %q, want >= 1", series, v)
			}
		}
		if t.Failed() {
			t.Logf("metrics:\n%s", b)
		}
		if !strings.Contains(string(b), `rampart_aggregate_backend_duration_seconds_count{route="profile",upstream="users"} `) {
			t.Errorf("/metrics lacks the aggregate backend duration series")
		}
	})
}

// callsOf reads rampart_aggregate_backend_requests_total for one route,
// upstream and outcome.
func callsOf(t *testing.T, c *http.Client, admin, route, upstream, outcome string) float64 {
	t.Helper()
	resp, err := c.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sum := 0.0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "rampart_aggregate_backend_requests_total{") &&
			strings.Contains(line, fmt.Sprintf(`{outcome=%q,route=%q,upstream=%q}`, outcome, route, upstream)) {
			_, v, _ := strings.Cut(line, "} ")
			n, _ := strconv.ParseFloat(v, 64)
			sum += n
		}
	}
	return sum
}
