package app

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rampart-gw/rampart/internal/admin"
	"github.com/rampart-gw/rampart/internal/cluster/outlier"
	"github.com/rampart-gw/rampart/internal/compile"
	"github.com/rampart-gw/rampart/internal/config"
)

// lifecycleConfig is a config with one upstream over addrs whose passive
// health check ejects a target after one 5xx; extra is appended (a route
// policy, another upstream).
func lifecycleConfig(t *testing.T, addrs []string, extra string) []byte {
	t.Helper()
	var b strings.Builder
	b.WriteString("listeners: [{name: public, address: \"127.0.0.1:0\"}]\nadmin: {address: \"off\"}\n")
	b.WriteString("observability: {access_log: {path: \"off\"}}\nupstreams:\n  users:\n    targets:\n")
	for _, a := range addrs {
		fmt.Fprintf(&b, "      - {address: %q}\n", a)
	}
	b.WriteString("    health_check: {passive: {consecutive_5xx: 1, max_ejection_percent: 100, base_ejection_time: 1h}}\n")
	b.WriteString("routes:\n  - {name: all, match: {path: {prefix: /}}, upstream: users, retry: {attempts: 2, budget: {percent: 20}}}\n")
	b.WriteString(extra)
	return []byte(b.String())
}

func newLifecycleApp(t *testing.T, doc []byte) *App {
	t.Helper()
	cfg, err := config.LoadBytes("life.yaml", doc)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Config: cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.closeListeners(); a.registry.Close() })
	return a
}

// Each config change compiles its config exactly once; a rollback or a
// promotion compiles nothing.
func TestCompiledOncePerChange(t *testing.T) {
	addrs := []string{"127.0.0.1:1", "127.0.0.1:2"}
	before := compile.Builds()
	a := newLifecycleApp(t, lifecycleConfig(t, addrs, ""))
	steps := []struct {
		name string
		do   func() error
		want int64
	}{
		{"start", func() error { return nil }, 1},
		{"apply", func() error {
			_, err := a.ApplyConfig(admin.Document{Name: "api.yaml", Data: lifecycleConfig(t, addrs, "# v2\n")})
			return err
		}, 1},
		{"refused apply", func() error {
			_, err := a.ApplyConfig(admin.Document{Name: "api.yaml", Data: lifecycleConfig(t, addrs, "  - {name: bad, match: {path: {prefix: /x}}, upstream: nope}\n")})
			if err == nil {
				return fmt.Errorf("a config naming an unknown upstream was applied")
			}
			return nil
		}, 0}, // refused by validate, before compile
		{"stage", func() error {
			_, err := a.StageCandidate(admin.CandidateSpec{Document: admin.Document{Name: "c.yaml", Data: lifecycleConfig(t, addrs, "# c1\n")}, Percent: 50})
			return err
		}, 1},
		{"stage over a candidate", func() error {
			_, err := a.StageCandidate(admin.CandidateSpec{Document: admin.Document{Name: "c.yaml", Data: lifecycleConfig(t, addrs, "# c2\n")}, Percent: 50})
			return err
		}, 1},
		{"rollback", func() error { return a.RollbackCandidate("test") }, 0},
		{"stage again", func() error {
			_, err := a.StageCandidate(admin.CandidateSpec{Document: admin.Document{Name: "c.yaml", Data: lifecycleConfig(t, addrs, "# c3\n")}, Percent: 50})
			return err
		}, 1},
		{"promote", func() error { _, err := a.PromoteCandidate(); return err }, 0},
	}
	last := before
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := compile.Builds() - last; got != s.want {
			t.Errorf("%s compiled %d times, want %d", s.name, got, s.want)
		}
		last = compile.Builds()
	}
}

