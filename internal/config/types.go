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
	// Required: at least one.
	Listeners []Listener `yaml:"listeners" json:"listeners"`
	// Admin is the admin API listener (health, metrics, config). Default:
	// listening on 127.0.0.1:9901 (DefaultAdminAddress) without a token.
	Admin Admin `yaml:"admin" json:"admin"`
	// DrainTimeout bounds how long in-flight requests may run after SIGTERM.
	// Default 30s (DefaultDrainTimeout); 0 also means the default.
	DrainTimeout Duration `yaml:"drain_timeout" json:"drain_timeout"`
	// DrainDelay is how long a draining gateway keeps accepting after
	// readyz turns 503, so that an external load balancer notices before
	// listeners close. It comes before drain_timeout, not out of it.
	// Default 0s (no delay).
	DrainDelay Duration `yaml:"drain_delay" json:"drain_delay,omitempty"`
	// PIDFile, if set, is where the process writes its pid once it serves;
	// a binary upgrade rewrites it with the new pid. Read at start-up (a
	// reload that changes it takes effect at the next restart or
	// upgrade). Default "" (none).
	PIDFile string `yaml:"pid_file" json:"pid_file,omitempty"`
	// Upgrade configures the zero-downtime binary upgrade (SIGUSR2,
	// POST /api/v1/upgrade). Default: the running binary, 30s timeout.
	Upgrade Upgrade `yaml:"upgrade" json:"upgrade,omitempty"`
	// Upstreams are the named groups of targets routes forward to. No
	// default: none.
	Upstreams map[string]*Upstream `yaml:"upstreams" json:"upstreams"`
	// Routes are matched against each request; see docs/routing.md for
	// the precedence rules. Required: at least one.
	Routes []Route `yaml:"routes" json:"routes"`
	// Policies are named, typed request policies that routes reference.
	// No default: none.
	Policies map[string]*Policy `yaml:"policies" json:"policies,omitempty"`
	// Consumers are the known API clients (API keys, roles). No default:
	// none.
	Consumers []Consumer `yaml:"consumers" json:"consumers,omitempty"`
	// Cluster holds settings shared by gateway instances (zone, Redis).
	// Default: no zone and no Redis.
	Cluster Cluster `yaml:"cluster" json:"cluster,omitempty"`
	// Observability configures access logs, request IDs and tracing.
	// Default: JSON access log on stdout, request IDs in X-Request-ID, no
	// tracing.
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
	// Name identifies the listener in logs and metrics; unique. Default
	// "listener-N", N its index in the list.
	Name string `yaml:"name" json:"name"`
	// Address is host:port to listen on; an empty host listens on all
	// interfaces, port 0 picks a free port. Required.
	Address string `yaml:"address" json:"address"`
	// Protocol is http (HTTP/1.1 and h2c; h2 via ALPN with tls) or tcp.
	// Default http.
	Protocol string `yaml:"protocol" json:"protocol"`
	// TLS terminates TLS on the listener. No default: plaintext.
	TLS *ListenerTLS `yaml:"tls" json:"tls,omitempty"`
	// Limits protect the listener from oversized or slow clients.
	// Default: each limit's own default.
	Limits Limits `yaml:"limits" json:"limits"`
	// Upstream is the target group of a tcp listener: required for tcp
	// (unless tls.sni_routes names upstreams; then it takes the names that
	// match none), refused for http. No default.
	Upstream string `yaml:"upstream" json:"upstream,omitempty"`
	// TrustedProxies are the peers, IP addresses or CIDR prefixes
	// (ParsePrefix), that stand in front of the gateway. On an http
	// listener, their X-Forwarded-For / Forwarded may name the client; the
	// resolved client is what ip_filter, rate_limit key ip, hash_key ip,
	// the candidate split, the access log's client_ip and the
	// X-Forwarded-For sent upstream use, and other peers' forwarding
	// headers are replaced. On a tcp listener, a connection from one of
	// them must start with a PROXY protocol header (version 1 or 2, read
	// within read_header_timeout), whose client address then counts as the
	// client's (hash_key ip, max_connections_per_ip, the header sent on
	// with proxy_protocol); bytes from other peers are relayed untouched.
	// No default: none (the TCP peer is the client).
	TrustedProxies []string `yaml:"trusted_proxies" json:"trusted_proxies,omitempty"`
	// ReusePort sets SO_REUSEPORT on the socket, so that several processes
	// can bind the same address and the kernel spreads connections over
	// them. Default false.
	ReusePort bool `yaml:"reuse_port" json:"reuse_port,omitempty"`
	// HTTP3 also serves HTTP/3 over QUIC on the UDP port of the same
	// number, with the same routes, policies and limits, and advertises it
	// with Alt-Svc on HTTP/1.1 and HTTP/2 answers. Needs tls; no 0-RTT.
	// Default false.
	HTTP3 bool `yaml:"http3" json:"http3,omitempty"`
	// Explain, on an http listener, answers a request that carries
	// X-Rampart-Explain: 1 with the admin API's explanation of it
	// (GET /api/v1/explain, compact JSON) in an X-Rampart-Explain
	// response header; the request is served as usual. Default false: the
	// request header is ignored. It shows routes, upstream targets and
	// policy settings (secrets redacted) to any client, so enable it only
	// on listeners that operators reach.
	Explain bool `yaml:"explain" json:"explain,omitempty"`
}

