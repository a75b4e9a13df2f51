package telemetry

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// EventMetrics count what happens now and then rather than per request:
// outlier ejections and config reloads' times.
type EventMetrics struct {
	// OutlierEjections counts targets ejected by outlier detection, by
	// upstream and target. An ejected target also reads 0 in
	// rampart_upstream_target_healthy; this tells the two causes apart.
	OutlierEjections *prometheus.CounterVec // upstream, target
	// LastReload is the Unix time of the last config application, by
	// result (ok, error).
	LastReload *prometheus.GaugeVec // result
}

func newEventMetrics(m *Metrics) EventMetrics {
	e := EventMetrics{
		OutlierEjections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rampart_outlier_ejections_total", Help: "Targets ejected by outlier detection, by upstream and target.",
		}, []string{"upstream", "target"}),
		LastReload: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rampart_config_last_reload_timestamp_seconds", Help: "Unix time of the last config application, by result (ok or error).",
		}, []string{"result"}),
	}
	m.MustRegister(e.OutlierEjections, e.LastReload)
	return e
}

// Reloaded counts a config application with its result ("ok" or
// "error") and records its time.
func (m *Metrics) Reloaded(result string) {
	m.ConfigReloads.WithLabelValues(result).Inc()
	m.Events.LastReload.WithLabelValues(result).Set(float64(time.Now().UnixNano()) / 1e9)
}
