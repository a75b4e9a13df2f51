// Package grafana holds the Grafana dashboard rampart.json and its tests:
// the file keeps to Grafana's import schema (a data source input and
// variable, no data source UID), every metric its queries name is one a
// running gateway exports (TestDashboardMetricsExported), and every query
// parses and returns data in a real Prometheus scraping a real gateway
// (TestDashboardQueriesInPrometheus).
package grafana

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// dashboard is the part of Grafana's dashboard JSON the tests read.
type dashboard struct {
	Inputs []struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		PluginID string `json:"pluginId"`
	} `json:"__inputs"`
	Requires []struct {
		Type, ID string
	} `json:"__requires"`
	Annotations struct {
		List []struct {
			Name       string          `json:"name"`
			BuiltIn    int             `json:"builtIn"`
			Datasource json.RawMessage `json:"datasource"`
			Expr       string          `json:"expr"`
			TextFormat string          `json:"textFormat"`
		} `json:"list"`
	} `json:"annotations"`
	Panels        []panel `json:"panels"`
	SchemaVersion int     `json:"schemaVersion"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Title string `json:"title"`
	UID   string `json:"uid"`
	ID    any    `json:"id"`
}

type panel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource"`
	GridPos    struct{ H, W, X, Y int }
	Targets    []target `json:"targets"`
	Panels     []panel  `json:"panels"` // a collapsed row's
}

type target struct {
	Datasource   json.RawMessage `json:"datasource"`
	Expr         string          `json:"expr"`
	RefID        string          `json:"refId"`
	LegendFormat string          `json:"legendFormat"`
}

type variable struct {
	Type       string          `json:"type"`
	Name       string          `json:"name"`
	Datasource json.RawMessage `json:"datasource"`
	Definition string          `json:"definition"`
	Query      json.RawMessage `json:"query"`
	AllValue   string          `json:"allValue"`
	IncludeAll bool            `json:"includeAll"`
}

// query is one PromQL expression of the dashboard, where it is, and the
// legend (or annotation text) template its series are shown with.
type query struct {
	where, expr, legend string
}

func loadDashboard(t testing.TB) (*dashboard, []byte) {
	t.Helper()
	b, err := os.ReadFile("rampart.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("rampart.json: %v", err)
	}
	return &d, b
}

// allPanels returns the panels, rows' panels included.
func (d *dashboard) allPanels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// queries returns every PromQL expression: panel targets and annotations.
func (d *dashboard) queries() []query {
	var out []query
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			out = append(out, query{fmt.Sprintf("panel %d %q target %s", p.ID, p.Title, tg.RefID), tg.Expr, tg.LegendFormat})
		}
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			out = append(out, query{fmt.Sprintf("annotation %q", a.Name), a.Expr, a.TextFormat})
		}
	}
	return out
}

// labelValuesQuery matches a Prometheus variable's label_values(selector, label).
var labelValuesQuery = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// variableQueries returns the selector and label of every query variable.
func (d *dashboard) variableQueries(t testing.TB) map[string][2]string {
	t.Helper()
	out := map[string][2]string{}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct{ Query string }
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("variable %s: query: %v", v.Name, err)
		}
		if q.Query != v.Definition {
			t.Errorf("variable %s: query %q and definition %q differ", v.Name, q.Query, v.Definition)
		}
		m := labelValuesQuery.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Fatalf("variable %s: %q is not label_values(selector, label)", v.Name, v.Definition)
		}
		out[v.Name] = [2]string{m[1], m[2]}
	}
	return out
}

// dsRef is the only data source reference panels, targets, annotations
// and variables may hold.
const dsRef = `{"type":"prometheus","uid":"${datasource}"}`

