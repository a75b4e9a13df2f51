// Package config holds Rampart's inert configuration types and turns a YAML or
// JSON document into them. Parse decodes strictly (unknown keys and wrong types
// are errors) and remembers the position of every value, so that Validate and
// later stages can report problems as FILE:LINE:COL. Nothing here performs
// network I/O and nothing is mutated after Validate: runtime structures are
// derived in package compile.
package config

import "go.yaml.in/yaml/v3"

// Config is the whole gateway configuration. The zero value is not useful;
// call Parse (which applies defaults) or Default.
type Config struct {
	// Listeners are the sockets the data plane accepts clients on.
	Listeners []Listener `yaml:"listeners" json:"listeners"`
	// Admin is the admin API listener (health, metrics, config).
	Admin Admin `yaml:"admin" json:"admin"`
	// DrainTimeout bounds how long in-flight requests may run after SIGTERM.
	// Default 30s (DefaultDrainTimeout); 0 also means the default.
	DrainTimeout Duration `yaml:"drain_timeout" json:"drain_timeout"`
	// Upstreams are the named groups of targets routes forward to.
	Upstreams map[string]*Upstream `yaml:"upstreams" json:"upstreams"`
	// Routes are matched against each request; see docs/configuration.md for
	// the precedence rules.
	Routes []Route `yaml:"routes" json:"routes"`
	// Policies are named, typed request policies that routes reference.
	Policies map[string]*Policy `yaml:"policies" json:"policies,omitempty"`
	// Consumers are the known API clients (API keys, roles).
	Consumers []Consumer `yaml:"consumers" json:"consumers,omitempty"`
	// Cluster holds settings shared by gateway instances (Redis).
	Cluster Cluster `yaml:"cluster" json:"cluster,omitempty"`
	// Observability configures access logs, request IDs and tracing.
	Observability Observability `yaml:"observability" json:"observability"`

	// file is the name used in error positions; pos maps a value's path
	// (for example "routes[2].upstream") to where it stood in the document.
	// bad holds the paths whose values failed to decode, so that Validate
	// does not report consequences of a problem Parse already reported.
	file string
	pos  map[string]Pos
	bad  map[string]bool
}

// Listener is one accepting socket.
type Listener struct {
	Name    string `yaml:"name" json:"name"`
	Address string `yaml:"address" json:"address"`
	// Protocol is http (HTTP/1.1 and h2c; h2 via ALPN with tls) or tcp.
	// Default http.
	Protocol string       `yaml:"protocol" json:"protocol"`
	TLS      *ListenerTLS `yaml:"tls" json:"tls,omitempty"`
	Limits   Limits       `yaml:"limits" json:"limits"`
	// Upstream is the target group of a tcp listener.
	Upstream string `yaml:"upstream" json:"upstream,omitempty"`
}

// ListenerTLS terminates TLS on a listener.
type ListenerTLS struct {
	Certificates []Certificate `yaml:"certificates" json:"certificates"`
	// MinVersion is "1.2" or "1.3". Default "1.2".
	MinVersion string     `yaml:"min_version" json:"min_version,omitempty"`
	ClientAuth ClientAuth `yaml:"client_auth" json:"client_auth,omitempty"`
}

// Certificate is a PEM certificate chain and its key.
type Certificate struct {
	CertFile string `yaml:"cert_file" json:"cert_file"`
	KeyFile  string `yaml:"key_file" json:"key_file"`
}

// ClientAuth configures mTLS. Mode is none (default), request or require.
type ClientAuth struct {
	Mode   string `yaml:"mode" json:"mode,omitempty"`
	CAFile string `yaml:"ca_file" json:"ca_file,omitempty"`
}

