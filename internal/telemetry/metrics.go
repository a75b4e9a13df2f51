// Package telemetry owns the gateway's Prometheus metrics and its JSON access
// log. Metrics live outside config snapshots so counters survive reloads.
package telemetry

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds every metric CONTRACT.md names. Create one with NewMetrics.
type Metrics struct {
	Registry *prometheus.Registry

	Requests           *prometheus.CounterVec   // route, method, code
	Duration           *prometheus.HistogramVec // route
	RequestSize        *prometheus.HistogramVec // route
	ResponseSize       *prometheus.HistogramVec // route
	UpstreamRequests   *prometheus.CounterVec   // upstream, target, code
	UpstreamDuration   *prometheus.HistogramVec // upstream
	TargetHealthy      *prometheus.GaugeVec     // upstream, target
	CircuitOpen        *prometheus.GaugeVec     // upstream
	DiscoveryTargets   *prometheus.GaugeVec     // upstream
	DiscoveryLookups   *prometheus.CounterVec   // upstream, type, result
	Retries            *prometheus.CounterVec   // route, upstream
	RateLimitDecisions *prometheus.CounterVec   // policy, decision
	RateLimitStoreErrs *prometheus.CounterVec   // policy, reason
	RateLimitStoreTime *prometheus.HistogramVec // policy
	RedisUp            prometheus.Gauge
	ConcInFlight       *prometheus.GaugeVec   // policy
	ConcQueued         *prometheus.GaugeVec   // policy
	ConcLimit          *prometheus.GaugeVec   // policy
	WAFBlocked         *prometheus.CounterVec // route
	WAFDetected        *prometheus.CounterVec // route
	WAFBuilds          prometheus.Counter
	ConfigReloads      *prometheus.CounterVec // result
	ActiveConnections  *prometheus.GaugeVec   // listener
	RejectedConns      *prometheus.CounterVec // listener
	TLSHandshakeErrors *prometheus.CounterVec // listener, reason
	Refused            *prometheus.CounterVec // listener, code, reason
	ConfigInfo         *prometheus.GaugeVec   // version
	JWTVerifications   *prometheus.CounterVec // policy, result
	JWKSReads          *prometheus.CounterVec // jwks, result
	SanitizeFindings   *prometheus.CounterVec // policy, check, action
	// AggregateBackend and AggregateDuration are the calls of aggregate
	// routes' backends (issue 18).
	AggregateBackend  *prometheus.CounterVec   // route, upstream, outcome
	AggregateDuration *prometheus.HistogramVec // route, upstream
	Mirror            MirrorMetrics
	Events            EventMetrics
	GRPCResponses     *prometheus.CounterVec // route, grpc_code
	// AccessLogDropped counts access log lines dropped because the
	// writer fell behind (the log's buffer was full).
	AccessLogDropped prometheus.Counter

	// collectors are the gateway's own collectors, registered through
	// MustRegister, for Describe.
	collectorsMu sync.Mutex
	collectors   []prometheus.Collector

	// codes caches status code label strings.
	codes sync.Map
	// routes holds every route name that has series, for RetainRoutes.
	routes sync.Map
}

var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// storeBuckets cover one Redis round trip: 50µs to the 50ms default timeout and beyond.
var storeBuckets = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25}
var sizeBuckets = prometheus.ExponentialBuckets(64, 4, 10) // 64 B .. 16 MiB

