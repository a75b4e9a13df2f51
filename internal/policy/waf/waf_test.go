package waf

import (
	"net/http"
	"net/http/httptest"
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

func TestQuick(t *testing.T) {
	f := build(t, "")
	for _, u := range []string{"/?id=1' OR '1'='1", "/?q=<script>alert(1)</script>", "/a/../../etc/passwd", "/?name=O'Brien"} {
		r := httptest.NewRequest("GET", "http://api.example.com/", nil)
		r.URL.RawQuery = ""
		r.RequestURI = strings.ReplaceAll(u, " ", "%20")
		r.Header.Set("User-Agent", "Mozilla/5.0")
		r.Header.Set("Accept", "text/html")
		rec, reached, ex := serve(f, r)
		t.Logf("%s -> %d reached=%v rules=%v score=%d", u, rec.Code, reached, ex.WAFRules, ex.WAFScore)
	}
}
