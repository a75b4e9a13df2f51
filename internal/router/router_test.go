package router

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/exchange"
)

type req struct {
	host, path, method string
	header             http.Header
	query              string
}

func (q req) orDefaults() req {
	if q.host == "" {
		q.host = "example.com"
	}
	if q.method == "" {
		q.method = "GET"
	}
	return q
}

func mustNew(t testing.TB, rules []Rule) *Router {
	t.Helper()
	rt, err := New(rules)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return rt
}

func prefix(p string) config.PathMatch { return config.PathMatch{Prefix: p} }
func exact(p string) config.PathMatch  { return config.PathMatch{Exact: p} }

func TestMatch(t *testing.T) {
	tests := []struct {
		name  string
		rules []config.Match
		req   req
		want  int
	}{
		{"no rules", nil, req{path: "/"}, -1},
		{"empty match is prefix slash", []config.Match{{}}, req{path: "/x"}, 0},
		{"empty match needs a slash", []config.Match{{}}, req{path: "*"}, -1},
		{"exact hit", []config.Match{{Path: exact("/a")}}, req{path: "/a"}, 0},
		{"exact miss", []config.Match{{Path: exact("/a")}}, req{path: "/a/"}, -1},
		{"path is case sensitive", []config.Match{{Path: exact("/a")}}, req{path: "/A"}, -1},
		{"prefix is a plain string prefix", []config.Match{{Path: prefix("/api")}}, req{path: "/apis"}, 0},
		{"prefix miss", []config.Match{{Path: prefix("/api/")}}, req{path: "/api"}, -1},
		{"exact beats prefix", []config.Match{{Path: prefix("/a")}, {Path: exact("/a/b")}}, req{path: "/a/b"}, 1},
		{"exact beats longer prefix", []config.Match{{Path: prefix("/a/b/c")}, {Path: exact("/a/b/c")}}, req{path: "/a/b/c"}, 1},
		{"longer prefix wins", []config.Match{{Path: prefix("/a")}, {Path: prefix("/a/b")}, {Path: prefix("/a/")}}, req{path: "/a/b/c"}, 1},
		{"catch-all prefix loses to regex", []config.Match{{Path: prefix("/")}, {Path: config.PathMatch{Regex: "^/items/[0-9]+$"}}}, req{path: "/items/42"}, 1},
		{"catch-all prefix loses to regex before it", []config.Match{{Path: config.PathMatch{Regex: "^/items/[0-9]+$"}}, {Path: prefix("/")}}, req{path: "/items/42"}, 0},
		{"catch-all still catches what the regex does not", []config.Match{{Path: prefix("/")}, {Path: config.PathMatch{Regex: "^/items/[0-9]+$"}}}, req{path: "/items/x"}, 0},
		{"catch-all prefix loses to template", []config.Match{{Path: prefix("/")}, {Path: config.PathMatch{Template: "/a/{x}"}}}, req{path: "/a/b"}, 1},
		{"no path is a catch-all that loses to template", []config.Match{{}, {Path: config.PathMatch{Template: "/u/{id}/{*rest}"}}}, req{path: "/u/1/x"}, 1},
		{"prefix as long as the regex literal wins", []config.Match{{Path: config.PathMatch{Regex: "^/items/[0-9]+$"}}, {Path: prefix("/items/")}}, req{path: "/items/42"}, 1},
		{"prefix as long as the template literal wins", []config.Match{{Path: config.PathMatch{Template: "/a/{x}"}}, {Path: prefix("/a/")}}, req{path: "/a/b"}, 1},
		{"prefix one byte shorter than the literal loses", []config.Match{{Path: prefix("/items")}, {Path: config.PathMatch{Regex: "^/items/[0-9]+$"}}}, req{path: "/items/42"}, 1},
		{"longer prefix beats regex", []config.Match{{Path: config.PathMatch{Regex: "^/items/.*$"}}, {Path: prefix("/items/4")}}, req{path: "/items/42"}, 1},
		{"longer prefix beats template", []config.Match{{Path: config.PathMatch{Template: "/a/{x}"}}, {Path: prefix("/a/b")}}, req{path: "/a/b"}, 1},
		{"regex literal stops at a repetition", []config.Match{{Path: config.PathMatch{Regex: "/items?/1"}}, {Path: prefix("/item")}}, req{path: "/items/1"}, 1},
		{"regex literal stops at case folding", []config.Match{{Path: config.PathMatch{Regex: "(?i)/items/1"}}, {Path: prefix("/")}}, req{path: "/items/1"}, 1},
		{"regex literal goes through escapes", []config.Match{{Path: prefix("/a.j")}, {Path: config.PathMatch{Regex: `/a\.json`}}}, req{path: "/a.json"}, 1},
		{"exact beats a longer-literal regex", []config.Match{{Path: config.PathMatch{Regex: "^/items/42$"}}, {Path: exact("/items/42")}, {Path: prefix("/")}}, req{path: "/items/42"}, 1},
		{"exact beats everything", []config.Match{{Path: prefix("/items/42")}, {Path: config.PathMatch{Template: "/items/{id}"}}, {Path: exact("/items/42")}, {Path: config.PathMatch{Regex: "/items/42"}}}, req{path: "/items/42"}, 2},
		{"longer regex literal beats shorter", []config.Match{{Path: config.PathMatch{Regex: "/.*"}}, {Path: config.PathMatch{Regex: "/a/.*"}}}, req{path: "/a/b"}, 1},
		{"longer template literal beats regex", []config.Match{{Path: config.PathMatch{Regex: "/a.*"}}, {Path: config.PathMatch{Template: "/a/{x}"}}}, req{path: "/a/b"}, 1},
		{"equal literals: host rank", []config.Match{{Path: config.PathMatch{Regex: "/a/.*"}}, {Hosts: []string{"a.com"}, Path: config.PathMatch{Template: "/a/{x}"}}}, req{host: "a.com", path: "/a/b"}, 1},
		{"equal literals: more conditions", []config.Match{{Path: config.PathMatch{Template: "/a/{x}"}}, {Path: config.PathMatch{Regex: "/a/.*"}, Methods: []string{"GET"}}}, req{path: "/a/b"}, 1},
		{"equal literals: config order", []config.Match{{Path: config.PathMatch{Regex: "/a/.*"}}, {Path: config.PathMatch{Template: "/a/{x}"}}}, req{path: "/a/b"}, 0},
		{"longer literal beats host rank", []config.Match{{Hosts: []string{"a.com"}, Path: config.PathMatch{Regex: "/a.*"}}, {Path: config.PathMatch{Regex: "/a/.*"}}}, req{host: "a.com", path: "/a/b"}, 1},
		{"regex beats shorter prefix on an exact host", []config.Match{{Hosts: []string{"a.com"}, Path: prefix("/")}, {Path: config.PathMatch{Regex: "/a/.*"}}}, req{host: "a.com", path: "/a/b"}, 1},
		{"regex falls back to the catch-all on method", []config.Match{{Path: prefix("/")}, {Path: config.PathMatch{Regex: "/a/.*"}, Methods: []string{"POST"}}}, req{path: "/a/b"}, 0},
		{"regex is anchored", []config.Match{{Path: config.PathMatch{Regex: "/a"}}}, req{path: "/ab"}, -1},
		{"regex full match", []config.Match{{Path: config.PathMatch{Regex: "^/u/[0-9]+$"}}}, req{path: "/u/42"}, 0},
		{"regex alternation is anchored", []config.Match{{Path: config.PathMatch{Regex: "/a|/b"}}}, req{path: "/bx"}, -1},
		{"regex and template tie go by order", []config.Match{{Path: config.PathMatch{Template: "/u/{id}"}}, {Path: config.PathMatch{Regex: "/u/.*"}}}, req{path: "/u/1"}, 0},
		{"template var", []config.Match{{Path: config.PathMatch{Template: "/u/{id}/x"}}}, req{path: "/u/7/x"}, 0},
		{"template var not empty", []config.Match{{Path: config.PathMatch{Template: "/u/{id}/x"}}}, req{path: "/u//x"}, -1},
		{"template var one segment", []config.Match{{Path: config.PathMatch{Template: "/u/{id}"}}}, req{path: "/u/1/2"}, -1},
		{"template rest", []config.Match{{Path: config.PathMatch{Template: "/u/{id}/{*rest}"}}}, req{path: "/u/1/a/b"}, 0},
		{"template rest empty", []config.Match{{Path: config.PathMatch{Template: "/u/{id}/{*rest}"}}}, req{path: "/u/1/"}, 0},
		{"template rest needs its slash", []config.Match{{Path: config.PathMatch{Template: "/u/{id}/{*rest}"}}}, req{path: "/u/1"}, -1},

		{"exact host", []config.Match{{Hosts: []string{"a.com"}}}, req{host: "a.com", path: "/"}, 0},
		{"host case and port", []config.Match{{Hosts: []string{"A.com"}}}, req{host: "a.COM:8080", path: "/"}, 0},
		{"host trailing dot", []config.Match{{Hosts: []string{"a.com"}}}, req{host: "a.com.", path: "/"}, 0},
		{"host ipv4 with port", []config.Match{{Hosts: []string{"127.0.0.1"}}}, req{host: "127.0.0.1:8080", path: "/"}, 0},
		{"request ipv6 literal", []config.Match{{Hosts: []string{"a.com"}}, {}}, req{host: "[::1]:8080", path: "/"}, 1},
		{"host miss", []config.Match{{Hosts: []string{"a.com"}}}, req{host: "b.com", path: "/"}, -1},
		{"wildcard host", []config.Match{{Hosts: []string{"*.a.com"}}}, req{host: "x.a.com", path: "/"}, 0},
		{"wildcard host deep", []config.Match{{Hosts: []string{"*.a.com"}}}, req{host: "x.y.A.com", path: "/"}, 0},
		{"wildcard not apex", []config.Match{{Hosts: []string{"*.a.com"}}}, req{host: "a.com", path: "/"}, -1},
		{"wildcard not partial label", []config.Match{{Hosts: []string{"*.a.com"}}}, req{host: "xa.com", path: "/"}, -1},
		{"exact host beats wildcard", []config.Match{{Hosts: []string{"*.a.com"}}, {Hosts: []string{"x.a.com"}}}, req{host: "x.a.com", path: "/"}, 1},
		{"longer wildcard wins", []config.Match{{Hosts: []string{"*.a.com"}}, {Hosts: []string{"*.x.a.com"}}, {Hosts: []string{"*.com"}}}, req{host: "y.x.a.com", path: "/"}, 1},
		{"wildcard beats no host", []config.Match{{}, {Hosts: []string{"*.a.com"}}}, req{host: "x.a.com", path: "/"}, 1},
		{"best host entry counts", []config.Match{{Hosts: []string{"*.com", "x.a.com"}}, {Hosts: []string{"*.a.com"}, Methods: []string{"GET"}}}, req{host: "x.a.com", path: "/"}, 0},
		{"path rank beats host rank", []config.Match{{Hosts: []string{"a.com"}, Path: prefix("/")}, {Path: prefix("/x")}}, req{host: "a.com", path: "/x"}, 1},
		{"exact path any host beats prefix exact host", []config.Match{{Hosts: []string{"a.com"}, Path: prefix("/x/y")}, {Path: exact("/x/y")}}, req{host: "a.com", path: "/x/y"}, 1},
		{"wildcard prefix beats any-host regex", []config.Match{{Path: config.PathMatch{Regex: "/.*"}}, {Hosts: []string{"*.a.com"}}}, req{host: "b.a.com", path: "/q"}, 1},
		{"any-host regex beats shorter wildcard prefix", []config.Match{{Path: config.PathMatch{Regex: "/q.*"}}, {Hosts: []string{"*.a.com"}}}, req{host: "b.a.com", path: "/q"}, 0},

		{"method", []config.Match{{Methods: []string{"post"}}}, req{method: "POST", path: "/"}, 0},
		{"method exact compare", []config.Match{{Methods: []string{"POST"}}}, req{method: "post", path: "/"}, -1},
		{"method any of", []config.Match{{Methods: []string{"GET", "PUT"}}}, req{method: "PUT", path: "/"}, 0},
		{"header", []config.Match{{Headers: map[string]string{"x-v": "2"}}}, req{path: "/", header: http.Header{"X-V": {"1", "2"}}}, 0},
		{"header value exact", []config.Match{{Headers: map[string]string{"X-V": "2"}}}, req{path: "/", header: http.Header{"X-V": {"2, 3"}}}, -1},
		{"header absent", []config.Match{{Headers: map[string]string{"X-V": ""}}}, req{path: "/"}, -1},
		{"header empty value", []config.Match{{Headers: map[string]string{"X-V": ""}}}, req{path: "/", header: http.Header{"X-V": {""}}}, 0},
		{"query", []config.Match{{Query: map[string]string{"beta": "1"}}}, req{path: "/", query: "a=2&beta=1"}, 0},
		{"query any value", []config.Match{{Query: map[string]string{"b": "1"}}}, req{path: "/", query: "b=0&b=1"}, 0},
		{"query miss", []config.Match{{Query: map[string]string{"beta": "1"}}}, req{path: "/", query: "beta=10"}, -1},
		{"query plus is space", []config.Match{{Query: map[string]string{"q": "a b"}}}, req{path: "/", query: "q=a+b"}, 0},
		{"query percent", []config.Match{{Query: map[string]string{"k y": "a&b"}}}, req{path: "/", query: "k%20y=a%26b"}, 0},
		{"query no value", []config.Match{{Query: map[string]string{"flag": ""}}}, req{path: "/", query: "flag"}, 0},
		{"query bad escape ignored", []config.Match{{Query: map[string]string{"a": "1"}}}, req{path: "/", query: "a=1%zz"}, -1},
		{"query semicolon pair ignored", []config.Match{{Query: map[string]string{"a": "1"}}}, req{path: "/", query: "a=1;b=2"}, -1},

		{"more conditions win", []config.Match{{Path: prefix("/")}, {Path: prefix("/"), Methods: []string{"GET"}}}, req{path: "/x"}, 1},
		{"headers add conditions", []config.Match{{Path: prefix("/"), Methods: []string{"GET"}}, {Path: prefix("/"), Headers: map[string]string{"A": "1", "B": "2"}}}, req{path: "/x", header: http.Header{"A": {"1"}, "B": {"2"}}}, 1},
		{"earlier wins a full tie", []config.Match{{Path: prefix("/x")}, {Path: prefix("/x")}}, req{path: "/x"}, 0},
		{"earlier wins tie across kinds", []config.Match{{Path: config.PathMatch{Regex: "/x"}}, {Path: config.PathMatch{Template: "/x"}}}, req{path: "/x"}, 0},
		{"fallback to shorter prefix", []config.Match{{Path: prefix("/")}, {Path: prefix("/users/"), Methods: []string{"POST"}}}, req{path: "/users/1"}, 0},
		{"fallback within one prefix", []config.Match{{Path: prefix("/u"), Methods: []string{"POST"}, Headers: map[string]string{"A": "1"}}, {Path: prefix("/u")}}, req{path: "/u"}, 1},
		{"fallback from exact to prefix", []config.Match{{Path: exact("/u"), Methods: []string{"POST"}}, {Path: prefix("/u")}}, req{path: "/u"}, 1},
		{"fallback from prefix to regex", []config.Match{{Path: prefix("/u"), Methods: []string{"POST"}}, {Path: config.PathMatch{Regex: "/u.*"}}}, req{path: "/u"}, 1},
		{"fallback from host to any host", []config.Match{{Hosts: []string{"a.com"}, Methods: []string{"POST"}}, {}}, req{host: "a.com", path: "/"}, 1},
		{"fallback from exact host to wildcard", []config.Match{{Hosts: []string{"*.a.com"}}, {Hosts: []string{"x.a.com"}, Methods: []string{"POST"}}}, req{host: "x.a.com", path: "/"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules := make([]Rule, len(tt.rules))
			for i, m := range tt.rules {
				rules[i] = Rule{Match: m}
			}
			rt := mustNew(t, rules)
			q := tt.req.orDefaults()
			got := rt.Match(q.host, q.path, q.method, q.header, q.query)
			if got != tt.want {
				t.Errorf("Match(%+v) = %d, want %d", q, got, tt.want)
			}
			if ref := refMatch(rules, q.host, q.path, q.method, q.header, q.query); ref != tt.want {
				t.Errorf("reference = %d, want %d (the reference is wrong)", ref, tt.want)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		m    config.Match
		want string
	}{
		{"bad regex", config.Match{Path: config.PathMatch{Regex: "/(a"}}, "regex"},
		{"two path kinds", config.Match{Path: config.PathMatch{Exact: "/a", Prefix: "/a"}}, "only one"},
		{"template without slash", config.Match{Path: config.PathMatch{Template: "u/{id}"}}, "start with"},
		{"template partial segment", config.Match{Path: config.PathMatch{Template: "/u/{id}.json"}}, "whole {name}"},
		{"template rest not last", config.Match{Path: config.PathMatch{Template: "/u/{*r}/x"}}, "last"},
		{"template empty name", config.Match{Path: config.PathMatch{Template: "/u/{}"}}, "not a valid name"},
		{"template duplicate name", config.Match{Path: config.PathMatch{Template: "/{a}/{a}"}}, "twice"},
		{"template unclosed", config.Match{Path: config.PathMatch{Template: "/u/{id"}}, "whole {name}"},
		{"host empty", config.Match{Hosts: []string{""}}, "empty"},
		{"host star alone", config.Match{Hosts: []string{"*"}}, "wildcard"},
		{"host inner star", config.Match{Hosts: []string{"a.*.com"}}, "wildcard"},
		{"host bare wildcard", config.Match{Hosts: []string{"*."}}, "not a DNS name"},
		{"host port", config.Match{Hosts: []string{"a.com:80"}}, "no port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New([]Rule{{}, {Match: tt.m}})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "rule 1") {
				t.Fatalf("New error = %v, want one about rule 1 containing %q", err, tt.want)
			}
		})
	}
	t.Run("all problems at once", func(t *testing.T) {
		_, err := New([]Rule{
			{Match: config.Match{Path: config.PathMatch{Regex: "("}}},
			{},
			{Match: config.Match{Hosts: []string{"*"}}},
		})
		if err == nil || !strings.Contains(err.Error(), "rule 0") || !strings.Contains(err.Error(), "rule 2") {
			t.Fatalf("New error = %v, want both rule 0 and rule 2", err)
		}
	})
}

func TestMatchNoAllocs(t *testing.T) {
	rt := mustNew(t, []Rule{
		{Match: config.Match{Hosts: []string{"api.example.com"}, Path: prefix("/users/"), Methods: []string{"GET"}}},
		{Match: config.Match{Hosts: []string{"*.example.com"}, Path: exact("/x"), Query: map[string]string{"q": "a b"}}},
		{Match: config.Match{Path: config.PathMatch{Regex: "/re/[0-9]+"}, Headers: map[string]string{"X-A": "1"}}},
		{Match: config.Match{Path: config.PathMatch{Template: "/t/{id}/{*rest}"}}},
	})
	h := http.Header{"X-A": {"1"}}
	long := strings.Repeat("Very-Long-Label.", 14) + "Example.COM:443"
	cases := []req{
		{host: "api.example.com", path: "/users/1"},
		{host: "API.Example.com:8443", path: "/users/1"},
		{host: "deep.sub.EXAMPLE.com", path: "/x", query: "z=1&q=a%20b"},
		{host: long, path: "/x", query: "q=a+b"},
		{host: "[::1]:80", path: "/re/12"},
		{host: "other", path: "/t/1/a/b"},
		{host: "other", path: "/none"},
	}
	for _, c := range cases {
		got := testing.AllocsPerRun(100, func() { rt.Match(c.host, c.path, "GET", h, c.query) })
		if got != 0 {
			t.Errorf("Match(%q, %q) allocs = %v, want 0", c.host, c.path, got)
		}
	}
}

// gen draws random rules and requests from small alphabets, so that routes
// overlap and tie often.
type gen struct{ r *rand.Rand }

func (g gen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }

func (g gen) path() string {
	var b strings.Builder
	n := g.r.IntN(5)
	for range n {
		b.WriteString(g.pick("/", "a", "b", "/a", "/b", "ab", "1"))
	}
	if b.Len() == 0 || g.r.IntN(8) > 0 {
		return "/" + b.String()
	}
	return b.String()
}

var (
	genHosts    = []string{"a.com", "b.a.com", "x.b.a.com", "A.com", "c.com", "d.com", "B.A.com"}
	genWildcard = []string{"*.a.com", "*.b.a.com", "*.com", "*.A.COM", "*.x.b.a.com"}
	genMethods  = []string{"GET", "POST", "get", "PUT"}
	genHeaders  = []string{"X-A", "x-b", "X-C"}
	genKeys     = []string{"a", "b", "k y", "c"}
	genValues   = []string{"1", "2", "", "a b", "+"}
)

func (g gen) rule() Rule {
	var m config.Match
	for range g.r.IntN(4) / 2 * (1 + g.r.IntN(2)) {
		if g.r.IntN(2) == 0 {
			m.Hosts = append(m.Hosts, g.pick(genHosts...))
		} else {
			m.Hosts = append(m.Hosts, g.pick(genWildcard...))
		}
	}
	switch g.r.IntN(6) {
	case 0:
		m.Path.Exact = g.path()
	case 1, 2:
		m.Path.Prefix = g.path()
	case 3:
		m.Path.Regex = g.pick("/a.*", "/[ab]+", "^/a/?b?$", "/(a|b)/1", "/.*1", "a", "/a|/b/.*", "/a/b.*", "/ab+", "/a/1")
	case 4:
		m.Path.Template = g.pick("/{x}", "/a/{x}", "/a/{x}/{*r}", "/{*r}", "/{x}/b", "/a/{*r}", "/a/b", "/ab/{x}")
	}
	for range g.r.IntN(3) / 2 * (1 + g.r.IntN(2)) {
		m.Methods = append(m.Methods, g.pick(genMethods...))
	}
	for range g.r.IntN(6) / 4 {
		if m.Headers == nil {
			m.Headers = map[string]string{}
		}
		m.Headers[g.pick(genHeaders...)] = g.pick(genValues...)
	}
	for range g.r.IntN(6) / 4 {
		if m.Query == nil {
			m.Query = map[string]string{}
		}
		m.Query[g.pick(genKeys...)] = g.pick(genValues...)
	}
	return Rule{Match: m}
}

func (g gen) request() req {
	host := g.pick("a.com", "b.a.com", "x.b.a.com", "y.x.b.a.com", "z.a.com", "c.com", "d.com", "A.Com", "B.A.COM", "[::1]", "[::1]:8080", "a.com:80", "a.com.", "", "com", ".com", "x.c.com")
	h := http.Header{}
	for range g.r.IntN(3) {
		k := http.CanonicalHeaderKey(g.pick(genHeaders...))
		h[k] = append(h[k], g.pick(genValues...))
	}
	var qs []string
	for range g.r.IntN(4) {
		qs = append(qs, g.pick("a", "b", "k+y", "k%20y", "c", "%61", "")+g.pick("=1", "=2", "", "=", "=a+b", "=a%20b", "=%2B", "=+", "=1;", "=%zz", "=%2"))
	}
	return req{host: host, path: g.path(), method: g.pick(genMethods...), header: h, query: strings.Join(qs, "&")}
}

// TestMatchAgainstReference is the main correctness proof: on thousands of
// random route sets and requests the Router must agree with refMatch.
func TestMatchAgainstReference(t *testing.T) {
	seeds := 3000
	if testing.Short() {
		seeds = 300
	}
	hits := 0
	for seed := range seeds {
		g := gen{rand.New(rand.NewPCG(uint64(seed), 7))}
		rules := make([]Rule, 1+g.r.IntN(20))
		for i := range rules {
			rules[i] = g.rule()
		}
		rt := mustNew(t, rules)
		for range 50 {
			q := g.request()
			got := rt.Match(q.host, q.path, q.method, q.header, q.query)
			want := refMatch(rules, q.host, q.path, q.method, q.header, q.query)
			if got != want {
				t.Fatalf("seed %d: Match(%+v) = %d, reference %d\nrules: %+v", seed, q, got, want, rules)
			}
			if got >= 0 {
				hits++
			}
		}
	}
	// Guard the generator: most requests should match something, but not
	// all, or the comparison proves little.
	if total := seeds * 50; hits < total/5 || hits > total*9/10 {
		t.Errorf("%d of %d random requests matched; the generator needs tuning", hits, total)
	}
	t.Logf("%d of %d random requests matched", hits, seeds*50)
}

// TestMatchConcurrent shares one Router between goroutines; run it with
// -race.
func TestMatchConcurrent(t *testing.T) {
	rules := make([]Rule, 200)
	g := gen{rand.New(rand.NewPCG(1, 2))}
	for i := range rules {
		rules[i] = g.rule()
	}
	rt := mustNew(t, rules)
	reqs := make([]req, 200)
	for i := range reqs {
		reqs[i] = g.request()
	}
	for w := range 8 {
		t.Run(fmt.Sprintf("worker%d", w), func(t *testing.T) {
			t.Parallel()
			for _, q := range reqs {
				if got, want := rt.Match(q.host, q.path, q.method, q.header, q.query), refMatch(rules, q.host, q.path, q.method, q.header, q.query); got != want {
					t.Errorf("Match(%+v) = %d, reference %d", q, got, want)
				}
			}
		})
	}
}

func TestLiteral(t *testing.T) {
	tests := []struct {
		p    config.PathMatch
		want string
	}{
		{config.PathMatch{Regex: "^/items/[0-9]+$"}, "/items/"},
		{config.PathMatch{Regex: "/items/[0-9]+"}, "/items/"},
		{config.PathMatch{Regex: "/a.*1"}, "/a"}, // not one-pass; regexp.LiteralPrefix says ""
		{config.PathMatch{Regex: "/items?"}, "/item"},
		{config.PathMatch{Regex: "/ab+"}, "/a"},
		{config.PathMatch{Regex: "/a{2}"}, "/"},
		{config.PathMatch{Regex: `/a\.json`}, "/a.json"},
		{config.PathMatch{Regex: "/x"}, "/x"},
		{config.PathMatch{Regex: "/a|/b"}, "/"}, // the parser factors out "/"
		{config.PathMatch{Regex: "a|b"}, ""},
		{config.PathMatch{Regex: "/(?P<id>v1)/x"}, "/"},
		{config.PathMatch{Regex: "(?:/v1)/x"}, "/v1/x"},
		{config.PathMatch{Regex: "(?i)/items"}, ""},
		{config.PathMatch{Regex: "/é/(?i)x"}, "/é/"},
		{config.PathMatch{Regex: "/a\ufffdb"}, "/a"},
		{config.PathMatch{Regex: "^{2}a"}, ""},
		{config.PathMatch{Regex: "(?m)^/a"}, ""},
		{config.PathMatch{Template: "/u/{id}/{*rest}"}, "/u/"},
		{config.PathMatch{Template: "/{*rest}"}, "/"},
		{config.PathMatch{Template: "/a/b"}, "/a/b"},
	}
	for _, tt := range tests {
		got, ok := Literal(tt.p)
		if !ok || got != tt.want {
			t.Errorf("Literal(%+v) = %q, %v; want %q", tt.p, got, ok, tt.want)
		}
		if tt.p.Regex != "" {
			if ref := refRegexLiteral(tt.p.Regex); ref != tt.want {
				t.Errorf("refRegexLiteral(%q) = %q, want %q", tt.p.Regex, ref, tt.want)
			}
		}
	}
	for _, p := range []config.PathMatch{{}, {Prefix: "/a"}, {Exact: "/a"}, {Regex: "("}, {Template: "x"}} {
		if _, ok := Literal(p); ok {
			t.Errorf("Literal(%+v) ok, want false", p)
		}
	}
}

func TestParams(t *testing.T) {
	rules := []Rule{
		{Match: config.Match{Path: config.PathMatch{Template: "/u/{id}/x/{*rest}"}}},
		{Match: config.Match{Path: config.PathMatch{Regex: `^/p/(?P<id>[0-9]+)(?:/(?P<tail>.*))?$`}}},
		{Match: config.Match{Path: config.PathMatch{Prefix: "/"}}},
		{Match: config.Match{Path: config.PathMatch{Regex: `^/r/([0-9]+)$`}}},
	}
	rt, err := New(rules)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		idx  int
		want []exchange.Param
	}{
		{"/u/a b/x/c/d", 0, []exchange.Param{{Name: "id", Value: "a b"}, {Name: "rest", Value: "c/d", Rest: true}}},
		{"/u/42/x/", 0, []exchange.Param{{Name: "id", Value: "42"}, {Name: "rest", Value: "", Rest: true}}},
		{"/p/7", 1, []exchange.Param{{Name: "id", Value: "7"}, {Name: "tail", Value: ""}}},
		{"/p/7/a/b", 1, []exchange.Param{{Name: "id", Value: "7"}, {Name: "tail", Value: "a/b"}}},
		{"/other", 2, nil},
		{"/r/1", 3, nil},
	}
	for _, tt := range tests {
		idx := rt.Match("h", tt.path, "GET", nil, "")
		if idx != tt.idx {
			t.Fatalf("Match(%q) = %d, want %d", tt.path, idx, tt.idx)
		}
		got := rt.Params(idx, tt.path, nil)
		if !slices.Equal(got, tt.want) {
			t.Errorf("Params(%q) = %+v, want %+v", tt.path, got, tt.want)
		}
	}
	if got := rt.Params(-1, "/x", nil); got != nil {
		t.Errorf("Params(-1) = %v", got)
	}
}