// NewMetrics creates and registers all metrics on a new registry, together
// with the Go runtime and process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	m.Requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rampart_http_requests_total", Help: "Client requests handled, by route, method and status code.",
	}, []string{"route", "method", "code"})
	m.Duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "rampart_http_request_duration_seconds", Help: "Time from request start to the end of the response, by route.",
		Buckets: latencyBuckets,
	}, []string{"route"})
	m.RequestSize = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "rampart_http_request_size_bytes", Help: "Request body bytes read from the client (chunked bodies included), by route.",
		Buckets: sizeBuckets,
	}, []string{"route"})
	m.ResponseSize = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "rampart_http_response_size_bytes", Help: "Response body bytes written, by route.",
		Buckets: sizeBuckets,
	}, []string{"route"})
	m.UpstreamRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rampart_upstream_requests_total", Help: "Requests sent to upstream targets, by upstream, target and status code (or error kind).",
	}, []string{"upstream", "target", "code"})
	m.UpstreamDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "rampart_upstream_request_duration_seconds", Help: "Time to upstream response headers, by upstream.",
		Buckets: latencyBuckets,
	}, []string{"upstream"})
	m.TargetHealthy = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "rampart_upstream_target_healthy", Help: "1 when the target is considered healthy.",
	}, []string{"upstream", "target"})
	m.CircuitOpen = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "rampart_upstream_circuit_open", Help: "1 while the upstream's circuit is open or half-open (circuit_breaker.trip) or a circuit breaker limit is saturated.",
	}, []string{"upstream"})
	m.DiscoveryTargets = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "rampart_discovery_targets", Help: "Targets that discovery (dns, srv, etcd) found for the upstream at its last success.",
	}, []string{"upstream"})
	m.DiscoveryLookups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rampart_discovery_lookups_total", Help: "Discovery lookups (dns, srv) and etcd watch answers, by result (ok, error).",
	}, []string{"upstream", "type", "result"})
	m.Retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rampart_retries_total", Help: "Upstream retries, by route and upstream.",
	}, []string{"route", "upstream"})
	m.RateLimitDecisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rampart_rate_limit_decisions_total", Help: "Rate limit decisions, by policy and decision.",
	}, []string{"policy", "decision"})
	m.RateLimitStoreErrs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rampart_rate_limit_store_errors_total", Help: "Rate limit decisions the shared store (Redis) did not make, so on_failure decided, by policy and reason (timeout, down or error).",
	}, []string{"policy", "reason"})
	m.RateLimitStoreTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "rampart_rate_limit_store_duration_seconds", Help: "Time of rate limit decisions made in the shared store (Redis), by policy.",
		Buckets: storeBuckets,
	}, []string{"policy"})
	m.RedisUp = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "rampart_redis_up", Help: "1 while the cluster.redis store answers; 0 while rate limits use on_failure.",
	})
	m.ConcInFlight = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "rampart_concurrency_in_flight", Help: "Requests running under a concurrency_limit policy.",
	}, []string{"policy"})
	m.ConcQueued = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "rampart_concurrency_queued", Help: "Requests waiting for a slot of a concurrency_limit policy (all priority classes).",
	}, []string{"policy"})
	m.ConcLimit = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "rampart_concurrency_limit", Help: "The in-flight limit of a concurrency_limit policy: max_in_flight, or what the adaptive mode found.",
	}, []string{"policy"})
	m.WAFBlocked = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rampart_waf_blocked_total", Help: "Requests blocked by the WAF, by route.",
	}, []string{"route"})
	m.WAFDetected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rampart_waf_detected_total", Help: "Requests a waf policy in detect mode would have blocked (and forwarded), by route.",
	}, []string{"route"})
	m.WAFBuilds = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "rampart_waf_rule_sets_built_total", Help: "Rule sets (the CRS with a waf policy's settings) built by config loads; a reload that leaves a waf policy's settings unchanged reuses its rule set and adds nothing.",
	})
	m.ConfigReloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rampart_config_reloads_total", Help: "Config applications, by result (ok or error).",
	}, []string{"result"})
	m.ActiveConnections = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "rampart_active_connections", Help: "Open client connections, by listener.",
	}, []string{"listener"})
	m.RejectedConns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rampart_rejected_connections_total", Help: "Client connections closed at accept because the listener was at max_connections or the client IP at max_connections_per_ip.",
	}, []string{"listener"})
	m.TLSHandshakeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rampart_tls_handshake_errors_total", Help: "TLS handshakes that failed, by listener and reason (timeout, closed, not_tls, version, cipher, client_certificate, client_alert, other).",
	}, []string{"listener", "reason"})
	m.Refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rampart_http_refused_total", Help: "Requests the HTTP/1.1 framing guard answered itself (malformed or ambiguous framing, limits), by listener, status code and error code.",
	}, []string{"listener", "code", "reason"})
	m.ConfigInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "rampart_config_info", Help: "1 for the active config version.",
	}, []string{"version"})
	m.JWTVerifications = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rampart_jwt_verifications_total", Help: "Token checks of jwt policies, by policy and result (ok, cached, or why the token was refused).",
	}, []string{"policy", "result"})
	m.JWKSReads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rampart_jwks_reads_total", Help: "Reads of JWKS key sets (URL or file), by key set and result (ok, unchanged, error).",
	}, []string{"jwks", "result"})
	m.SanitizeFindings = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rampart_sanitize_findings_total", Help: "Findings of sanitize policies, by policy, check (sqli, xss, utf8, nul, too_long, json, json_depth, body_too_large) and action (blocked, detected).",
	}, []string{"policy", "check", "action"})
	m.GRPCResponses = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rampart_grpc_responses_total", Help: "gRPC calls answered, by route and gRPC status code name (OK, UNAVAILABLE, ...): the upstream's grpc-status or the gateway's own.",
	}, []string{"route", "grpc_code"})
	m.MustRegister(m.GRPCResponses)
	m.MustRegister(m.Requests, m.Duration, m.RequestSize, m.ResponseSize,
		m.UpstreamRequests, m.UpstreamDuration, m.TargetHealthy, m.CircuitOpen, m.DiscoveryTargets, m.DiscoveryLookups, m.Retries,
		m.RateLimitDecisions, m.RateLimitStoreErrs, m.RateLimitStoreTime, m.RedisUp, m.ConcInFlight, m.ConcQueued, m.ConcLimit,
		m.WAFBlocked, m.WAFDetected, m.WAFBuilds, m.ConfigReloads, m.ActiveConnections, m.RejectedConns, m.TLSHandshakeErrors, m.Refused,
		m.ConfigInfo, m.JWTVerifications, m.JWKSReads, m.SanitizeFindings)
	m.AggregateBackend = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rampart_aggregate_backend_requests_total", Help: "Backend calls of aggregate routes, by route, upstream and outcome (ok, error, status, timeout, invalid_json, too_large, circuit_open, no_healthy_upstream, canceled, skipped).",
	}, []string{"route", "upstream", "outcome"})
	m.AggregateDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "rampart_aggregate_backend_duration_seconds", Help: "Time of backend calls of aggregate routes, body read included, by route and upstream.",
		Buckets: latencyBuckets,
	}, []string{"route", "upstream"})
	m.MustRegister(m.AggregateBackend, m.AggregateDuration)
	m.AccessLogDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "rampart_access_log_dropped_total", Help: "Access log lines dropped because the log's writer fell behind (its buffer of lines was full); requests never wait for the log.",
	})
	m.MustRegister(m.AccessLogDropped)
	m.Mirror = newMirrorMetrics(m)
	m.Events = newEventMetrics(m)
	m.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.ConfigReloads.WithLabelValues("ok")
	m.ConfigReloads.WithLabelValues("error")
	return m
}

