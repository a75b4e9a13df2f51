package app

import (
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampart-gw/rampart/internal/config"
)

// TestMetricsDocumented builds a gateway, so that every collector is
// registered, and compares the names of the metrics it exports with the
// table in docs/operations.md, both ways. Vectors without series are absent
// from a scrape, so the names come from the descriptors; the scrape
// (Gather) adds any metric registered some other way that has series.
func TestMetricsDocumented(t *testing.T) {
	cfg, err := config.LoadBytes("m.yaml", []byte(`listeners: [{name: public, address: "127.0.0.1:0"}]
admin: {address: "off"}
observability: {access_log: {path: "off"}}
upstreams:
  app: {targets: [{address: "127.0.0.1:9"}]}
policies:
  limit: {type: rate_limit, rate: 10/s}
routes:
  - {name: all, upstream: app, policies: [limit], retry: {attempts: 2}}
`))
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Config: cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.closeListeners(); a.registry.Close() })

	exported := map[string]bool{}
	ch := make(chan *prometheus.Desc)
	go func() {
		a.metrics.Describe(ch)
		close(ch)
	}()
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range ch {
		m := fqName.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("descriptor without a name: %v", d)
		}
		exported[m[1]] = true
	}
	families, err := a.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		switch name := f.GetName(); {
		case strings.HasPrefix(name, "go_"), strings.HasPrefix(name, "process_"):
			// "Go runtime and process metrics are exported too."
		default:
			exported[name] = true
		}
	}
	if !exported["rampart_http_requests_total"] || !exported["rampart_config_candidate_percent"] {
		t.Fatalf("registry lacks known metrics: %v", slices.Sorted(maps.Keys(exported)))
	}

	documented := metricsTable(t)
	for name := range exported {
		if !documented[name] {
			t.Errorf("%s is exported but not in the docs/operations.md metrics table", name)
		}
	}
	for name := range documented {
		if !exported[name] {
			t.Errorf("%s is in the docs/operations.md metrics table but not exported", name)
		}
	}
}

// metricsTable returns the metric names in the first column of the table
// under "## Metrics" in docs/operations.md.
func metricsTable(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Metrics\n")
	if !ok {
		t.Fatal(`docs/operations.md has no "## Metrics" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	name := regexp.MustCompile("`(rampart_[a-z0-9_]+)`")
	out := map[string]bool{}
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| `rampart_") {
			continue
		}
		first, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " | ")
		for _, m := range name.FindAllStringSubmatch(first, -1) {
			out[m[1]] = true
		}
	}
	if len(out) == 0 {
		t.Fatal("no metrics found in the docs/operations.md table")
	}
	return out
}

// TestMetricsRegisteredThroughTelemetry keeps Describe complete: gateway
// metrics are registered with telemetry.Metrics.MustRegister, never on the
// registry directly, or TestMetricsDocumented could not see them before
// they have series.
func TestMetricsRegisteredThroughTelemetry(t *testing.T) {
	root := filepath.Join("..", "..", "internal")
	direct := regexp.MustCompile(`\.Registry\.(Must)?Register\(`)
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if !direct.MatchString(line) {
				continue
			}
			// telemetry/metrics.go is MustRegister's home, and registers
			// the Go and process collectors (not the gateway's) directly.
			if filepath.ToSlash(path) == "../../internal/telemetry/metrics.go" {
				continue
			}
			t.Errorf("%s:%d registers on the registry directly; use telemetry.Metrics.MustRegister: %s", path, i+1, strings.TrimSpace(line))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
