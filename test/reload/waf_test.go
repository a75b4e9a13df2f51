package reload

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/app"
	"github.com/rampart-gw/rampart/test/gwtest"
)

// TestWAFReloadReuse runs a gateway with a waf route, reloads it with an
// unrelated change (a route added) and checks, through the admin API's
// rampart_waf_rule_sets_built_total, that the WAF's rule set was reused
// and still blocks; then reloads with a changed waf setting (mode:
// detect) and checks that the rule set was rebuilt and the new setting is
// in effect (the attack is forwarded and counted as detected).
func TestWAFReloadReuse(t *testing.T) {
	up := named(t, "api", 0)
	listen, adminAddr := gwtest.FreeAddr(t), gwtest.FreeAddr(t)
	// anomaly_threshold 6 (not a default) keeps this rule set apart from
	// any another test of this process may hold (the cache is per process).
	doc := func(extraRoute, mode string) string {
		return head(listen, adminAddr) + fmt.Sprintf(`
upstreams:
  svc: {targets: [{address: %q}]}
routes:
  - {name: api, match: {path: {prefix: /}}, upstream: svc, policies: [waf]}%s
policies:
  waf: {type: waf, anomaly_threshold: 6, mode: %s}
`, up, extraRoute, mode)
	}
	path := filepath.Join(t.TempDir(), "rampart.yaml")
	if err := os.WriteFile(path, []byte(doc("", "block")), 0o600); err != nil {
		t.Fatal(err)
	}
	g := gwtest.Run(t, app.Options{ConfigPath: path})
	g.Path = path
	c := newClient(t)
	attack := g.URL + "/items?id=1%27%20UNION%20SELECT%20password%20FROM%20users--"
	check := func(step string, wantBuilds int, wantStatus int, wantBody string) {
		t.Helper()
		_, metrics, _ := get(c, g.Admin+"/metrics")
		if got := sample(metrics, "rampart_waf_rule_sets_built_total"); got != fmt.Sprint(wantBuilds) {
			t.Errorf("%s: rampart_waf_rule_sets_built_total %q, want %d", step, got, wantBuilds)
		}
		code, body, _ := get(c, attack, "User-Agent", "Mozilla/5.0")
		if code != wantStatus || !strings.Contains(body, wantBody) {
			t.Errorf("%s: attack answered %d %q, want %d %q", step, code, body, wantStatus, wantBody)
		}
		if code, body, _ := get(c, g.URL+"/items?id=42&name=O%27Brien", "User-Agent", "Mozilla/5.0"); code != 200 || body != "api" {
			t.Errorf("%s: benign request answered %d %q", step, code, body)
		}
	}
	check("start", 1, 403, "waf_blocked")

	// An unrelated change: the rule set is reused.
	other := named(t, "other", 0)
	start := time.Now()
	g.Reload(t, strings.Replace(doc(fmt.Sprintf(`
  - {name: other, match: {path: {prefix: /other/}}, upstream: other}`), "block"),
		"upstreams:\n", fmt.Sprintf("upstreams:\n  other: {targets: [{address: %q}]}\n", other), 1))
	reused := time.Since(start)
	check("unrelated reload", 1, 403, "waf_blocked")
	if code, body, _ := get(c, g.URL+"/other/x"); code != 200 || body != "other" {
		t.Fatalf("the added route answered %d %q", code, body)
	}

	// A changed waf setting: rebuilt, and in effect.
	start = time.Now()
	g.Reload(t, doc("", "detect"))
	rebuilt := time.Since(start)
	check("waf setting changed", 2, 200, "api")
	_, metrics, _ := get(c, g.Admin+"/metrics")
	if got := sample(metrics, `rampart_waf_detected_total{route="api"}`); got != "1" {
		t.Errorf("detect mode: rampart_waf_detected_total %q, want 1", got)
	}
	t.Logf("reload with the waf reused: %v; with the waf rebuilt: %v", reused.Round(time.Millisecond), rebuilt.Round(time.Millisecond))
}

// sample returns the value of the metric line that starts with name and
// labels ("" when absent).
func sample(metrics, prefix string) string {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(prefix) + ` (\S+)$`).FindStringSubmatch(metrics)
	if m == nil {
		return ""
	}
	return m[1]
}
