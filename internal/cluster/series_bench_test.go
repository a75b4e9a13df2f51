package cluster

import (
	"testing"

	"github.com/rampart-gw/rampart/internal/cluster/balancer"
	"github.com/rampart-gw/rampart/internal/telemetry"
)

// BenchmarkUpstreamSeries is an attempt's upstream metrics: the duration
// observation and the request count, through the per-target cache and
// through label lookups as before.
func BenchmarkUpstreamSeries(b *testing.B) {
	m := telemetry.NewMetrics()
	up := &Upstream{Name: "backend"}
	target := &balancer.Target{Addr: "10.0.0.1:8080"}
	b.Run("cached", func(b *testing.B) {
		cs := up.caller()
		b.ReportAllocs()
		for b.Loop() {
			ts := cs.targetSeries(m, up.Name, target)
			ts.duration.Observe(0.001)
			ts.count(200, "")
		}
	})
	b.Run("labels", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m.UpstreamDuration.WithLabelValues(up.Name).Observe(0.001)
			m.UpstreamRequests.WithLabelValues(up.Name, target.Addr, m.Code(200)).Inc()
		}
	})
}
