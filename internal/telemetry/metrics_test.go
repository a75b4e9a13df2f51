package telemetry

import (
	"strconv"
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

func TestCount(t *testing.T) {
	m := NewMetrics()
	rm := m.Route("r")
	pairs := []struct {
		method string
		code   int
		n      int
	}{
		{"GET", 200, 3},      // common pair
		{"POST", 503, 2},     // common pair
		{"PROPFIND", 207, 2}, // neither
		{"GET", 218, 1},      // common method, other code
	}
	for _, p := range pairs {
		for range p.n {
			rm.Count(p.method, p.code)
		}
	}
	for _, p := range pairs {
		c := m.Requests.WithLabelValues("r", p.method, strconv.Itoa(p.code))
		if got := testutil.ToFloat64(c); got != float64(p.n) {
			t.Errorf("%s %d: %v, want %d", p.method, p.code, got, p.n)
		}
	}
	for i, m := range commonMethods {
		if methodIndex(m) != i {
			t.Errorf("methodIndex(%q) = %d, want %d", m, methodIndex(m), i)
		}
	}
	for i, c := range commonCodes {
		if codeIndex(c) != i {
			t.Errorf("codeIndex(%d) = %d, want %d", c, codeIndex(c), i)
		}
	}
}

// BenchmarkCount is the per-request counter increment of a route.
func BenchmarkCount(b *testing.B) {
	rm := NewMetrics().Route("r")
	b.ReportAllocs()
	for b.Loop() {
		rm.Count("GET", 200)
	}
}