// Limits protect a listener from oversized or slow clients.
type Limits struct {
	// MaxHeaderBytes bounds the request line plus headers; larger -> 431.
	// Default 61440 (60 KiB).
	MaxHeaderBytes int `yaml:"max_header_bytes" json:"max_header_bytes"`
	// MaxBodyBytes bounds a request body; larger -> 413. Default 10 MiB;
	// -1 disables the limit.
	MaxBodyBytes int64 `yaml:"max_body_bytes" json:"max_body_bytes"`
	// ReadHeaderTimeout cuts off clients that send headers slowly. Default 10s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout" json:"read_header_timeout"`
	// IdleTimeout closes idle keep-alive connections. Default 60s.
	IdleTimeout Duration `yaml:"idle_timeout" json:"idle_timeout"`
	// MaxConnections caps open client connections; extra ones are closed at
	// once. Default 100000.
	MaxConnections int `yaml:"max_connections" json:"max_connections"`
	// MaxConnectionsPerIP caps open client connections from one IP address;
	// extra ones are closed at once. Default 1024; 0 = no per-IP cap.
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip" json:"max_connections_per_ip"`
	// MaxHeaders bounds the number of request header fields; more -> 431.
	// Default 100.
	MaxHeaders int `yaml:"max_headers" json:"max_headers"`
	// MaxURIBytes bounds the request target; longer -> 414. Default 8192.
	MaxURIBytes int `yaml:"max_uri_bytes" json:"max_uri_bytes"`
	// MaxRequestsPerConnection is how many requests one HTTP/1.1
	// keep-alive connection serves before the response carries
	// Connection: close. Default 1000; 0 = unlimited.
	MaxRequestsPerConnection int `yaml:"max_requests_per_connection" json:"max_requests_per_connection"`
	// MaxConcurrentStreams bounds concurrent HTTP/2 streams per connection.
	// Default 100.
	MaxConcurrentStreams int `yaml:"max_concurrent_streams" json:"max_concurrent_streams"`
}

// Admin is the admin API listener.
type Admin struct {
	// Address defaults to 127.0.0.1:9901; "off" disables the admin API.
	Address   string `yaml:"address" json:"address"`
	TokenFile string `yaml:"token_file" json:"token_file,omitempty"`
}

// Upstream is a named group of targets with its balancing and connection
// settings.
type Upstream struct {
	Targets   []Target   `yaml:"targets" json:"targets,omitempty"`
	Discovery *Discovery `yaml:"discovery" json:"discovery,omitempty"`
	// Balancer picks a target per request. Default round_robin.
	Balancer string `yaml:"balancer" json:"balancer"`
	HashKey  string `yaml:"hash_key" json:"hash_key,omitempty"`
	// BoundedLoad, for ring_hash and maglev, caps any target at this factor
	// of the mean load (consistent hashing with bounded loads); 0 = off,
	// else at least 1 (e.g. 1.25).
	BoundedLoad float64 `yaml:"bounded_load" json:"bounded_load,omitempty"`
	// Protocol spoken to targets: http1 (default) or h2c.
	Protocol string `yaml:"protocol" json:"protocol,omitempty"`
	// ConnectTimeout bounds dialing a target. Default 5s
	// (DefaultConnectTimeout); 0 also means the default.
	ConnectTimeout Duration        `yaml:"connect_timeout" json:"connect_timeout"`
	Keepalive      Keepalive       `yaml:"keepalive" json:"keepalive"`
	TLS            *UpstreamTLS    `yaml:"tls" json:"tls,omitempty"`
	HealthCheck    *HealthCheck    `yaml:"health_check" json:"health_check,omitempty"`
	CircuitBreaker *CircuitBreaker `yaml:"circuit_breaker" json:"circuit_breaker,omitempty"`
	Failover       string          `yaml:"failover" json:"failover,omitempty"`
}

// Target is one upstream instance.
type Target struct {
	Address string `yaml:"address" json:"address"`
	// Weight is relative to the other targets. Default 1.
	Weight int    `yaml:"weight" json:"weight"`
	Zone   string `yaml:"zone" json:"zone,omitempty"`
}

