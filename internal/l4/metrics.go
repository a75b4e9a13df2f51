package l4

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampart-gw/rampart/internal/telemetry"
)

// Results of a client connection, the result label of
// rampart_tcp_connections_total.
const (
	// ResultOK: a target was connected and the bytes were relayed.
	ResultOK = "ok"
	// ResultNoTarget: the upstream had no target to try (or the listener's
	// upstream is missing from the active config).
	ResultNoTarget = "no_target"
	// ResultConnectFailed: every target tried refused or timed out, or the
	// upstream's circuit_breaker.max_connections was reached.
	ResultConnectFailed = "connect_failed"
	// ResultProxyHeader: a trusted peer sent no valid PROXY protocol
	// header within read_header_timeout.
	ResultProxyHeader = "proxy_header"
	// ResultTLSHandshake: the TLS handshake failed or timed out.
	ResultTLSHandshake = "tls_handshake"
	// ResultNoRoute: the client's SNI name matched no sni_routes entry
	// and the listener has no default upstream.
	ResultNoRoute = "no_route"
)

// Metrics are the L4 proxy's metrics, shared by every tcp listener and
// kept across reloads.
type Metrics struct {
	// Connections counts client connections when they end: listener,
	// upstream, result.
	Connections *prometheus.CounterVec
	// Active is the number of relayed connections open: listener,
	// upstream.
	Active *prometheus.GaugeVec
	// Received counts bytes read from clients and sent to targets;
	// Sent, bytes read from targets and sent to clients: listener,
	// upstream.
	Received, Sent *prometheus.CounterVec
	// ConnectFailures counts failed connects to a target (each one of a
	// fail-over): upstream, target.
	ConnectFailures *prometheus.CounterVec
}

// NewMetrics makes the L4 metrics and registers them on m (nil: they are
// made but not registered).
func NewMetrics(m *telemetry.Metrics) *Metrics {
	x := &Metrics{
		Connections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rampart_tcp_connections_total", Help: "Client connections of tcp listeners, counted when they end, by listener, upstream and result.",
		}, []string{"listener", "upstream", "result"}),
		Active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rampart_tcp_active_connections", Help: "Relayed connections of tcp listeners open now, by listener and upstream.",
		}, []string{"listener", "upstream"}),
		Received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rampart_tcp_received_bytes_total", Help: "Bytes read from clients of tcp listeners and relayed to targets, by listener and upstream.",
		}, []string{"listener", "upstream"}),
		Sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rampart_tcp_sent_bytes_total", Help: "Bytes read from targets and relayed to clients of tcp listeners, by listener and upstream.",
		}, []string{"listener", "upstream"}),
		ConnectFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rampart_tcp_connect_failures_total", Help: "Failed connects of tcp listeners to upstream targets, by upstream and target.",
		}, []string{"upstream", "target"}),
	}
	if m != nil {
		m.MustRegister(x.Connections, x.Active, x.Received, x.Sent, x.ConnectFailures)
	}
	return x
}