// MustRegister registers the gateway's own collectors (every rampart_
// metric) on the registry and remembers them for Describe. Register every
// gateway metric through it, never on Registry directly: docs/operations.md
// lists what Describe reports, and a test holds the two equal.
func (m *Metrics) MustRegister(cs ...prometheus.Collector) {
	m.Registry.MustRegister(cs...)
	m.collectorsMu.Lock()
	m.collectors = append(m.collectors, cs...)
	m.collectorsMu.Unlock()
}

// Describe sends the descriptor of every gateway metric registered through
// MustRegister, whether or not it has series yet (a vector without series
// is absent from a scrape).
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.collectorsMu.Lock()
	cs := append([]prometheus.Collector(nil), m.collectors...)
	m.collectorsMu.Unlock()
	for _, c := range cs {
		c.Describe(ch)
	}
}

// Code returns the label value for an HTTP status code without allocating
// after the first use of each code.
func (m *Metrics) Code(status int) string {
	if v, ok := m.codes.Load(status); ok {
		return v.(string)
	}
	s := strconv.Itoa(status)
	m.codes.Store(status, s)
	return s
}

// RouteMetrics are the per-route series, resolved once per route and config
// so the request path does no label hashing for them.
type RouteMetrics struct {
	Duration     prometheus.Observer
	RequestSize  prometheus.Observer
	ResponseSize prometheus.Observer
	requests     *prometheus.CounterVec
	route        string
	// common holds the counters of the common method and status pairs,
	// made on the route's first request and filled on first use: an
	// index and an atomic load instead of a hashed sync.Map lookup.
	common atomic.Pointer[commonCounters]
	byKey  sync.Map // methodCode -> prometheus.Counter, for the other pairs
	grpc   *prometheus.CounterVec
	codes  [17]atomic.Pointer[counter] // gRPC codes 0..16, made on first use
}

