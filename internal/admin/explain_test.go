package admin_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/rampart-gw/rampart/internal/admin"
	"github.com/rampart-gw/rampart/internal/compile"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/gateway"
	"github.com/rampart-gw/rampart/internal/registry"
)

// startAdmin serves the admin API for the config file on 127.0.0.1 and
// returns its base URL.
func startAdmin(t *testing.T, file string) string {
	t.Helper()
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := compile.Build(cfg, compile.Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	snap.Acquire(registry.New())
	snap.Activate()
	t.Cleanup(snap.Release)
	store := &gateway.Store{}
	store.Swap(snap)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: admin.New(admin.Deps{Store: store})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func getExplain(t *testing.T, base string, q url.Values) (int, *gateway.Explanation, string) {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/explain?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var e gateway.Explanation
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("decode %s: %v", body, err)
		}
	}
	return resp.StatusCode, &e, string(body)
}

func candidate(e *gateway.Explanation, route string) *gateway.Candidate {
	for i := range e.Candidates {
		if e.Candidates[i].Route == route {
			return &e.Candidates[i]
		}
	}
	for i := range e.Nearest {
		if e.Nearest[i].Route == route {
			return &e.Nearest[i]
		}
	}
	return nil
}

func TestExplainEndpoint(t *testing.T) {
	base := startAdmin(t, "testdata/explain.yaml")
	// lost names routes that match and lose, with a substring of the
	// reason; "" in want means no route.
	for _, tc := range []struct {
		name   string
		q      string
		want   string
		rank   string
		lost   map[string]string
		nearly map[string]string // routes that do not match
		check  func(t *testing.T, e *gateway.Explanation, raw string)
	}{
		{name: "exact beats prefix", q: "path=/users/me", want: "users-me", rank: "exact",
			lost: map[string]string{"users": "lower path rank: prefix, 7 bytes < exact", "catch-all": "lower path rank"}},
		{name: "prefix beats regex of equal literal", q: "path=/users/42", want: "users", rank: "prefix, 7 bytes",
			lost: map[string]string{"users-id": "lower path rank: regex, literal 7 bytes < prefix, 7 bytes"},
			check: func(t *testing.T, e *gateway.Explanation, _ string) {
				if e.UpstreamPath != "/42" {
					t.Errorf("upstream_path %q, want /42 (strip_prefix)", e.UpstreamPath)
				}
			}},
		{name: "regex literal beats catch-all", q: "path=/orders/7", want: "orders-id", rank: "regex, literal 8 bytes",
			lost: map[string]string{"catch-all": "lower path rank: prefix, 1 bytes < regex, literal 8 bytes"}},
		{name: "regex that does not match", q: "path=/orders/x", want: "catch-all",
			nearly: map[string]string{"orders-id": `path "/orders/x" does not match regex`}},
		{name: "template and rewrite", q: "path=/items/5/a%252Fb&query=x=1", want: "items", rank: "template, literal 7 bytes",
			check: func(t *testing.T, e *gateway.Explanation, _ string) {
				if e.UpstreamPath != "/v2/items/5/a%2Fb?x=1" {
					t.Errorf("upstream_path %q, want /v2/items/5/a%%2Fb?x=1", e.UpstreamPath)
				}
			}},
		{name: "host rank", q: "host=API.example.com:8443&path=/w", want: "exact-host",
			lost: map[string]string{"wild": "lower host rank: wildcard *.example.com < exact", "catch-all": "lower path rank"}},
		{name: "wildcard host", q: "host=eu.example.com&path=/w", want: "wild",
			nearly: map[string]string{"exact-host": `host "eu.example.com" matches none of [api.example.com]`}},
		{name: "more conditions", q: "path=/w&header=X-Beta:1&query=v=2", want: "beta",
			lost: map[string]string{"catch-all": "lower path rank"}},
		{name: "host fallback", q: "host=api.example.com&path=/x", want: "catch-all",
			nearly: map[string]string{"api-post": `method "GET" is not one of ["POST"]`}},
		{name: "host route on POST", q: "host=api.example.com&path=/x&method=POST", want: "api-post", rank: "prefix, 1 bytes"},
		{name: "split", q: "path=/split/a", want: "split", check: func(t *testing.T, e *gateway.Explanation, _ string) {
			if len(e.Upstreams) != 2 || e.Upstreams[0].Name != "users" || e.Upstreams[0].Weight != 90 || e.Upstreams[0].Percent != 90 ||
				e.Upstreams[1].Name != "canary" || e.Upstreams[1].Percent != 10 {
				t.Fatalf("upstreams %+v", e.Upstreams)
			}
			u := e.Upstreams[0]
			if len(u.Targets) != 2 || !u.Targets[0].Healthy || u.Targets[1].Weight != 3 {
				t.Errorf("targets %+v", u.Targets)
			}
			if len(u.FailoverChain) != 1 || u.FailoverChain[0].Name != "spare" || len(u.FailoverChain[0].Targets) != 1 {
				t.Errorf("failover chain %+v", u.FailoverChain)
			}
			if e.UpstreamPath != "/split/a" {
				t.Errorf("upstream_path %q", e.UpstreamPath)
			}
		}},
		{name: "policies and budget", q: "path=/secure/x", want: "secure", check: func(t *testing.T, e *gateway.Explanation, raw string) {
			var names []string
			for _, p := range e.Policies {
				names = append(names, p.Name+":"+p.Type)
			}
			if !slices.Equal(names, []string{"auth:jwt", "per-ip:rate_limit"}) {
				t.Fatalf("policies %v", names)
			}
			if strings.Contains(raw, "0123456789abcdef") || !strings.Contains(raw, `"secret": "[redacted]"`) {
				t.Errorf("secret not redacted:\n%s", raw)
			}
			if s, _ := e.Policies[1].Settings.(map[string]any); s["rate"] != "100/s" {
				t.Errorf("rate_limit settings %v", e.Policies[1].Settings)
			}
			b := e.Budget
			if b == nil || b.Timeout != "3s" || b.Attempts != 3 || b.PerTryTimeout != "1s" || b.BackoffTotalMax != "25ms" ||
				!slices.Equal(b.RetryOn, []string{"connect_failure", "503"}) {
				t.Errorf("budget %+v", b)
			}
		}},
		{name: "no route", q: "method=DELETE&path=/nothing", want: "", check: func(t *testing.T, e *gateway.Explanation, raw string) {
			if !strings.Contains(raw, `"route": null`) {
				t.Errorf(`want "route": null in %s`, raw)
			}
			if len(e.Nearest) == 0 || e.Nearest[0].Route != "catch-all" || !strings.Contains(e.Nearest[0].Reason, `method "DELETE"`) {
				t.Errorf("nearest %+v", e.Nearest)
			}
			if len(e.Candidates) != 0 || e.Upstreams != nil || e.UpstreamPath != "" {
				t.Errorf("no route but %+v", e)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := url.ParseQuery(tc.q)
			if err != nil {
				t.Fatal(err)
			}
			status, e, raw := getExplain(t, base, q)
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, raw)
			}
			got := ""
			if e.Route != nil {
				got = e.Route.Route
			}
			if got != tc.want {
				t.Fatalf("route %q, want %q\n%s", got, tc.want, raw)
			}
			if tc.rank != "" && e.Route.PathRank != tc.rank {
				t.Errorf("path rank %q, want %q", e.Route.PathRank, tc.rank)
			}
			for name, reason := range tc.lost {
				c := candidate(e, name)
				if c == nil || !c.Matched || !strings.Contains(c.Reason, reason) {
					t.Errorf("%s: %+v, want a lost candidate with %q", name, c, reason)
				}
			}
			for name, reason := range tc.nearly {
				c := candidate(e, name)
				if c == nil || c.Matched || !strings.Contains(c.Reason, reason) {
					t.Errorf("%s: %+v, want a route that does not match with %q", name, c, reason)
				}
			}
			if tc.check != nil {
				tc.check(t, e, raw)
			}
		})
	}
}

func TestExplainBadRequest(t *testing.T) {
	base := startAdmin(t, "testdata/explain.yaml")
	for _, q := range []string{"path=users", "path=http://x/y", "header=NoColon", "path=/a%00b"} {
		v, _ := url.ParseQuery(q)
		status, _, raw := getExplain(t, base, v)
		if status != http.StatusBadRequest || !strings.Contains(raw, `"code": "bad_request"`) {
			t.Errorf("%s: %d %s, want 400 bad_request", q, status, raw)
		}
	}
}