func compact(t testing.TB, raw json.RawMessage) string {
	var v any
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// TestDashboardImportable holds rampart.json to Grafana's import schema:
// a Prometheus data source input, a datasource variable every panel,
// target, annotation and variable uses (no data source UID anywhere),
// __requires naming every panel type, unique panel ids, a 24-column grid,
// refIds, and only defined variables in the queries.
func TestDashboardImportable(t *testing.T) {
	d, raw := loadDashboard(t)
	if d.SchemaVersion < 36 || d.Title == "" || d.UID == "" || d.ID != nil {
		t.Errorf("schemaVersion %d, title %q, uid %q, id %v: want schemaVersion >= 36, a title and uid, id null", d.SchemaVersion, d.Title, d.UID, d.ID)
	}
	if len(d.Inputs) != 1 || d.Inputs[0].Type != "datasource" || d.Inputs[0].PluginID != "prometheus" {
		t.Errorf("__inputs %+v, want one Prometheus datasource input", d.Inputs)
	}
	required := map[string]bool{}
	for _, r := range d.Requires {
		required[r.Type+"/"+r.ID] = true
	}
	for _, r := range []string{"grafana/grafana", "datasource/prometheus"} {
		if !required[r] {
			t.Errorf("__requires lacks %s", r)
		}
	}
	vars := map[string]variable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	ds, ok := vars["datasource"]
	if !ok || ds.Type != "datasource" || !strings.Contains(string(ds.Query), "prometheus") {
		t.Errorf("no datasource variable of type datasource for prometheus: %+v", ds)
	}
	if len(d.Inputs) == 1 && !strings.Contains(string(raw), "${"+d.Inputs[0].Name+"}") {
		t.Errorf("input %s is used nowhere (the datasource variable's default should be it)", d.Inputs[0].Name)
	}
	// No data source UID but the variable: every "uid" in the file is the
	// dashboard's own, ${datasource}, or Grafana's built-in annotation source.
	for _, m := range regexp.MustCompile(`"uid":\s*"([^"]*)"`).FindAllStringSubmatch(string(raw), -1) {
		if m[1] != d.UID && m[1] != "${datasource}" && m[1] != "-- Grafana --" {
			t.Errorf("hard-coded uid %q", m[1])
		}
	}
	ids := map[int]bool{}
	var placed []panel
	for _, p := range d.allPanels() {
		for _, o := range placed { // no two panels overlap
			a, b := p.GridPos, o.GridPos
			if a.X < b.X+b.W && b.X < a.X+a.W && a.Y < b.Y+b.H && b.Y < a.Y+a.H {
				t.Errorf("panels %q and %q overlap: %+v %+v", p.Title, o.Title, a, b)
			}
		}
		placed = append(placed, p)
		if ids[p.ID] || p.ID == 0 {
			t.Errorf("panel %q: id %d missing or repeated", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W < 1 || p.GridPos.X+p.GridPos.W > 24 || p.GridPos.H < 1 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, p.GridPos)
		}
		if p.Title == "" {
			t.Errorf("panel %d has no title", p.ID)
		}
		if p.Type == "row" {
			continue
		}
		if !required["panel/"+p.Type] {
			t.Errorf("panel %q: type %s is not in __requires", p.Title, p.Type)
		}
		if got := compact(t, p.Datasource); got != dsRef {
			t.Errorf("panel %q: datasource %s, want %s", p.Title, got, dsRef)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if got := compact(t, tg.Datasource); got != dsRef {
				t.Errorf("panel %q target %s: datasource %s, want %s", p.Title, tg.RefID, got, dsRef)
			}
			if tg.RefID == "" || refs[tg.RefID] || strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q: a target without expr, or with a missing or repeated refId %q", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
		}
	}
	for _, a := range d.Annotations.List {
		if a.BuiltIn == 0 && compact(t, a.Datasource) != dsRef {
			t.Errorf("annotation %q: datasource %s, want %s", a.Name, compact(t, a.Datasource), dsRef)
		}
	}
	for name, v := range vars {
		if v.Type == "query" {
			if got := compact(t, v.Datasource); got != dsRef {
				t.Errorf("variable %s: datasource %s, want %s", name, got, dsRef)
			}
			if v.IncludeAll && v.AllValue != ".*" {
				t.Errorf("variable %s: allValue %q, want .* (queries match with =~)", name, v.AllValue)
			}
		}
	}
	d.variableQueries(t)
	// Every $variable a query uses is defined (or one of Grafana's own).
	used := regexp.MustCompile(`\$\{?([a-zA-Z_][a-zA-Z0-9_]*)`)
	qs := d.queries()
	for _, v := range d.variableQueries(t) {
		qs = append(qs, query{"variable", v[0], ""})
	}
	for _, q := range qs {
		for _, m := range used.FindAllStringSubmatch(q.expr, -1) {
			if _, ok := vars[m[1]]; !ok && !strings.HasPrefix(m[1], "__") {
				t.Errorf("%s: $%s is not a dashboard variable", q.where, m[1])
			}
		}
	}
}

// dashboardMetrics returns every metric name the dashboard's queries and
// variables name, with where each is used.
func dashboardMetrics(t testing.TB, d *dashboard) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	qs := d.queries()
	for name, v := range d.variableQueries(t) {
		qs = append(qs, query{"variable " + name, v[0], ""})
	}
	for _, q := range qs {
		names, err := metricNames(q.expr)
		if err != nil {
			t.Fatalf("%s: %v in %s", q.where, err, q.expr)
		}
		if len(names) == 0 {
			t.Errorf("%s names no metric: %s", q.where, q.expr)
		}
		for _, n := range names {
			out[n] = append(out[n], q.where)
		}
	}
	return out
}