// Upgrade configures the binary upgrade: the running process starts
// Binary with the same arguments, hands it the listening sockets, and
// drains once it reports ready.
type Upgrade struct {
	// Binary is the new executable. Default "": the path the running
	// process was started from (a binary replaced on disk is picked up).
	Binary string `yaml:"binary" json:"binary,omitempty"`
	// Timeout bounds how long the new process may take to become ready;
	// past it, it is killed and the old process keeps serving. Default 30s
	// (DefaultUpgradeTimeout).
	Timeout Duration `yaml:"timeout" json:"timeout,omitempty"`
}

// ListenerTLS terminates TLS on a listener.
type ListenerTLS struct {
	// Certificates are the PEM chains and keys; with several, the one
	// matching the SNI name is served. Required: at least one.
	Certificates []Certificate `yaml:"certificates" json:"certificates"`
	// MinVersion is "1.2" or "1.3". Default "1.2".
	MinVersion string `yaml:"min_version" json:"min_version,omitempty"`
	// ClientAuth configures client certificates (mTLS). Default: mode
	// none.
	ClientAuth ClientAuth `yaml:"client_auth" json:"client_auth,omitempty"`
	// SessionTickets lets clients resume TLS sessions (TLS 1.2 tickets and
	// TLS 1.3 PSK resumption), with one ticket key set shared by every
	// listener, kept across reloads and rotated hourly in memory (the
	// previous key still accepted). false turns resumption off. Default
	// true.
	SessionTickets *bool `yaml:"session_tickets" json:"session_tickets,omitempty"`
	// SNIRoutes sends a tcp listener's connections to an upstream by the
	// SNI name of their TLS handshake: host (ParseHost's grammar, exact
	// names before wildcards) to upstream name; a name that matches none
	// goes to the listener's upstream, or is closed without one. Only on
	// tcp listeners. No default: every connection goes to the listener's
	// upstream.
	SNIRoutes map[string]string `yaml:"sni_routes" json:"sni_routes,omitempty"`
}

// Certificate is a PEM certificate chain and its key.
type Certificate struct {
	// CertFile is the path of the PEM certificate chain. Required.
	CertFile string `yaml:"cert_file" json:"cert_file"`
	// KeyFile is the path of the PEM private key. Required.
	KeyFile string `yaml:"key_file" json:"key_file"`
}

// ClientAuth configures mTLS.
type ClientAuth struct {
	// Mode is none, request (verify a certificate if the client sends
	// one) or require (refuse clients without a valid one). Default none.
	Mode string `yaml:"mode" json:"mode,omitempty"`
	// CAFile is the CA bundle client certificates must chain to; required
	// for modes request and require. No default.
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
	// ReadHeaderTimeout cuts off clients that send headers slowly. Default
	// 10s (DefaultReadHeaderTimeout).
	ReadHeaderTimeout Duration `yaml:"read_header_timeout" json:"read_header_timeout"`
	// IdleTimeout closes idle keep-alive client connections; on a tcp
	// listener, connections that carried no byte either way for this
	// long. Default 60s (DefaultIdleTimeout); 1h for tcp listeners
	// (DefaultTCPIdleTimeout).
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
	// MaxURIBytes bounds the request target, in bytes; longer -> 414.
	// Default 8192 bytes.
	MaxURIBytes int `yaml:"max_uri_bytes" json:"max_uri_bytes"`
	// MaxRequestsPerConnection is how many requests one HTTP/1.1
	// keep-alive connection serves before the response carries
	// Connection: close. Default 1000; 0 = unlimited.
	MaxRequestsPerConnection int `yaml:"max_requests_per_connection" json:"max_requests_per_connection"`
	// MaxConcurrentStreams bounds concurrent HTTP/2 streams per connection.
	// Default 100.
	MaxConcurrentStreams int `yaml:"max_concurrent_streams" json:"max_concurrent_streams"`
	// BodyBufferBytes is how much of one request body a route's
	// request_buffering keeps in memory, in bytes: auto buffers a body of
	// unknown length up to it before forwarding, on spills the rest to a
	// temporary file. Default 65536 (64 KiB, DefaultBodyBufferBytes); 0 =
	// nothing in memory.
	BodyBufferBytes int64 `yaml:"body_buffer_bytes" json:"body_buffer_bytes"`
	// BufferMemoryBytes bounds the memory all request bodies being buffered
	// on this listener hold together, in bytes. When it is used up, auto
	// streams and on spills to a file. Default 67108864 (64 MiB,
	// DefaultBufferMemoryBytes); at least BodyBufferBytes.
	BufferMemoryBytes int64 `yaml:"buffer_memory_bytes" json:"buffer_memory_bytes"`
	// BufferDir is the directory of the temporary files request_buffering:
	// on spills bodies to; each is removed when its request ends. Default
	// "" = the system's temporary directory ($TMPDIR, else /tmp).
	BufferDir string `yaml:"buffer_dir" json:"buffer_dir,omitempty"`
}

// Admin is the admin API listener.
type Admin struct {
	// Address is the admin API's host:port; "off" disables the admin API.
	// Default 127.0.0.1:9901 (DefaultAdminAddress).
	Address string `yaml:"address" json:"address"`
	// TokenFile holds the bearer token mutating admin calls need. No
	// default: without it, mutating calls are accepted from loopback only.
	TokenFile string `yaml:"token_file" json:"token_file,omitempty"`
}

