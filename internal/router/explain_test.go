package router

import (
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/rampart-gw/rampart/internal/config"
)

// TestExplainAgreesWithMatch: on random configs and requests Explain's
// winner is Match's, every matching verdict but the winner says why it
// lost, and every other verdict why it did not match.
func TestExplainAgreesWithMatch(t *testing.T) {
	seeds := 2000
	if testing.Short() {
		seeds = 200
	}
	for seed := range seeds {
		g := gen{rand.New(rand.NewPCG(uint64(seed), 13))}
		rules := make([]Rule, 1+g.r.IntN(20))
		for i := range rules {
			rules[i] = g.rule()
		}
		rt := mustNew(t, rules)
		for range 30 {
			q := g.request()
			checkExplain(t, rt, rules, q)
		}
	}
}

func checkExplain(t *testing.T, rt *Router, rules []Rule, q req) {
	t.Helper()
	want := rt.Match(q.host, q.path, q.method, q.header, q.query)
	e := rt.Explain(q.host, q.path, q.method, q.header, q.query)
	if e.Winner != want {
		t.Fatalf("Explain(%+v).Winner = %d, Match %d\nrules: %+v\nverdicts: %+v", q, e.Winner, want, rules, e.Verdicts)
	}
	if len(e.Verdicts) != len(rules) {
		t.Fatalf("%d verdicts for %d rules", len(e.Verdicts), len(rules))
	}
	for i, v := range e.Verdicts {
		switch {
		case i == 0 && want >= 0:
			if v.Index != want || !v.Matched || v.Reason != "" {
				t.Fatalf("first verdict %+v, want the winner %d", v, want)
			}
		case v.Reason == "":
			t.Fatalf("verdict %+v has no reason", v)
		}
	}
}

func TestExplainReasons(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rules   []config.Match
		host    string
		path    string
		method  string
		winner  int
		reasons map[int]string // index -> substring of its reason
	}{
		{"exact beats prefix", []config.Match{{Path: config.PathMatch{Prefix: "/users/"}}, {Path: config.PathMatch{Exact: "/users/me"}}},
			"a.com", "/users/me", "GET", 1, map[int]string{0: "lower path rank: prefix, 7 bytes < exact"}},
		{"regex literal beats catch-all", []config.Match{{}, {Path: config.PathMatch{Regex: "^/users/[0-9]+$"}}},
			"a.com", "/users/42", "GET", 1, map[int]string{0: "lower path rank: prefix, 1 bytes < regex, literal 7 bytes"}},
		{"prefix wins equal length", []config.Match{{Path: config.PathMatch{Regex: "^/users/[0-9]+$"}}, {Path: config.PathMatch{Prefix: "/users/"}}},
			"a.com", "/users/42", "GET", 1, map[int]string{0: "regex, literal 7 bytes < prefix, 7 bytes"}},
		{"host rank", []config.Match{{Path: config.PathMatch{Prefix: "/x"}}, {Hosts: []string{"*.example.com"}, Path: config.PathMatch{Prefix: "/x"}}, {Hosts: []string{"api.example.com"}, Path: config.PathMatch{Prefix: "/x"}}},
			"API.example.com:8443", "/x", "GET", 2, map[int]string{0: "lower host rank: any < exact", 1: "lower host rank: wildcard *.example.com < exact"}},
		{"conditions", []config.Match{{}, {Methods: []string{"GET"}}}, "a.com", "/x", "GET", 1, map[int]string{0: "fewer conditions: 0 < 1"}},
		{"config order", []config.Match{{Path: config.PathMatch{Prefix: "/x"}}, {Path: config.PathMatch{Prefix: "/x"}}}, "a.com", "/x", "GET", 0, map[int]string{1: "later in config order than route 0"}},
		{"host fallback", []config.Match{{Hosts: []string{"api.example.com"}, Methods: []string{"POST"}}, {}}, "api.example.com", "/", "GET", 1,
			map[int]string{0: `method "GET" is not one of ["POST"]`}},
		{"no route", []config.Match{{Hosts: []string{"b.com"}}, {Path: config.PathMatch{Prefix: "/a"}, Headers: map[string]string{"x-a": "1"}}}, "a.com", "/a", "GET", -1,
			map[int]string{0: `host "a.com" matches none of [b.com]`, 1: `header X-A: "1" is not among its values`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rules := make([]Rule, len(tc.rules))
			for i, m := range tc.rules {
				rules[i] = Rule{Match: m}
			}
			rt := mustNew(t, rules)
			q := req{host: tc.host, path: tc.path, method: tc.method, header: http.Header{}}
			checkExplain(t, rt, rules, q)
			e := rt.Explain(tc.host, tc.path, tc.method, http.Header{}, "")
			if e.Winner != tc.winner {
				t.Fatalf("winner %d, want %d", e.Winner, tc.winner)
			}
			for _, v := range e.Verdicts {
				if want, ok := tc.reasons[v.Index]; ok && !strings.Contains(v.Reason, want) {
					t.Errorf("route %d: reason %q, want it to contain %q", v.Index, v.Reason, want)
				}
			}
		})
	}
}