// exportedNames reads a scrape in the text exposition format and returns
// every series name it can hold: a histogram's _bucket, _sum and _count,
// a summary's own name (its quantiles), _sum and _count.
func exportedNames(scrape string) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(scrape, "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			switch f[3] {
			case "histogram":
				out[f[2]+"_bucket"], out[f[2]+"_sum"], out[f[2]+"_count"] = true, true, true
			case "summary":
				out[f[2]], out[f[2]+"_sum"], out[f[2]+"_count"] = true, true, true
			default:
				out[f[2]] = true
			}
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			out[line[:i]] = true
		}
	}
	return out
}

// missingMetrics returns the names used that the scrape does not export.
func missingMetrics(used map[string][]string, exported map[string]bool) []string {
	var out []string
	for n, where := range used {
		if !exported[n] {
			out = append(out, fmt.Sprintf("%s (%s)", n, strings.Join(where, "; ")))
		}
	}
	sort.Strings(out)
	return out
}

// coverage are the metrics the dashboard must show (issue 13: RED per
// route, upstream health and circuits, rate limits, reloads, runtime).
var coverage = []string{
	"rampart_http_requests_total", "rampart_http_request_duration_seconds_bucket",
	"rampart_upstream_requests_total", "rampart_upstream_request_duration_seconds_bucket",
	"rampart_upstream_target_healthy", "rampart_upstream_circuit_open", "rampart_retries_total",
	"rampart_rate_limit_decisions_total", "rampart_rate_limit_store_errors_total", "rampart_redis_up",
	"rampart_config_reloads_total", "rampart_config_info", "rampart_ready",
	"rampart_active_connections", "rampart_tls_handshake_errors_total", "rampart_http_refused_total",
	"rampart_waf_blocked_total", "rampart_waf_detected_total",
	"go_goroutines", "go_memstats_heap_inuse_bytes", "go_gc_duration_seconds",
	"process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
}

// TestDashboardMetricsExported scrapes a running gateway that served
// traffic exercising every feature the dashboard shows, and checks that
// every metric named by every panel query, annotation and variable is in
// the scrape; and that the dashboard covers what it must.
func TestDashboardMetricsExported(t *testing.T) {
	d, _ := loadDashboard(t)
	used := dashboardMetrics(t, d)
	for _, n := range coverage {
		if _, ok := used[n]; !ok {
			t.Errorf("the dashboard does not show %s", n)
		}
	}
	g := startGateway(t)
	g.traffic(t, nil)
	exported := exportedNames(g.scrape(t))
	if missing := missingMetrics(used, exported); len(missing) > 0 {
		t.Errorf("the dashboard names metrics the gateway does not export:\n%s", strings.Join(missing, "\n"))
	}
	t.Logf("%d metric names in the dashboard", len(used))

	// The check itself: a made-up query must be reported, a histogram's
	// base name is not a series, and a label is not a metric.
	fake := &dashboard{Panels: []panel{{ID: 1, Title: "fake", Targets: []target{{RefID: "A",
		Expr: `sum by (route) (rate(rampart_no_such_requests_total{route=~"$route"}[$__rate_interval])) / on (route) rampart_http_request_duration_seconds`}}}}}
	missing := missingMetrics(dashboardMetrics(t, fake), exported)
	if len(missing) != 2 || !strings.HasPrefix(missing[0], "rampart_http_request_duration_seconds ") || !strings.HasPrefix(missing[1], "rampart_no_such_requests_total ") {
		t.Errorf("made-up query: missing %q, want rampart_http_request_duration_seconds and rampart_no_such_requests_total", missing)
	}
	if exported["route"] || !exported["rampart_http_request_duration_seconds_bucket"] || !exported["go_gc_duration_seconds"] {
		t.Error("exportedNames: wrong names for labels, histograms or summaries")
	}
}