// Discovery finds targets dynamically (static, dns, srv, etcd). See
// docs/discovery.md.
type Discovery struct {
	// Type is static (default: the targets list), dns, srv or etcd.
	Type string `yaml:"type" json:"type"`
	// Name is the DNS name (dns), the full SRV name (srv) or the service
	// name under Prefix (etcd).
	Name string `yaml:"name" json:"name,omitempty"`
	// Port is the port of every address a dns lookup returns (dns only).
	Port int `yaml:"port" json:"port,omitempty"`
	// Refresh is how often dns and srv names are resolved again: a
	// duration, or "ttl" for the smallest TTL of the answer. Default 30s
	// (DefaultDiscoveryRefresh).
	Refresh Refresh `yaml:"refresh" json:"refresh,omitzero"`
	// Resolver is the host:port of the DNS server to ask (dns, srv).
	// Default: the system's resolver.
	Resolver string `yaml:"resolver" json:"resolver,omitempty"`
	// Timeout bounds one DNS query, or one etcd request. Default 2s
	// (DefaultDiscoveryTimeout).
	Timeout Duration `yaml:"timeout" json:"timeout,omitempty"`
	// Endpoints are the etcd cluster's host:port addresses (etcd only,
	// required).
	Endpoints []string `yaml:"endpoints" json:"endpoints,omitempty"`
	// Prefix is the etcd key prefix services register under (etcd only).
	// Default /rampart/services (DefaultDiscoveryPrefix): an instance is
	// the key PREFIX/NAME/ID.
	Prefix string `yaml:"prefix" json:"prefix,omitempty"`
}

// Keepalive configures pooled connections to targets.
type Keepalive struct {
	// MaxIdlePerTarget is the number of idle connections kept per target.
	// Default 64 (DefaultMaxIdlePerTarget); 0 also means the default.
	MaxIdlePerTarget int `yaml:"max_idle_per_target" json:"max_idle_per_target"`
	// IdleTimeout closes pooled connections unused for this long. Default 60s.
	IdleTimeout Duration `yaml:"idle_timeout" json:"idle_timeout"`
}

// UpstreamTLS makes the gateway speak TLS to targets.
type UpstreamTLS struct {
	ServerName         string `yaml:"server_name" json:"server_name,omitempty"`
	CAFile             string `yaml:"ca_file" json:"ca_file,omitempty"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify" json:"insecure_skip_verify,omitempty"`
}

// HealthCheck groups active probing and passive outlier detection.
type HealthCheck struct {
	Active  *ActiveHealth  `yaml:"active" json:"active,omitempty"`
	Passive *PassiveHealth `yaml:"passive" json:"passive,omitempty"`
	// PanicThreshold is a percentage: when fewer than this share of the
	// targets are healthy, balance over all of them rather than overload
	// the few (Envoy's panic threshold). Default 50; 0 disables it.
	PanicThreshold *int `yaml:"panic_threshold" json:"panic_threshold,omitempty"`
}

// ActiveHealth probes each target periodically.
type ActiveHealth struct {
	Path               string   `yaml:"path" json:"path"`
	Interval           Duration `yaml:"interval" json:"interval"`
	Timeout            Duration `yaml:"timeout" json:"timeout"`
	HealthyThreshold   int      `yaml:"healthy_threshold" json:"healthy_threshold"`
	UnhealthyThreshold int      `yaml:"unhealthy_threshold" json:"unhealthy_threshold"`
}

// PassiveHealth ejects targets that keep failing real requests.
type PassiveHealth struct {
	Consecutive5xx int `yaml:"consecutive_5xx" json:"consecutive_5xx"`
	// ConsecutiveConnectFailures ejects after this many failed connects in
	// a row. Default 5 (0 uses the default).
	ConsecutiveConnectFailures int `yaml:"consecutive_connect_failures" json:"consecutive_connect_failures,omitempty"`
	// MaxEjectionTime caps BaseEjectionTime × times ejected. Default 300s.
	MaxEjectionTime    Duration `yaml:"max_ejection_time" json:"max_ejection_time,omitempty"`
	Interval           Duration `yaml:"interval" json:"interval"`
	BaseEjectionTime   Duration `yaml:"base_ejection_time" json:"base_ejection_time"`
	MaxEjectionPercent int      `yaml:"max_ejection_percent" json:"max_ejection_percent"`
}