// Upstream is a named group of targets with its balancing and connection
// settings.
type Upstream struct {
	// Targets are the instances. Required (at least one) unless Discovery
	// finds them; no default.
	Targets []Target `yaml:"targets" json:"targets,omitempty"`
	// Discovery finds targets dynamically. Default: static, the Targets
	// list.
	Discovery *Discovery `yaml:"discovery" json:"discovery,omitempty"`
	// Balancer picks a target per request: round_robin, random,
	// least_request, ring_hash, maglev or ewma. Default round_robin.
	Balancer string `yaml:"balancer" json:"balancer"`
	// HashKey is what ring_hash and maglev hash: ip, path, header:NAME,
	// cookie:NAME or query:NAME; only for those balancers. Default ip with
	// them.
	HashKey string `yaml:"hash_key" json:"hash_key,omitempty"`
	// BoundedLoad, for ring_hash and maglev, caps any target at this factor
	// of the mean load (consistent hashing with bounded loads); 0 = off,
	// else at least 1 (e.g. 1.25). Default 0.
	BoundedLoad float64 `yaml:"bounded_load" json:"bounded_load,omitempty"`
	// Protocol spoken to targets: http1 (with TLS, h2 if the target
	// offers it by ALPN, else HTTP/1.1), h2c (HTTP/2 in plain text, prior
	// knowledge) or h2 (HTTP/2 over TLS, negotiated by ALPN; needs TLS).
	// Default http1.
	Protocol string `yaml:"protocol" json:"protocol,omitempty"`
	// ConnectTimeout bounds dialing a target. Default 5s
	// (DefaultConnectTimeout); 0 also means the default.
	ConnectTimeout Duration `yaml:"connect_timeout" json:"connect_timeout"`
	// Keepalive configures pooled connections to targets. Default: each
	// field's own default.
	Keepalive Keepalive `yaml:"keepalive" json:"keepalive"`
	// TLS makes the gateway speak TLS to targets. No default: plaintext.
	TLS *UpstreamTLS `yaml:"tls" json:"tls,omitempty"`
	// HealthCheck configures active probes, outlier detection and the
	// panic threshold. No default: no probes and no outlier detection,
	// with the panic threshold at its default of 50 percent.
	HealthCheck *HealthCheck `yaml:"health_check" json:"health_check,omitempty"`
	// CircuitBreaker bounds the load sent to this upstream. Default: the
	// limits' own defaults (1024 connections, pending requests and
	// requests, 64 retries) and no failure-tripped circuit.
	CircuitBreaker *CircuitBreaker `yaml:"circuit_breaker" json:"circuit_breaker,omitempty"`
	// Failover names another upstream used while this one has no healthy
	// target; it must exist and form no cycle. No default: none.
	Failover string `yaml:"failover" json:"failover,omitempty"`
	// ProxyProtocol, v1 or v2, makes tcp listeners start every connection
	// to a target with a PROXY protocol header naming the client (before
	// TLS, with tls). Only for upstreams that no route uses. No default:
	// none is sent.
	ProxyProtocol string `yaml:"proxy_protocol" json:"proxy_protocol,omitempty"`
}

// Target is one upstream instance.
type Target struct {
	// Address is the target's host:port, a name or an IP and a port
	// 1-65535, unique in the upstream. Required.
	Address string `yaml:"address" json:"address"`
	// Weight is relative to the other targets, 1-10000. Default 1.
	Weight int `yaml:"weight" json:"weight"`
	// Zone is the target's locality label for zone-aware balancing (see
	// cluster.zone). No default: no zone.
	Zone string `yaml:"zone" json:"zone,omitempty"`
}

// Discovery finds targets dynamically (static, dns, srv, etcd). See
// docs/discovery.md.
type Discovery struct {
	// Type is static (the Targets list), dns (A/AAAA records of Name),
	// srv (SRV records of Name) or etcd (instances registered under
	// Prefix/Name/). Default static.
	Type string `yaml:"type" json:"type"`
	// Name is the DNS name (dns), the full SRV name (srv) or the service
	// name under Prefix (etcd); required for those. No default.
	Name string `yaml:"name" json:"name,omitempty"`
	// Port is the port of every address a dns lookup returns, 1-65535;
	// required for dns, refused with the other types. No default.
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
	// IdleTimeout closes pooled connections unused for this long. Default
	// 60s (DefaultIdleTimeout).
	IdleTimeout Duration `yaml:"idle_timeout" json:"idle_timeout"`
	// PingInterval, for HTTP/2 connections (h2c, h2, or h2 negotiated
	// over tls), sends a PING on a pooled connection that received no
	// frame for this long; positive. Default 30s (DefaultPingInterval); 0
	// also means the default.
	PingInterval Duration `yaml:"ping_interval" json:"ping_interval,omitempty"`
	// PingTimeout closes an HTTP/2 connection whose PING is not answered
	// within it (its requests fail as resets; new ones go on another
	// connection); positive. Default 15s (DefaultPingTimeout); 0 also
	// means the default.
	PingTimeout Duration `yaml:"ping_timeout" json:"ping_timeout,omitempty"`
}

