package waf

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/exchange"
	"github.com/rampart-gw/rampart/internal/policy"
)

// spec builds a policy Spec from YAML keys.
func spec(t testing.TB, keys string) policy.Spec {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("type: waf\n"+keys), &doc); err != nil {
		t.Fatal(err)
	}
	return policy.Spec{Name: "waf", Node: &config.Policy{Type: "waf", Spec: doc.Content[0]}, File: "rampart.yaml", Path: "policies.waf"}
}

func build(t testing.TB, keys string) *Firewall {
	t.Helper()
	p, err := New(spec(t, keys))
	if err != nil {
		t.Fatal(err)
	}
	return p.(*Firewall)
}

// serve sends r through f to a handler that records whether it was reached.
func serve(f *Firewall, r *http.Request) (*httptest.ResponseRecorder, bool, *exchange.Exchange) {
	ex := &exchange.Exchange{RequestID: "rid", Route: "api"}
	r = r.WithContext(exchange.With(r.Context(), ex))
	reached := false
	h := f.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached = true }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec, reached, ex
}

func TestFirewall(t *testing.T) {
	block := build(t, "")
	detect := build(t, "mode: detect")
	xxeOff := build(t, "rule_exclusions: [{ids: [200007], path_prefix: /import/}]")
	excl := build(t, "rule_exclusions:\n  - {ids: [942100], args: [q]}\n  - {tags: [attack-xss], path_prefix: /cms/}\nmax_body_bytes: 64\n")
	tests := []struct {
		name        string
		f           *Firewall
		method, uri string
		ctype, body string
		ua          string
		status      int
		reached     bool
	}{
		{"sqli query", block, "GET", "/?id=1'%20OR%20'1'='1", "", "", "", 403, false},
		{"xss query", block, "GET", "/?q=%3Cscript%3Ealert(1)%3C/script%3E", "", "", "", 403, false},
		{"path traversal", block, "GET", "/files/../../etc/passwd", "", "", "", 403, false},
		{"scanner ua", block, "GET", "/", "", "", "sqlmap/1.7", 403, false},
		{"sqli json", block, "POST", "/api", "application/json", `{"user":"x' UNION SELECT password FROM users--"}`, "", 403, false},
		{"xss form", block, "POST", "/api", "application/x-www-form-urlencoded", "c=%3Cscript%3Ealert(1)%3C%2Fscript%3E", "", 403, false},
		{"xxe entity", block, "POST", "/api", "application/xml", `<!DOCTYPE foo [ <!ELEMENT foo ANY ><!ENTITY xxe SYSTEM "file:///etc/passwd" > ]><foo>&xxe;</foo>`, "", 403, false},
		{"xxe external dtd", block, "POST", "/soap", "text/xml", `<?xml version="1.0"?><!DOCTYPE x SYSTEM "http://evil.example/x.dtd"><x>a</x>`, "", 403, false},
		{"xxe excluded path", xxeOff, "POST", "/import/doc", "application/xml", `<!DOCTYPE x SYSTEM "http://evil.example/x.dtd"><x>a</x>`, "", 200, true},
		{"xxe other path", xxeOff, "POST", "/api", "application/xml", `<!DOCTYPE x SYSTEM "http://evil.example/x.dtd"><x>a</x>`, "", 403, false},
		{"benign xml", block, "POST", "/api", "application/xml", `<?xml version="1.0"?><!DOCTYPE note><note><to>O'Brien</to><body>see the ENTITY docs</body></note>`, "", 200, true},
		{"malformed json", block, "POST", "/api", "application/json", `{"a":`, "", 400, false},
		{"benign get", block, "GET", "/users/42?sort=name&page=2", "", "", "", 200, true},
		{"benign obrien", block, "GET", "/search?name=O%27Brien", "", "", "", 200, true},
		{"benign json", block, "POST", "/api", "application/json", `{"name":"O'Brien","tags":["a","b"],"n":3}`, "", 200, true},
		{"detect passes", detect, "GET", "/?id=1'%20OR%20'1'='1", "", "", "", 200, true},
		{"excluded arg", excl, "GET", "/?q=1'%20OR%20'1'='1", "", "", "", 200, true},
		{"other arg still checked", excl, "GET", "/?id=1'%20OR%20'1'='1", "", "", "", 403, false},
		{"excluded path", excl, "GET", "/cms/page?c=%3Cscript%3Ealert(1)%3C/script%3E", "", "", "", 200, true},
		{"not excluded path", excl, "GET", "/api?c=%3Cscript%3Ealert(1)%3C/script%3E", "", "", "", 403, false},
		{"body over limit", excl, "POST", "/api", "application/json", `{"a":"` + strings.Repeat("x", 100) + `"}`, "", 413, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader = http.NoBody
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			r := httptest.NewRequest(tc.method, "http://api.example.com"+tc.uri, body)
			r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0")
			if tc.ua != "" {
				r.Header.Set("User-Agent", tc.ua)
			}
			r.Header.Set("Accept", "*/*")
			if tc.ctype != "" {
				r.Header.Set("Content-Type", tc.ctype)
			}
			var got string
			h := tc.f.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				got = string(b)
			}))
			ex := &exchange.Exchange{RequestID: "rid", Route: "api"}
			r = r.WithContext(exchange.With(r.Context(), ex))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			reached := got != "" || tc.body == "" && rec.Code == 200
			if rec.Code != tc.status || reached != tc.reached {
				t.Fatalf("status %d reached %v, want %d %v (rules %v score %d)", rec.Code, reached, tc.status, tc.reached, ex.WAFRules, ex.WAFScore)
			}
			if tc.reached && got != tc.body {
				t.Errorf("upstream body %q, want %q", got, tc.body)
			}
			if tc.status == 403 {
				if !strings.Contains(rec.Body.String(), `"code":"waf_blocked"`) || len(ex.WAFRules) == 0 {
					t.Errorf("body %s rules %v", rec.Body.String(), ex.WAFRules)
				}
				for _, id := range ex.WAFRules {
					if strings.Contains(rec.Body.String(), strconv.Itoa(id)) {
						t.Errorf("rule id %d in the body", id)
					}
				}
			}
			if tc.f == detect && len(ex.WAFRules) == 0 {
				t.Errorf("detect mode recorded no rules")
			}
		})
	}
}