// CircuitBreaker bounds the load one upstream may put on the gateway.
type CircuitBreaker struct {
	MaxConnections     int `yaml:"max_connections" json:"max_connections"`
	MaxPendingRequests int `yaml:"max_pending_requests" json:"max_pending_requests"`
	MaxRequests        int `yaml:"max_requests" json:"max_requests"`
	MaxRetries         int `yaml:"max_retries" json:"max_retries"`
	// Trip opens the circuit on failures (closed, open, half-open); see
	// CircuitTrip. Absent: no failure-tripped breaker.
	Trip *CircuitTrip `yaml:"trip" json:"trip,omitempty"`
}

// Route matches requests and says where they go.
type Route struct {
	// Name identifies the route in metrics and logs. Default "route-N".
	Name  string `yaml:"name" json:"name"`
	Match Match  `yaml:"match" json:"match"`
	// StripPrefix removes the matched path prefix before forwarding.
	StripPrefix bool     `yaml:"strip_prefix" json:"strip_prefix,omitempty"`
	Rewrite     *Rewrite `yaml:"rewrite" json:"rewrite,omitempty"`
	// Upstream or Split: exactly one (or Aggregate).
	Upstream string      `yaml:"upstream" json:"upstream,omitempty"`
	Split    []SplitItem `yaml:"split" json:"split,omitempty"`
	Mirror   *Mirror     `yaml:"mirror" json:"mirror,omitempty"`
	// Timeout bounds the whole upstream exchange up to the response
	// headers; 0 means none. Default 15s.
	Timeout   Duration   `yaml:"timeout" json:"timeout"`
	Retry     *Retry     `yaml:"retry" json:"retry,omitempty"`
	Policies  []string   `yaml:"policies" json:"policies,omitempty"`
	Fallback  *Fallback  `yaml:"fallback" json:"fallback,omitempty"`
	Cache     *Cache     `yaml:"cache" json:"cache,omitempty"`
	Aggregate *Aggregate `yaml:"aggregate" json:"aggregate,omitempty"`
}

// Match is the set of conditions a request must meet, all of them.
type Match struct {
	// Hosts are exact names or "*.suffix" wildcards; case-insensitive, port
	// ignored. Empty matches any host.
	Hosts   []string          `yaml:"hosts" json:"hosts,omitempty"`
	Path    PathMatch         `yaml:"path" json:"path"`
	Methods []string          `yaml:"methods" json:"methods,omitempty"`
	Headers map[string]string `yaml:"headers" json:"headers,omitempty"`
	Query   map[string]string `yaml:"query" json:"query,omitempty"`
}

// PathMatch is one of exact, prefix, regex or template. Empty matches every
// path (as prefix "/").
type PathMatch struct {
	Exact    string `yaml:"exact" json:"exact,omitempty"`
	Prefix   string `yaml:"prefix" json:"prefix,omitempty"`
	Regex    string `yaml:"regex" json:"regex,omitempty"`
	Template string `yaml:"template" json:"template,omitempty"`
}

// Rewrite replaces the matched prefix.
type Rewrite struct {
	Prefix string `yaml:"prefix" json:"prefix"`
}

// SplitItem is one weighted branch of a traffic split.
type SplitItem struct {
	Upstream string `yaml:"upstream" json:"upstream"`
	Weight   int    `yaml:"weight" json:"weight"`
}

// Mirror copies a share of requests to a shadow upstream.
type Mirror struct {
	Upstream string  `yaml:"upstream" json:"upstream"`
	Percent  float64 `yaml:"percent" json:"percent"`
}

