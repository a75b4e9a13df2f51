package dashboard

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/gateway"
	"github.com/rampart-gw/rampart/internal/telemetry"
)

func TestStatsJSON(t *testing.T) {
	m := telemetry.NewMetrics()
	users := m.Route("users")
	for _, c := range []struct {
		method string
		code   int
		secs   float64
	}{{"GET", 200, 0.002}, {"GET", 200, 0.004}, {"POST", 201, 0.02}, {"GET", 502, 0.3}} {
		users.Count(c.method, c.code)
		users.Duration.Observe(c.secs)
	}
	m.Route("idle")
	m.Route("").Count("GET", 404)
	m.ActiveConnections.WithLabelValues("public").Set(3)
	m.ConfigReloads.WithLabelValues("error").Inc()

	var store gateway.Store
	store.Swap(&gateway.Snapshot{Version: "v1", Config: &config.Config{},
		Routes: []*gateway.Route{{Config: &config.Route{Name: "users"}}, {Config: &config.Route{Name: "fresh"}}}})
	store.SetSplit(&gateway.Split{Candidate: &gateway.Snapshot{Version: "v2"}, Basis: 1250})

	d := New(Deps{Store: &store, Metrics: m})
	rec := httptest.NewRecorder()
	d.Stats(rec, httptest.NewRequest("GET", "/api/v1/stats", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var got Stats
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("decode: %v\n%s", err, rec.Body)
	}

	if got.Version != "v1" || got.Candidate == nil || got.Candidate.Version != "v2" || got.Candidate.Percent != 12.5 {
		t.Errorf("version %q candidate %+v, want v1 and v2 at 12.5%%", got.Version, got.Candidate)
	}
	if got.Reloads["ok"] != 0 || got.Reloads["error"] != 1 {
		t.Errorf("reloads %v, want ok 0, error 1", got.Reloads)
	}
	if len(got.Listeners) != 1 || got.Listeners[0] != (ListenerStats{Name: "public", ActiveConnections: 3}) {
		t.Errorf("listeners %+v", got.Listeners)
	}
	var names []string
	byName := map[string]RouteStats{}
	for _, r := range got.Routes {
		names = append(names, r.Route)
		byName[r.Route] = r
	}
	// Routes of the snapshot without series are listed too ("fresh"),
	// and those with series but not in the snapshot ("idle", "").
	if j := strings.Join(names, ","); j != ",fresh,idle,users" {
		t.Errorf("routes %q, want \",fresh,idle,users\"", j)
	}

	tests := []struct {
		name          string
		route         string
		total, errors int64
		codes         map[string]int64
		count         int64
	}{
		{name: "traffic", route: "users", total: 4, errors: 1, codes: map[string]int64{"200": 2, "201": 1, "502": 1}, count: 4},
		{name: "no route", route: "", total: 1, codes: map[string]int64{"404": 1}},
		{name: "no traffic", route: "idle", codes: map[string]int64{}},
		{name: "not yet counted", route: "fresh", codes: map[string]int64{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := byName[tc.route]
			if r.Total != tc.total || r.Errors != tc.errors || r.Duration.Count != tc.count {
				t.Errorf("total %d errors %d count %d, want %d %d %d", r.Total, r.Errors, r.Duration.Count, tc.total, tc.errors, tc.count)
			}
			if len(r.Requests) != len(tc.codes) {
				t.Errorf("requests %v, want %v", r.Requests, tc.codes)
			}
			for c, n := range tc.codes {
				if r.Requests[c] != n {
					t.Errorf("requests[%s] = %d, want %d", c, r.Requests[c], n)
				}
			}
			if r.Requests == nil || r.Duration.LE == nil || r.Duration.Counts == nil {
				t.Errorf("nil maps or slices become JSON null: %+v", r)
			}
		})
	}

	h := byName["users"].Duration
	if len(h.LE) != 15 || len(h.Counts) != len(h.LE) {
		t.Fatalf("buckets le %v counts %v, want the 15 finite latency buckets", h.LE, h.Counts)
	}
	for i, le := range h.LE {
		var want int64
		for _, s := range []float64{0.002, 0.004, 0.02, 0.3} {
			if s <= le {
				want++
			}
		}
		if h.Counts[i] != want {
			t.Errorf("bucket le=%g: %d, want %d (cumulative)", le, h.Counts[i], want)
		}
	}
	if h.Sum < 0.325 || h.Sum > 0.327 {
		t.Errorf("sum %g, want 0.326", h.Sum)
	}
}

func TestStatsWithoutConfigOrMetrics(t *testing.T) {
	d := New(Deps{Store: &gateway.Store{}})
	rec := httptest.NewRecorder()
	d.Stats(rec, httptest.NewRequest("GET", "/api/v1/stats", nil))
	want := []string{`"version":""`, `"routes":[]`, `"listeners":[]`, `"reloads":{"error":0,"ok":0}`}
	for _, w := range want {
		if !strings.Contains(rec.Body.String(), w) {
			t.Errorf("body %s lacks %s", rec.Body, w)
		}
	}
	if strings.Contains(rec.Body.String(), "candidate") {
		t.Errorf("body %s has a candidate", rec.Body)
	}
}

func TestPage(t *testing.T) {
	srv := httptest.NewServer(New(Deps{Store: &gateway.Store{}}))
	t.Cleanup(srv.Close)
	tests := []struct {
		name, path, ctype, contains string
	}{
		{name: "index", path: "/dashboard/", ctype: "text/html", contains: `<script src="app.js">`},
		{name: "script", path: "/dashboard/app.js", ctype: "text/javascript", contains: "textContent"},
		{name: "style", path: "/dashboard/style.css", ctype: "text/css", contains: ".pill.good"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Get(srv.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.ctype) {
				t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if !strings.Contains(string(b), tc.contains) {
				t.Errorf("body lacks %q", tc.contains)
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
				t.Errorf("Content-Security-Policy %q", csp)
			}
		})
	}
	// The page loads nothing from elsewhere: no scheme-qualified or
	// protocol-relative URLs in any asset.
	entries, _ := assets.ReadDir("assets")
	for _, e := range entries {
		b, _ := assets.ReadFile("assets/" + e.Name())
		// The SVG namespace is a name, not something loaded.
		text := strings.ReplaceAll(string(b), "'http://www.w3.org/2000/svg'", "")
		for _, bad := range []string{"http://", "https://", `src="//`, `href="//`, "innerHTML", "insertAdjacentHTML", "document.write"} {
			if strings.Contains(text, bad) {
				t.Errorf("%s contains %q", e.Name(), bad)
			}
		}
	}
}