// TestReuse checks that equal settings share one built rule set and
// different ones do not.
func TestReuse(t *testing.T) {
	a := build(t, "paranoia_level: 2")
	b := build(t, "paranoia_level: 2")
	c := build(t, "paranoia_level: 3")
	if a.inst != b.inst {
		t.Error("equal settings built twice")
	}
	if a.inst == c.inst {
		t.Error("different settings share an instance")
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct{ name, keys, want string }{
		{"paranoia", "paranoia_level: 5", "policies.waf.paranoia_level: must be between 1 and 4"},
		{"mode", "mode: log", `invalid mode "log"`},
		{"threshold", "anomaly_threshold: -1", "anomaly_threshold: must be between"},
		{"over limit", "body_over_limit: drop", `invalid body_over_limit "drop"`},
		{"empty exclusion", "rule_exclusions: [{path_prefix: /x}]", "rule_exclusions[0]: needs ids or tags"},
		{"bad tag", "rule_exclusions: [{tags: ['a\"b']}]", "invalid tag"},
		{"bad path", "rule_exclusions: [{ids: [1], path_prefix: 'x y'}]", "invalid path prefix"},
		{"bad directives", "directives: 'SecRule ARGS'", "policies.waf.directives: invalid directives"},
		{"unknown key", "paranoia: 1", "paranoia"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(spec(t, tc.keys))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "rampart.yaml:") {
				t.Fatalf("error %v, want %q positioned", err, tc.want)
			}
		})
	}
}
