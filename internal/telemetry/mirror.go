package telemetry

import "github.com/prometheus/client_golang/prometheus"

// MirrorMetrics are the series of request mirroring (routes[].mirror).
type MirrorMetrics struct {
	// Requests counts the requests chosen for mirroring (percent), by
	// route, shadow upstream and result: sent (the shadow answered),
	// error (it did not: no target, connect failure, timeout, reset),
	// dropped_in_flight (max_in_flight copies were being sent) or
	// dropped_body (the body was over max_body_bytes, or was not read to
	// its end).
	Requests *prometheus.CounterVec
	// Responses counts the shadow's answers by status code.
	Responses *prometheus.CounterVec
}

// Mirror results, the values of the result label.
const (
	MirrorSent            = "sent"
	MirrorError           = "error"
	MirrorDroppedInFlight = "dropped_in_flight"
	MirrorDroppedBody     = "dropped_body"
)

func newMirrorMetrics(m *Metrics) MirrorMetrics {
	mm := MirrorMetrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rampart_mirror_requests_total", Help: "Requests chosen for mirroring to a shadow upstream, by route, upstream and result (sent, error, dropped_in_flight, dropped_body).",
		}, []string{"route", "upstream", "result"}),
		Responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rampart_mirror_responses_total", Help: "Answers of shadow upstreams to mirrored requests, by route, upstream and status code (the answers are discarded).",
		}, []string{"route", "upstream", "code"}),
	}
	m.MustRegister(mm.Requests, mm.Responses)
	return mm
}
