package router

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/rampart-gw/rampart/internal/config"
)

// largeRules is a realistic mix of 10,000 routes: 9,000 prefixes over
// distinct paths (a third of them on their own host, some with methods or
// headers), 500 exact paths, 100 regexes and 400 wildcard-host tenants.
func largeRules() []Rule {
	var rules []Rule
	for i := range 9000 {
		m := config.Match{Path: config.PathMatch{Prefix: fmt.Sprintf("/api/v1/svc%04d/", i)}}
		switch i % 3 {
		case 0:
			m.Hosts = []string{fmt.Sprintf("h%04d.example.com", i)}
		case 1:
			m.Methods = []string{"GET", "POST"}
		}
		if i%10 == 0 {
			m.Headers = map[string]string{"X-Api-Version": "v2"}
		}
		rules = append(rules, Rule{Match: m})
	}
	for i := range 500 {
		m := config.Match{Path: config.PathMatch{Exact: fmt.Sprintf("/static/page%03d.html", i)}}
		if i%2 == 0 {
			m.Methods = []string{"GET"}
		}
		rules = append(rules, Rule{Match: m})
	}
	for i := range 100 {
		rules = append(rules, Rule{Match: config.Match{Path: config.PathMatch{Regex: fmt.Sprintf("^/re/%d/[0-9]+$", i)}}})
	}
	for i := range 400 {
		rules = append(rules, Rule{Match: config.Match{
			Hosts: []string{fmt.Sprintf("*.tenant%03d.example.org", i)},
			Path:  config.PathMatch{Prefix: "/"},
		}})
	}
	return rules
}

func smallRules() []Rule {
	return []Rule{
		{Match: config.Match{Hosts: []string{"api.example.com"}, Path: config.PathMatch{Prefix: "/users/"}, Methods: []string{"GET"}}},
		{Match: config.Match{Hosts: []string{"api.example.com"}, Path: config.PathMatch{Prefix: "/orders/"}}},
		{Match: config.Match{Hosts: []string{"*.example.com"}, Path: config.PathMatch{Prefix: "/"}}},
		{Match: config.Match{Path: config.PathMatch{Exact: "/healthz"}}},
		{Match: config.Match{Path: config.PathMatch{Prefix: "/static/"}}},
		{Match: config.Match{Path: config.PathMatch{Regex: "^/u/[0-9]+$"}}},
		{Match: config.Match{Path: config.PathMatch{Template: "/t/{id}/{*rest}"}}},
		{Match: config.Match{Path: config.PathMatch{Prefix: "/v2/"}, Headers: map[string]string{"X-Api-Version": "v2"}}},
		{Match: config.Match{Path: config.PathMatch{Prefix: "/search"}, Query: map[string]string{"beta": "1"}}},
		{Match: config.Match{Path: config.PathMatch{Prefix: "/app/"}}},
	}
}

type benchCase struct {
	name, host, path, method, query string
	header                          http.Header
}

func benchMatch(b *testing.B, rules []Rule, cases []benchCase) {
	rt := mustNew(b, rules)
	for _, c := range cases {
		want := refMatch(rules, c.host, c.path, c.method, c.header, c.query)
		if got := rt.Match(c.host, c.path, c.method, c.header, c.query); got != want {
			b.Fatalf("%s: Match = %d, reference %d", c.name, got, want)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rt.Match(c.host, c.path, c.method, c.header, c.query)
			}
		})
	}
}

func BenchmarkMatch10000(b *testing.B) {
	h := http.Header{"X-Api-Version": {"v2"}, "Accept": {"*/*"}}
	benchMatch(b, largeRules(), []benchCase{
		{"prefix-middle", "gw.example.net", "/api/v1/svc4501/users/42", "GET", "", h},
		{"prefix-exact-host", "h4500.example.com:443", "/api/v1/svc4500/users/42", "GET", "", h},
		{"prefix-upper-host", "H4500.Example.COM", "/api/v1/svc4500/users/42", "GET", "", h},
		{"prefix-method-fallback", "gw.example.net", "/api/v1/svc4501/users/42", "DELETE", "", h},
		{"exact", "gw.example.net", "/static/page250.html", "GET", "", h},
		{"regex", "gw.example.net", "/re/50/12345", "GET", "", h},
		{"wildcard-host", "shop.tenant200.example.org", "/cart", "GET", "", h},
		{"miss", "unknown.example.net", "/nothing/here", "GET", "", h},
		{"miss-deep-host", "a.b.c.d.unknown.example.net", "/api/v1/svc9999/", "GET", "", h},
	})
}

func BenchmarkMatch10(b *testing.B) {
	h := http.Header{"X-Api-Version": {"v2"}}
	benchMatch(b, smallRules(), []benchCase{
		{"prefix-host", "api.example.com", "/users/42", "GET", "", h},
		{"wildcard-host", "www.example.com", "/index.html", "GET", "", h},
		{"exact", "gw.local", "/healthz", "GET", "", h},
		{"regex", "gw.local", "/u/42", "GET", "", h},
		{"template", "gw.local", "/t/7/a/b", "GET", "", h},
		{"query", "gw.local", "/search", "GET", "q=go&beta=1", h},
		{"miss", "gw.local", "/nothing", "GET", "", h},
	})
}

func BenchmarkNew10000(b *testing.B) {
	rules := largeRules()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(rules); err != nil {
			b.Fatal(err)
		}
	}
}