// UpstreamTLS makes the gateway speak TLS to targets.
type UpstreamTLS struct {
	// ServerName is the SNI name sent and verified in the target's
	// certificate. Default: the target's host.
	ServerName string `yaml:"server_name" json:"server_name,omitempty"`
	// CAFile is the CA bundle target certificates must chain to. Default:
	// the system roots.
	CAFile string `yaml:"ca_file" json:"ca_file,omitempty"`
	// InsecureSkipVerify turns off verifying target certificates (testing
	// only). Default false.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify" json:"insecure_skip_verify,omitempty"`
	// CertFile is a PEM client certificate chain presented to targets that
	// ask for one (upstream mTLS); both or neither of CertFile and
	// KeyFile. Re-read when the files change. No default: none.
	CertFile string `yaml:"cert_file" json:"cert_file,omitempty"`
	// KeyFile is CertFile's PEM private key. No default.
	KeyFile string `yaml:"key_file" json:"key_file,omitempty"`
}

// HealthCheck groups active probing and passive outlier detection.
type HealthCheck struct {
	// Active probes each target periodically. No default: no probes.
	Active *ActiveHealth `yaml:"active" json:"active,omitempty"`
	// Passive ejects targets that fail real requests (outlier detection).
	// No default: no ejections.
	Passive *PassiveHealth `yaml:"passive" json:"passive,omitempty"`
	// PanicThreshold is a percentage, 0-100: when fewer than this share of
	// the targets are healthy, balance over all of them rather than
	// overload the few (Envoy's panic threshold). Default 50 percent
	// (DefaultPanicThreshold); 0 disables it.
	PanicThreshold *int `yaml:"panic_threshold" json:"panic_threshold,omitempty"`
}

// ActiveHealth probes each target periodically.
type ActiveHealth struct {
	// Path is probed with GET on each target, starting with "/"; 2xx and
	// 3xx answers are healthy. No default: without a path (and without
	// GRPC) the probe is a TCP connect (with Send and Expect, if set).
	Path string `yaml:"path" json:"path,omitempty"`
	// GRPC probes with the standard gRPC health protocol
	// (grpc.health.v1.Health/Check) over HTTP/2: SERVING is healthy,
	// anything else (NOT_SERVING, UNKNOWN, an error status) unhealthy.
	// Not with Path, Send or Expect; the upstream must speak HTTP/2
	// (protocol h2c or h2, or tls). No default: no gRPC check.
	GRPC *GRPCHealth `yaml:"grpc" json:"grpc,omitempty"`
	// Send is written to the target once a TCP probe connected (no path);
	// at most 4096 bytes, and only with Expect. No default: nothing.
	Send string `yaml:"send" json:"send,omitempty"`
	// Expect must be contained in what the target answers to a TCP probe
	// (no path), read up to 64 KiB, within Timeout; at most 4096 bytes.
	// No default: the connect alone is the check.
	Expect string `yaml:"expect" json:"expect,omitempty"`
	// Interval is the time between probes of one target, ±10 % jitter;
	// positive. Default 5s (DefaultHealthInterval).
	Interval Duration `yaml:"interval" json:"interval"`
	// Timeout fails a probe slower than this; positive. Default 1s
	// (DefaultHealthTimeout).
	Timeout Duration `yaml:"timeout" json:"timeout"`
	// HealthyThreshold is the number of consecutive successful probes that
	// mark a target healthy; at least 1. Default 2
	// (DefaultHealthyThreshold).
	HealthyThreshold int `yaml:"healthy_threshold" json:"healthy_threshold"`
	// UnhealthyThreshold is the number of consecutive failed probes that
	// mark a target unhealthy; at least 1. Default 3
	// (DefaultUnhealthyThreshold).
	UnhealthyThreshold int `yaml:"unhealthy_threshold" json:"unhealthy_threshold"`
}

// GRPCHealth is a gRPC health check (grpc.health.v1).
type GRPCHealth struct {
	// Service is the service name asked about (e.g. "shop.Catalog"). Default
	// "": the server's overall health.
	Service string `yaml:"service" json:"service"`
}

// PassiveHealth ejects targets that keep failing real requests.
type PassiveHealth struct {
	// Consecutive5xx ejects a target after this many 5xx answers, resets,
	// timeouts or connect failures in a row; at least 1. Default 5
	// (DefaultConsecutive5xx).
	Consecutive5xx int `yaml:"consecutive_5xx" json:"consecutive_5xx"`
	// ConsecutiveConnectFailures ejects after this many failed connects in
	// a row (they count toward Consecutive5xx too). Default 5
	// (DefaultConsecutiveConnectFailures); 0 also means the default.
	ConsecutiveConnectFailures int `yaml:"consecutive_connect_failures" json:"consecutive_connect_failures,omitempty"`
	// MaxEjectionTime caps BaseEjectionTime × times ejected. Default 300s
	// (DefaultMaxEjectionTime), or BaseEjectionTime if that is longer; 0
	// also means the default.
	MaxEjectionTime Duration `yaml:"max_ejection_time" json:"max_ejection_time,omitempty"`
	// Interval is how long a target must stay not ejected for its
	// ejection multiplier to drop by one; positive. Default 10s
	// (DefaultOutlierInterval).
	Interval Duration `yaml:"interval" json:"interval"`
	// BaseEjectionTime is the length of a first ejection; the n-th lasts n
	// times as long. Positive. Default 30s (DefaultBaseEjectionTime).
	BaseEjectionTime Duration `yaml:"base_ejection_time" json:"base_ejection_time"`
	// MaxEjectionPercent is the share of the targets, 0-100 percent, that
	// may be ejected at once; one target may always be ejected when it is
	// above 0, and 0 ejects none. Default 50 percent
	// (DefaultMaxEjectionPercent).
	MaxEjectionPercent int `yaml:"max_ejection_percent" json:"max_ejection_percent"`
}