// State that outlives snapshots has one retention rule: it is kept while a
// snapshot holds it and forgotten with the last one (retry budgets were
// never pruned before the registry).
func TestRegistryRetention(t *testing.T) {
	addrs := []string{"127.0.0.1:1", "127.0.0.1:2"}
	a := newLifecycleApp(t, lifecycleConfig(t, addrs, ""))
	keys := a.registry.Keys()
	budget := ""
	for _, k := range keys {
		if strings.HasPrefix(k, "budget|") {
			budget = k
		}
	}
	if budget == "" || !slices.Contains(keys, "upstream|users") || !slices.Contains(keys, "target|users|127.0.0.1:1|1|") {
		t.Fatalf("registry after start: %v", keys)
	}
	// A candidate with other budget settings holds its own budget while
	// staged; the rollback forgets it and keeps the active one's.
	cand := strings.Replace(string(lifecycleConfig(t, addrs, "")), "percent: 20", "percent: 30", 1)
	if _, err := a.StageCandidate(admin.CandidateSpec{Document: admin.Document{Name: "c.yaml", Data: []byte(cand)}, Percent: 10}); err != nil {
		t.Fatal(err)
	}
	if n := countPrefix(a.registry.Keys(), "budget|"); n != 2 {
		t.Fatalf("%d budgets while a candidate is staged, want 2", n)
	}
	if a.registry.Refs("upstream|users") != 2 {
		t.Fatalf("the candidate does not share the upstream state: %d refs", a.registry.Refs("upstream|users"))
	}
	if err := a.RollbackCandidate("test"); err != nil {
		t.Fatal(err)
	}
	if got := a.registry.Keys(); !slices.Equal(got, keys) {
		t.Fatalf("after rollback %v, want %v", got, keys)
	}
	// A reload that changes the budget and drops a target forgets both.
	if _, err := a.ApplyConfig(admin.Document{Name: "api.yaml", Data: []byte(strings.Replace(string(lifecycleConfig(t, addrs[:1], "")), "percent: 20", "percent: 40", 1))}); err != nil {
		t.Fatal(err)
	}
	got := a.registry.Keys()
	if slices.Contains(got, budget) || slices.Contains(got, "target|users|127.0.0.1:2|1|") || countPrefix(got, "budget|") != 1 {
		t.Fatalf("after reload %v", got)
	}
	for _, k := range got {
		if a.registry.Refs(k) < 1 {
			t.Fatalf("%s held with %d refs", k, a.registry.Refs(k))
		}
	}
}

func countPrefix(keys []string, p string) int {
	n := 0
	for _, k := range keys {
		if strings.HasPrefix(k, p) {
			n++
		}
	}
	return n
}

// A staged candidate follows health changes made after it was staged: an
// ejection found by the active config's traffic reaches the candidate's
// balancer, with no recompile.
func TestStagedCandidateFollowsHealth(t *testing.T) {
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "good") }))
	defer good.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	defer bad.Close()
	addrs := []string{good.Listener.Addr().String(), bad.Listener.Addr().String()}
	a := newLifecycleApp(t, lifecycleConfig(t, addrs, ""))
	if _, err := a.StageCandidate(admin.CandidateSpec{Document: admin.Document{Name: "c.yaml", Data: lifecycleConfig(t, addrs, "# candidate\n")}, Percent: 50}); err != nil {
		t.Fatal(err)
	}
	cand := a.cand.snap.Upstreams["users"]
	cand.Pick(nil) // the candidate's balancer exists before the change
	// The active config's traffic finds the failing target.
	a.store.Load().Upstreams["users"].Report(addrs[1], outlier.ServerError)
	for range 20 {
		if tg := cand.Pick(nil); tg == nil || tg.Addr != addrs[0] {
			t.Fatalf("the candidate picked %v after the ejection", tg)
		}
	}
}

// Every config application records its time by result in
// rampart_config_last_reload_timestamp_seconds, beside the reload counter.
func TestLastReloadTimestamp(t *testing.T) {
	addrs := []string{"127.0.0.1:1"}
	a := newLifecycleApp(t, lifecycleConfig(t, addrs, ""))
	last := func(result string) float64 {
		return testutil.ToFloat64(a.metrics.Events.LastReload.WithLabelValues(result))
	}
	start := float64(time.Now().Add(-time.Second).Unix())
	if ok := last("ok"); ok < start {
		t.Fatalf("start-up application at %v, want after %v", ok, start)
	}
	if e := last("error"); e != 0 {
		t.Fatalf("error time %v before any refused config", e)
	}
	before := last("ok")
	time.Sleep(20 * time.Millisecond)
	if _, err := a.ApplyConfig(admin.Document{Name: "api.yaml", Data: lifecycleConfig(t, addrs, "# v2\n")}); err != nil {
		t.Fatal(err)
	}
	if ok := last("ok"); ok <= before {
		t.Fatalf("ok time %v not after %v", ok, before)
	}
	okCount := testutil.ToFloat64(a.metrics.ConfigReloads.WithLabelValues("ok"))
	if _, err := a.ApplyConfig(admin.Document{Name: "api.yaml", Data: lifecycleConfig(t, addrs, "  - {name: bad, match: {path: {prefix: /x}}, upstream: nope}\n")}); err == nil {
		t.Fatal("a config naming an unknown upstream was applied")
	}
	if e := last("error"); e < start {
		t.Fatalf("error time %v after a refused config", e)
	}
	if n := testutil.ToFloat64(a.metrics.ConfigReloads.WithLabelValues("ok")); n != okCount {
		t.Fatalf("ok reloads %v → %v on a refused config", okCount, n)
	}
}
