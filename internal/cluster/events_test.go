package cluster

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rampart-gw/rampart/internal/cluster/outlier"
	"github.com/rampart-gw/rampart/internal/registry"
	"github.com/rampart-gw/rampart/internal/telemetry"
)

// An outlier ejection counts in rampart_outlier_ejections_total for its
// target, once per ejection, and the target's healthy gauge reads 0.
func TestOutlierEjectionCounted(t *testing.T) {
	reg := registry.New()
	defer reg.Close()
	m := telemetry.NewMetrics()
	claims := &registry.Claims{}
	u, err := Build("users", upstreamCfg("127.0.0.1:1", "127.0.0.1:2"), BuildOptions{Metrics: m}, claims)
	if err != nil {
		t.Fatal(err)
	}
	claims.Acquire(reg)
	defer claims.Release()
	u.Activate()
	ej := m.Events.OutlierEjections
	if n := testutil.ToFloat64(ej.WithLabelValues("users", "127.0.0.1:2")); n != 0 {
		t.Fatalf("%v ejections before any failure", n)
	}
	u.Report("127.0.0.1:2", outlier.ServerError) // ejects: threshold 1
	u.Report("127.0.0.1:2", outlier.ServerError) // already ejected: not again
	if n := testutil.ToFloat64(ej.WithLabelValues("users", "127.0.0.1:2")); n != 1 {
		t.Fatalf("%v ejections counted, want 1", n)
	}
	if n := testutil.ToFloat64(ej.WithLabelValues("users", "127.0.0.1:1")); n != 0 {
		t.Fatalf("the healthy target counted %v ejections", n)
	}
	if v := testutil.ToFloat64(m.TargetHealthy.WithLabelValues("users", "127.0.0.1:2")); v != 0 {
		t.Fatalf("ejected target's healthy gauge %v", v)
	}
}