// CircuitBreaker bounds the load one upstream may put on the gateway.
type CircuitBreaker struct {
	// MaxConnections bounds open connections to all targets; at least 1.
	// Default 1024.
	MaxConnections int `yaml:"max_connections" json:"max_connections"`
	// MaxPendingRequests bounds requests waiting for a connection; at
	// least 1. Default 1024.
	MaxPendingRequests int `yaml:"max_pending_requests" json:"max_pending_requests"`
	// MaxRequests bounds requests in flight; at least 1. Default 1024.
	MaxRequests int `yaml:"max_requests" json:"max_requests"`
	// MaxRetries bounds retries being started at once, a backstop to the
	// retry budget; at least 0. Default 64.
	MaxRetries int `yaml:"max_retries" json:"max_retries"`
	// Trip opens the circuit on failures (closed, open, half-open); see
	// CircuitTrip. No default: no failure-tripped breaker.
	Trip *CircuitTrip `yaml:"trip" json:"trip,omitempty"`
}

// Route matches requests and says where they go.
type Route struct {
	// Name identifies the route in metrics and logs; unique. Default
	// "route-N", N its index in the list.
	Name string `yaml:"name" json:"name"`
	// Match holds the conditions a request must meet. Default: every
	// request matches.
	Match Match `yaml:"match" json:"match"`
	// StripPrefix removes the matched path prefix (or a template's literal
	// prefix) before forwarding. Default false.
	StripPrefix bool `yaml:"strip_prefix" json:"strip_prefix,omitempty"`
	// Rewrite replaces the matched prefix (or a template's literal
	// prefix). No default: the path is forwarded as matched.
	Rewrite *Rewrite `yaml:"rewrite" json:"rewrite,omitempty"`
	// Upstream receives matching requests. Exactly one of Upstream, Split
	// and Aggregate is required; no default.
	Upstream string `yaml:"upstream" json:"upstream,omitempty"`
	// Split sends each request to one of several upstreams by weight. No
	// default (see Upstream).
	Split []SplitItem `yaml:"split" json:"split,omitempty"`
	// Mirror copies a share of requests to a shadow upstream. No default:
	// no mirroring.
	Mirror *Mirror `yaml:"mirror" json:"mirror,omitempty"`
	// Timeout bounds the whole upstream exchange up to the response
	// headers, retries and backoff included; 0 means none. Default 15s
	// (DefaultRouteTimeout).
	Timeout Duration `yaml:"timeout" json:"timeout"`
	// RequestBuffering is how the request body reaches the upstream (NGINX's
	// proxy_request_buffering): auto buffers a body of unknown length up to
	// the listener's limits.body_buffer_bytes before forwarding, and streams
	// a longer one; on buffers every body whole (memory, then a temporary
	// file) up to max_body_bytes, which also makes it replayable on every
	// retry; off streams every body. Default auto.
	RequestBuffering string `yaml:"request_buffering" json:"request_buffering"`
	// Retry retries failed attempts on another target. No default: no
	// retries.
	Retry *Retry `yaml:"retry" json:"retry,omitempty"`
	// Policies are names of entries of the top-level policies, run in
	// this order before the request is forwarded. No default: none.
	Policies []string `yaml:"policies" json:"policies,omitempty"`
	// Fallback answers instead of a gateway-made 502/503/504. No default:
	// the JSON error is sent.
	Fallback *Fallback `yaml:"fallback" json:"fallback,omitempty"`
	// Cache keeps successful GET answers. No default: no caching.
	Cache *Cache `yaml:"cache" json:"cache,omitempty"`
	// Aggregate fans a request out to several upstreams (see Upstream).
	// No default.
	Aggregate *Aggregate `yaml:"aggregate" json:"aggregate,omitempty"`
}

// Match is the set of conditions a request must meet, all of them.
type Match struct {
	// Hosts are exact names or "*.suffix" wildcards (ParseHost's
	// grammar); case-insensitive, the request's port ignored. Default:
	// any host.
	Hosts []string `yaml:"hosts" json:"hosts,omitempty"`
	// Path is one of exact, prefix, regex or template. Default: prefix
	// "/".
	Path PathMatch `yaml:"path" json:"path"`
	// Methods are the request methods accepted, upper-cased when
	// compiled. Default: any method.
	Methods []string `yaml:"methods" json:"methods,omitempty"`
	// Headers must each be present with exactly this value (names
	// case-insensitive). No default: none required.
	Headers map[string]string `yaml:"headers" json:"headers,omitempty"`
	// Query parameters must each be present with exactly this value. No
	// default: none required.
	Query map[string]string `yaml:"query" json:"query,omitempty"`
}

