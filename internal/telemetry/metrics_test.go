package telemetry

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRetainRoutes(t *testing.T) {
	m := NewMetrics()
	for _, name := range []string{"", "a", "b"} {
		rm := m.Route(name)
		rm.Count("GET", 200)
		rm.Duration.Observe(0.1)
	}
	m.RetainRoutes(map[string]bool{"a": true})
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for _, f := range fams {
		if f.GetName() != "rampart_http_requests_total" {
			continue
		}
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "route" {
					routes = append(routes, l.GetValue())
				}
			}
		}
	}
	if got := strings.Join(routes, ","); got != ",a" {
		t.Fatalf("request series for routes %q, want \"\" and a", got)
	}
	if got := testutil.CollectAndCount(m.Duration); got != 2 {
		t.Fatalf("duration series %d, want 2", got)
	}
}