// Retry configures retries of failed upstream attempts.
type Retry struct {
	Attempts      int      `yaml:"attempts" json:"attempts"`
	PerTryTimeout Duration `yaml:"per_try_timeout" json:"per_try_timeout,omitempty"`
	On            []string `yaml:"on" json:"on,omitempty"`
	Backoff       Backoff  `yaml:"backoff" json:"backoff"`
	Budget        *Budget  `yaml:"budget" json:"budget,omitempty"`
	NonIdempotent bool     `yaml:"non_idempotent" json:"non_idempotent,omitempty"`
}

// Backoff is exponential with full jitter.
type Backoff struct {
	Base Duration `yaml:"base" json:"base"`
	Max  Duration `yaml:"max" json:"max"`
}

// Budget caps retries as a share of requests.
type Budget struct {
	Percent      float64 `yaml:"percent" json:"percent"`
	MinPerSecond float64 `yaml:"min_per_second" json:"min_per_second"`
}

// Fallback is the response given instead of a gateway-made 502/503/504.
type Fallback struct {
	Status      int    `yaml:"status" json:"status"`
	ContentType string `yaml:"content_type" json:"content_type,omitempty"`
	Body        string `yaml:"body" json:"body,omitempty"`
}

// Cache keeps successful GET responses.
type Cache struct {
	TTL          Duration `yaml:"ttl" json:"ttl"`
	StaleIfError Duration `yaml:"stale_if_error" json:"stale_if_error,omitempty"`
}

// Aggregate fans a request out to several backends and merges JSON.
type Aggregate struct {
	Timeout  Duration           `yaml:"timeout" json:"timeout"`
	Backends []AggregateBackend `yaml:"backends" json:"backends"`
}

// AggregateBackend is one branch of an aggregate.
type AggregateBackend struct {
	Upstream string `yaml:"upstream" json:"upstream"`
	Path     string `yaml:"path" json:"path"`
	Group    string `yaml:"group" json:"group,omitempty"`
	Optional bool   `yaml:"optional" json:"optional,omitempty"`
}

// Policy is a named request policy. Type selects the implementation; the
// remaining keys are that type's settings, decoded and validated by the
// policy's own package (see internal/policy) through DecodeNode.
type Policy struct {
	Type string `yaml:"type" json:"type"`
	// Spec is the policy's whole mapping, kept as parsed so that the policy
	// package can decode it strictly with positions.
	Spec *yaml.Node `yaml:"-" json:"-"`
}

// Consumer is a known API client.
type Consumer struct {
	Name    string   `yaml:"name" json:"name"`
	APIKeys []string `yaml:"api_keys" json:"api_keys,omitempty"`
	Roles   []string `yaml:"roles" json:"roles,omitempty"`
}

// Cluster holds cross-instance settings.
type Cluster struct {
	// Zone is this gateway's own zone: balancers prefer targets of the
	// same zone and spill over to others when it has no healthy target.
	Zone  string `yaml:"zone" json:"zone,omitempty"`
	Redis *Redis `yaml:"redis" json:"redis,omitempty"`
}

// Redis is the shared store for cluster-wide rate limits.
type Redis struct {
	Address   string   `yaml:"address" json:"address"`
	Timeout   Duration `yaml:"timeout" json:"timeout,omitempty"`
	OnFailure string   `yaml:"on_failure" json:"on_failure,omitempty"`
}

// Observability configures logs, request IDs and tracing.
type Observability struct {
	AccessLog AccessLog `yaml:"access_log" json:"access_log"`
	// RequestIDHeader is the request ID header. Default X-Request-ID.
	RequestIDHeader string   `yaml:"request_id_header" json:"request_id_header"`
	Tracing         *Tracing `yaml:"tracing" json:"tracing,omitempty"`
}

// AccessLog writes one JSON line per request.
type AccessLog struct {
	// Path is stdout (default), stderr, off, or a file path.
	Path   string `yaml:"path" json:"path"`
	Format string `yaml:"format" json:"format"`
}

// Tracing exports OpenTelemetry spans.
type Tracing struct {
	OTLPEndpoint string  `yaml:"otlp_endpoint" json:"otlp_endpoint"`
	SampleRatio  float64 `yaml:"sample_ratio" json:"sample_ratio"`
}