// PathMatch is one of exact, prefix, regex or template. Empty matches every
// path (as prefix "/").
type PathMatch struct {
	// Exact matches a path equal to it, starting with "/". No default.
	Exact string `yaml:"exact" json:"exact,omitempty"`
	// Prefix matches a path starting with it (a plain string prefix),
	// starting with "/". No default.
	Prefix string `yaml:"prefix" json:"prefix,omitempty"`
	// Regex is a Go regexp the whole path must match. No default.
	Regex string `yaml:"regex" json:"regex,omitempty"`
	// Template is a path template such as "/u/{id}/{*rest}"
	// (ParseTemplate's grammar). No default.
	Template string `yaml:"template" json:"template,omitempty"`
}

// Rewrite replaces the matched prefix, or the whole path.
type Rewrite struct {
	// Prefix replaces the matched prefix; it starts with "/". Exactly one
	// of Prefix and Path is required.
	Prefix string `yaml:"prefix" json:"prefix,omitempty"`
	// Path replaces the whole path; it starts with "/" and may use the
	// match's captures as {name} (template variables, regex named
	// groups), percent-encoded again when substituted. The query is kept.
	// No default (see Prefix).
	Path string `yaml:"path" json:"path,omitempty"`
}

// SplitItem is one weighted branch of a traffic split.
type SplitItem struct {
	// Upstream is the branch's upstream, once per split. Required.
	Upstream string `yaml:"upstream" json:"upstream"`
	// Weight is the branch's share relative to the others, 1-10000.
	// Required: no default.
	Weight int `yaml:"weight" json:"weight"`
}

// Mirror copies a share of requests to a shadow upstream.
type Mirror struct {
	// Upstream receives the copies; its answers are discarded. Required.
	Upstream string `yaml:"upstream" json:"upstream"`
	// Percent is the share of requests mirrored, 0-100 percent (a
	// fraction such as 0.5 is allowed). Default 100 percent.
	Percent float64 `yaml:"percent" json:"percent"`
	// MaxInFlight bounds the copies being sent at once, at least 1; a copy
	// over it is dropped (and counted), never queued. Default 100.
	MaxInFlight int `yaml:"max_in_flight" json:"max_in_flight"`
	// MaxBodyBytes bounds the request body a copy carries, in bytes, 0 or
	// more; a request with a larger body is not copied (counted as
	// dropped). 0 copies only requests without a body. Default 1048576
	// (1 MiB).
	MaxBodyBytes int64 `yaml:"max_body_bytes" json:"max_body_bytes"`
}

// Retry configures retries of failed upstream attempts.
type Retry struct {
	// Attempts counts every attempt, the first included; at least 1.
	// Default 2.
	Attempts int `yaml:"attempts" json:"attempts"`
	// PerTryTimeout bounds one attempt's wait for the response head (e.g.
	// 2s). No default: only the route's timeout bounds the attempts.
	PerTryTimeout Duration `yaml:"per_try_timeout" json:"per_try_timeout,omitempty"`
	// On lists when to retry: condition names (RetryConditions) or status
	// codes 100-599 (ParseRetryOn reads them). Default [connect_failure,
	// reset] when the key is absent; an explicit empty list retries
	// nothing.
	On []string `yaml:"on" json:"on,omitempty"`
	// Backoff is the wait before each retry. Default: base 25ms, max
	// 250ms.
	Backoff Backoff `yaml:"backoff" json:"backoff"`
	// Budget caps retries as a share of requests. No default: no budget.
	Budget *Budget `yaml:"budget" json:"budget,omitempty"`
	// NonIdempotent also retries requests that are not idempotent
	// (http1.Idempotent) after they were sent. Default false: they are
	// retried on connect_failure only.
	NonIdempotent bool `yaml:"non_idempotent" json:"non_idempotent,omitempty"`
}

// Backoff is exponential with full jitter.
type Backoff struct {
	// Base is the first retry's upper bound, doubling with each retry.
	// Default 25ms when the key is absent; an explicit 0s is kept (no
	// wait).
	Base Duration `yaml:"base" json:"base"`
	// Max caps the wait; at least Base. Default 250ms when the key is
	// absent; an explicit 0s is kept.
	Max Duration `yaml:"max" json:"max"`
}

// Budget caps retries as a share of requests.
type Budget struct {
	// Percent is the share, 0-100 percent, that retries may add to the
	// route's requests over a sliding 10 s window. Default 20 percent.
	Percent float64 `yaml:"percent" json:"percent"`
	// MinPerSecond is the number of retries per second always allowed
	// whatever the share. Default 10 per second.
	MinPerSecond float64 `yaml:"min_per_second" json:"min_per_second"`
}

// Fallback is the response given instead of a gateway-made 502/503/504.
type Fallback struct {
	// Status is the fallback answer's status, 100-599. Default 503.
	Status int `yaml:"status" json:"status"`
	// ContentType is the answer's Content-Type. Default application/json.
	ContentType string `yaml:"content_type" json:"content_type,omitempty"`
	// Body is the answer's body. Default: empty.
	Body string `yaml:"body" json:"body,omitempty"`
}

// Cache keeps successful GET responses.
type Cache struct {
	// TTL is how long an answer is fresh, positive (e.g. 30s). Required.
	TTL Duration `yaml:"ttl" json:"ttl"`
	// StaleIfError is how long past its TTL a stale answer may be served
	// when the upstream fails. Default 0s: never.
	StaleIfError Duration `yaml:"stale_if_error" json:"stale_if_error,omitempty"`
}