// CountGRPC increments the gRPC responses counter for a status code given
// as its decimal text ("14"); anything else is not counted.
func (rm *RouteMetrics) CountGRPC(code string) {
	n, err := strconv.Atoi(code)
	if err != nil || n < 0 || n >= len(rm.codes) || rm.grpc == nil {
		return
	}
	c := rm.codes[n].Load()
	if c == nil {
		c = &counter{rm.grpc.WithLabelValues(rm.route, grpcNames[n])}
		rm.codes[n].Store(c)
	}
	c.Inc()
}

// grpcNames are the canonical names of the gRPC status codes 0..16.
var grpcNames = [...]string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
	"UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}

type commonCounters [len(commonMethods)][len(commonCodes)]atomic.Pointer[counter]

// counter boxes a prometheus.Counter for an atomic.Pointer.
type counter struct{ prometheus.Counter }

var (
	commonMethods = [...]string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}
	commonCodes   = [...]int{200, 201, 204, 206, 301, 302, 304, 400, 401, 403, 404, 405, 413, 429, 499, 500, 502, 503, 504}
)

func methodIndex(m string) int {
	switch m {
	case "GET":
		return 0
	case "HEAD":
		return 1
	case "POST":
		return 2
	case "PUT":
		return 3
	case "DELETE":
		return 4
	case "PATCH":
		return 5
	case "OPTIONS":
		return 6
	}
	return -1
}

func codeIndex(c int) int {
	switch c {
	case 200:
		return 0
	case 201:
		return 1
	case 204:
		return 2
	case 206:
		return 3
	case 301:
		return 4
	case 302:
		return 5
	case 304:
		return 6
	case 400:
		return 7
	case 401:
		return 8
	case 403:
		return 9
	case 404:
		return 10
	case 405:
		return 11
	case 413:
		return 12
	case 429:
		return 13
	case 499:
		return 14
	case 500:
		return 15
	case 502:
		return 16
	case 503:
		return 17
	case 504:
		return 18
	}
	return -1
}

// Route returns the per-route series for name.
func (m *Metrics) Route(name string) *RouteMetrics {
	m.routes.Store(name, struct{}{})
	return &RouteMetrics{
		Duration:     m.Duration.WithLabelValues(name),
		RequestSize:  m.RequestSize.WithLabelValues(name),
		ResponseSize: m.ResponseSize.WithLabelValues(name),
		requests:     m.Requests,
		grpc:         m.GRPCResponses,
		route:        name,
	}
}

type methodCode struct {
	method string
	code   int
}

// Count increments the request counter for method and status.
func (rm *RouteMetrics) Count(method string, status int) {
	if mi, ci := methodIndex(method), codeIndex(status); mi >= 0 && ci >= 0 {
		t := rm.common.Load()
		if t == nil {
			rm.common.CompareAndSwap(nil, new(commonCounters))
			t = rm.common.Load()
		}
		slot := &t[mi][ci]
		c := slot.Load()
		if c == nil {
			// Racing first uses get the same counter from the vector.
			c = &counter{rm.requests.WithLabelValues(rm.route, method, strconv.Itoa(status))}
			slot.Store(c)
		}
		c.Inc()
		return
	}
	k := methodCode{method, status}
	if c, ok := rm.byKey.Load(k); ok {
		c.(prometheus.Counter).Inc()
		return
	}
	c := rm.requests.WithLabelValues(rm.route, method, strconv.Itoa(status))
	rm.byKey.Store(k, c)
	c.Inc()
}

// RetainRoutes deletes the series of every route not in keep (requests that
// matched no route, route "", are always kept), so that routes removed by a
// reload do not stay in /metrics forever.
func (m *Metrics) RetainRoutes(keep map[string]bool) {
	m.routes.Range(func(k, _ any) bool {
		name := k.(string)
		if name == "" || keep[name] {
			return true
		}
		m.routes.Delete(name)
		l := prometheus.Labels{"route": name}
		m.Requests.DeletePartialMatch(l)
		m.Duration.DeletePartialMatch(l)
		m.RequestSize.DeletePartialMatch(l)
		m.ResponseSize.DeletePartialMatch(l)
		m.Retries.DeletePartialMatch(l)
		m.WAFBlocked.DeletePartialMatch(l)
		m.AggregateBackend.DeletePartialMatch(l)
		m.AggregateDuration.DeletePartialMatch(l)
		m.Mirror.Requests.DeletePartialMatch(l)
		m.Mirror.Responses.DeletePartialMatch(l)
		m.WAFDetected.DeletePartialMatch(l)
		m.GRPCResponses.DeletePartialMatch(l)
		return true
	})
}