// Aggregate fans a request out to several backends and merges JSON.
type Aggregate struct {
	// Timeout bounds the whole fan-out (e.g. 2s). Default 0s: the route's
	// timeout.
	Timeout Duration `yaml:"timeout" json:"timeout"`
	// Backends are the branches. Required: at least one.
	Backends []AggregateBackend `yaml:"backends" json:"backends"`
}

// AggregateBackend is one branch of an aggregate.
type AggregateBackend struct {
	// Upstream is the branch's upstream. Required.
	Upstream string `yaml:"upstream" json:"upstream"`
	// Path is the path requested, starting with "/"; it may use the
	// route template's {name} variables. Required.
	Path string `yaml:"path" json:"path"`
	// Group is the key the answer is merged under. No default.
	Group string `yaml:"group" json:"group,omitempty"`
	// Optional lets the request succeed when this branch fails. Default
	// false.
	Optional bool `yaml:"optional" json:"optional,omitempty"`
	// Timeout bounds this backend's call, retries included, inside the
	// aggregate's timeout. Default 0s: the aggregate's timeout.
	Timeout Duration `yaml:"timeout" json:"timeout,omitempty"`
	// Allow keeps only these fields of the answer, as dotted paths into
	// nested objects ("user.name"). No default: every field.
	Allow []string `yaml:"allow" json:"allow,omitempty"`
	// Rename renames top-level fields of the answer (after Allow), old
	// name to new. No default: none.
	Rename map[string]string `yaml:"rename" json:"rename,omitempty"`
	// MaxBodyBytes bounds the answer's body; a larger one fails the
	// backend. Default 1048576 (1 MiB, DefaultAggregateMaxBodyBytes).
	MaxBodyBytes int64 `yaml:"max_body_bytes" json:"max_body_bytes,omitempty"`
}

// DefaultAggregateMaxBodyBytes is an aggregate backend's max_body_bytes
// when not set.
const DefaultAggregateMaxBodyBytes = 1 << 20

// Policy is a named request policy. Type selects the implementation; the
// remaining keys are that type's settings, decoded and validated by the
// policy's own package (see internal/policy) through DecodeNode.
type Policy struct {
	// Type is one of PolicyTypes. Required.
	Type string `yaml:"type" json:"type"`
	// Spec is the policy's whole mapping, kept as parsed so that the policy
	// package can decode it strictly with positions. Not a key: set by
	// Parse, no default.
	Spec *yaml.Node `yaml:"-" json:"-"`
}

// Consumer is a known API client.
type Consumer struct {
	// Name identifies the consumer; unique. Required.
	Name string `yaml:"name" json:"name"`
	// APIKeys identify the consumer, plain or "sha256:HEX"; each belongs
	// to one consumer. No default: none.
	APIKeys []string `yaml:"api_keys" json:"api_keys,omitempty"`
	// Roles are the consumer's roles, for require_role and rate limits by
	// role. No default: none.
	Roles []string `yaml:"roles" json:"roles,omitempty"`
	// ClientCerts identify the consumer by a verified mTLS client
	// certificate, for the client_cert policy: "sha256:HEX", the SHA-256
	// of the DER certificate (as sent upstream in X-Client-Cert-SHA256);
	// each belongs to one consumer. No default: none.
	ClientCerts []string `yaml:"client_certs" json:"client_certs,omitempty"`
}

// Cluster holds cross-instance settings.
type Cluster struct {
	// Zone is this gateway's own zone: balancers prefer targets of the
	// same zone and spill over to others when it has no healthy target.
	// No default: no zone preference.
	Zone string `yaml:"zone" json:"zone,omitempty"`
	// Instances is how many gateway instances share the cluster-wide rate
	// limits: while Redis is unavailable, on_failure local gives each
	// instance rate ÷ instances. Default 1 (DefaultInstances) when redis is
	// set.
	Instances int `yaml:"instances" json:"instances,omitempty"`
	// Redis is the store shared by gateway instances. No default: none.
	Redis *Redis `yaml:"redis" json:"redis,omitempty"`
}

// Redis is the shared store for cluster-wide rate limits (rate_limit
// store: redis). Exactly one of Address (one server), Addresses (Redis
// Cluster) and Sentinel says where it is.
type Redis struct {
	// Address is one Redis server, host:port. No default; exactly one of
	// Address, Addresses and Sentinel is required.
	Address string `yaml:"address" json:"address,omitempty"`
	// Addresses are seed nodes of a Redis Cluster, host:port each. No
	// default.
	Addresses []string `yaml:"addresses" json:"addresses,omitempty"`
	// Sentinel finds the master of a Sentinel-managed group. No default.
	Sentinel *Sentinel `yaml:"sentinel" json:"sentinel,omitempty"`
	// Username is the ACL user (AUTH username password). Default "": the
	// default user.
	Username string `yaml:"username" json:"username,omitempty"`
	// PasswordFile holds the password (surrounding whitespace trimmed),
	// read when the config is compiled. No default: no password.
	PasswordFile string `yaml:"password_file" json:"password_file,omitempty"`
	// TLS makes the gateway speak TLS to Redis. No default: plain TCP.
	TLS *RedisTLS `yaml:"tls" json:"tls,omitempty"`
	// Timeout bounds one rate-limit decision in Redis. Default 50ms
	// (DefaultRedisTimeout).
	Timeout Duration `yaml:"timeout" json:"timeout,omitempty"`
	// OnFailure is what a rate limit does while Redis is down, slow past
	// timeout or answering errors: local (a per-instance limit of rate ÷
	// cluster.instances), allow or deny. Default local
	// (DefaultRedisOnFailure).
	OnFailure string `yaml:"on_failure" json:"on_failure,omitempty"`
	// Prefix starts every key Rampart writes. Default "rampart:rl:"
	// (DefaultRedisPrefix).
	Prefix string `yaml:"prefix" json:"prefix,omitempty"`
}

// Sentinel names a Sentinel-managed master and the sentinels to ask.
type Sentinel struct {
	// Master is the master name the sentinels know. Required.
	Master string `yaml:"master" json:"master"`
	// Addresses are the sentinels to ask, host:port each. Required.
	Addresses []string `yaml:"addresses" json:"addresses"`
}

// RedisTLS configures TLS to Redis: verification against ca_file (or the
// system roots) and an optional client certificate (Redis's
// tls-auth-clients).
type RedisTLS struct {
	// ServerName is the name verified (and sent as SNI). Default: the
	// address's host.
	ServerName string `yaml:"server_name" json:"server_name,omitempty"`
	// CAFile holds the CA certificates Redis is verified with. Default:
	// the system roots.
	CAFile string `yaml:"ca_file" json:"ca_file,omitempty"`
	// CertFile and KeyFile are a client certificate (Redis's
	// tls-auth-clients); both or neither. No default: none.
	CertFile string `yaml:"cert_file" json:"cert_file,omitempty"`
	// KeyFile is CertFile's key. No default.
	KeyFile string `yaml:"key_file" json:"key_file,omitempty"`
	// InsecureSkipVerify turns off verification of Redis's certificate.
	// Default false.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify" json:"insecure_skip_verify,omitempty"`
}

// Observability configures logs, request IDs and tracing.
type Observability struct {
	// AccessLog configures the access log. Default: JSON lines on stdout.
	AccessLog AccessLog `yaml:"access_log" json:"access_log"`
	// RequestIDHeader is the request ID header. Default X-Request-ID
	// (DefaultRequestIDHeader).
	RequestIDHeader string `yaml:"request_id_header" json:"request_id_header"`
	// Tracing exports OpenTelemetry spans. No default: no tracing.
	Tracing *Tracing `yaml:"tracing" json:"tracing,omitempty"`
}

// AccessLog writes one JSON line per request.
type AccessLog struct {
	// Path is stdout, stderr, off, or a file path. Default stdout.
	Path string `yaml:"path" json:"path"`
	// Format is the line format; json is the only one. Default json.
	Format string `yaml:"format" json:"format"`
}

// Tracing exports OpenTelemetry spans over OTLP (docs/operations.md,
// "Tracing").
type Tracing struct {
	// OTLPEndpoint is the host:port of the OTLP collector (4317 is OTLP/gRPC's
	// usual port, 4318 OTLP/HTTP's). Required.
	OTLPEndpoint string `yaml:"otlp_endpoint" json:"otlp_endpoint"`
	// Protocol is grpc (OTLP/gRPC) or http (OTLP/HTTP, protobuf, POST
	// /v1/traces). Default grpc.
	Protocol string `yaml:"protocol" json:"protocol"`
	// Headers are sent with every export (an API key, a tenant). No
	// default: none.
	Headers map[string]string `yaml:"headers" json:"headers,omitempty"`
	// SampleRatio is the share of new traces sampled, 0-1; an incoming
	// traceparent's (or B3) decision is kept. Default 1.
	SampleRatio float64 `yaml:"sample_ratio" json:"sample_ratio"`
	// ServiceName is the service.name resource attribute. Default rampart.
	ServiceName string `yaml:"service_name" json:"service_name"`
	// Insecure sends spans in plaintext. Default: plaintext to a loopback
	// endpoint (127.0.0.0/8, ::1, localhost), TLS to any other unless
	// insecure is true; not together with tls.
	Insecure bool `yaml:"insecure" json:"insecure,omitempty"`
	// TLS configures TLS to the collector. Default: the system roots.
	TLS *TracingTLS `yaml:"tls" json:"tls,omitempty"`
}

// TracingTLS configures TLS to the OTLP collector: verification against
// ca_file (or the system roots) and an optional client certificate.
type TracingTLS struct {
	// ServerName is the name verified (and sent as SNI). Default: the
	// endpoint's host.
	ServerName string `yaml:"server_name" json:"server_name,omitempty"`
	// CAFile holds the CA certificates the collector is verified with.
	// Default: the system roots.
	CAFile string `yaml:"ca_file" json:"ca_file,omitempty"`
	// CertFile and KeyFile are a client certificate; both or neither. No
	// default: none.
	CertFile string `yaml:"cert_file" json:"cert_file,omitempty"`
	// KeyFile is CertFile's key. No default.
	KeyFile string `yaml:"key_file" json:"key_file,omitempty"`
	// InsecureSkipVerify turns off verification of the collector's
	// certificate. Default false.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify" json:"insecure_skip_verify,omitempty"`
}
