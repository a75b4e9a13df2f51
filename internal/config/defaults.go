package config

import (
	"fmt"
	"strconv"
	"time"
)

// Defaults for keys left out of a config. Each is documented on its field
// and in docs/configuration.md.
const (
	DefaultAdminAddress      = "127.0.0.1:9901"
	DefaultDrainTimeout      = Duration(30 * time.Second)
	DefaultUpgradeTimeout    = Duration(30 * time.Second)
	DefaultMaxHeaderBytes    = 61440
	DefaultMaxBodyBytes      = 10 << 20
	DefaultReadHeaderTimeout = Duration(10 * time.Second)
	DefaultIdleTimeout       = Duration(60 * time.Second)
	// DefaultTCPIdleTimeout is limits.idle_timeout of a tcp listener: a
	// database or broker connection may rest for minutes (Envoy's
	// tcp_proxy default).
	DefaultTCPIdleTimeout     = Duration(time.Hour)
	DefaultMaxConnections     = 100000
	DefaultMaxConnsPerIP      = 1024
	DefaultMaxHeaders         = 100
	DefaultMaxURIBytes        = 8192
	DefaultMaxRequestsPerConn = 1000
	DefaultMaxStreams         = 100
	DefaultConnectTimeout     = Duration(5 * time.Second)
	DefaultMaxIdlePerTarget   = 64
	// DefaultPingInterval and DefaultPingTimeout are keepalive's HTTP/2
	// PING health of pooled upstream connections.
	DefaultPingInterval      = Duration(30 * time.Second)
	DefaultPingTimeout       = Duration(15 * time.Second)
	DefaultRouteTimeout      = Duration(15 * time.Second)
	DefaultRequestIDHeader   = "X-Request-ID"
	DefaultBodyBufferBytes   = 64 << 10
	DefaultBufferMemoryBytes = 64 << 20
	DefaultRequestBuffering  = "auto"

	// Mirroring (routes[].mirror).
	DefaultMirrorMaxInFlight  = 100
	DefaultMirrorMaxBodyBytes = 1 << 20

	// Active health checks (health_check.active).
	DefaultHealthInterval     = Duration(5 * time.Second)
	DefaultHealthTimeout      = Duration(time.Second)
	DefaultHealthyThreshold   = 2
	DefaultUnhealthyThreshold = 3
	// Passive health, outlier detection (health_check.passive). The
	// default max_ejection_time is DefaultMaxEjectionTime or
	// base_ejection_time, whichever is longer (Envoy's rule).
	DefaultConsecutive5xx             = 5
	DefaultConsecutiveConnectFailures = 5
	DefaultOutlierInterval            = Duration(10 * time.Second)
	DefaultBaseEjectionTime           = Duration(30 * time.Second)
	DefaultMaxEjectionTime            = Duration(300 * time.Second)
	DefaultMaxEjectionPercent         = 50
	// DefaultPanicThreshold is health_check.panic_threshold, a percentage.
	DefaultPanicThreshold = 50

	// Discovery (upstreams.X.discovery).
	DefaultDiscoveryRefresh = Duration(30 * time.Second)
	DefaultDiscoveryTimeout = Duration(2 * time.Second)
	DefaultDiscoveryPrefix  = "/rampart/services"

	// Circuit breaker limits (circuit_breaker); Envoy's, but for
	// max_retries, which is far above Envoy's 3 (docs/resilience.md).
	DefaultBreakerMaxConnections     = 1024
	DefaultBreakerMaxPendingRequests = 1024
	DefaultBreakerMaxRequests        = 1024
	DefaultBreakerMaxRetries         = 64
	// Cluster-wide rate limits (cluster.redis, cluster.instances).
	DefaultRedisTimeout   = Duration(50 * time.Millisecond)
	DefaultRedisOnFailure = "local"
	DefaultRedisPrefix    = "rampart:rl:"
	DefaultInstances      = 1
)

// Default returns the config of a document that sets nothing: no
// listeners, upstreams or routes, and every other default applied. It does
// not validate (a config needs a listener and a route).
func Default() *Config {
	c := &Config{}
	c.ApplyDefaults()
	return c
}

// ApplyDefaults fills in every default for a key that was not in the
// document. A value that was written explicitly is kept even when it is
// zero; for a config built in Go rather than parsed, every zero value is
// taken as absent. Parse calls it; call it only before Validate.
func (c *Config) ApplyDefaults() {
	for i := range c.Listeners {
		l := &c.Listeners[i]
		p := "listeners[" + strconv.Itoa(i) + "]"
		def(c, p+".name", &l.Name, fmt.Sprintf("listener-%d", i))
		def(c, p+".protocol", &l.Protocol, "http")
		def(c, p+".limits.max_header_bytes", &l.Limits.MaxHeaderBytes, DefaultMaxHeaderBytes)
		def(c, p+".limits.max_body_bytes", &l.Limits.MaxBodyBytes, DefaultMaxBodyBytes)
		def(c, p+".limits.read_header_timeout", &l.Limits.ReadHeaderTimeout, DefaultReadHeaderTimeout)
		if l.Protocol == "tcp" {
			def(c, p+".limits.idle_timeout", &l.Limits.IdleTimeout, DefaultTCPIdleTimeout)
		}
		def(c, p+".limits.idle_timeout", &l.Limits.IdleTimeout, DefaultIdleTimeout)
		def(c, p+".limits.max_connections", &l.Limits.MaxConnections, DefaultMaxConnections)
		def(c, p+".limits.max_connections_per_ip", &l.Limits.MaxConnectionsPerIP, DefaultMaxConnsPerIP)
		def(c, p+".limits.max_headers", &l.Limits.MaxHeaders, DefaultMaxHeaders)
		def(c, p+".limits.max_uri_bytes", &l.Limits.MaxURIBytes, DefaultMaxURIBytes)
		def(c, p+".limits.max_requests_per_connection", &l.Limits.MaxRequestsPerConnection, DefaultMaxRequestsPerConn)
		def(c, p+".limits.max_concurrent_streams", &l.Limits.MaxConcurrentStreams, DefaultMaxStreams)
		def(c, p+".limits.body_buffer_bytes", &l.Limits.BodyBufferBytes, DefaultBodyBufferBytes)
		def(c, p+".limits.buffer_memory_bytes", &l.Limits.BufferMemoryBytes, DefaultBufferMemoryBytes)
		if t := l.TLS; t != nil {
			def(c, p+".tls.min_version", &t.MinVersion, "1.2")
			def(c, p+".tls.client_auth.mode", &t.ClientAuth.Mode, "none")
		}
	}
	def(c, "admin.address", &c.Admin.Address, DefaultAdminAddress)
	def(c, "drain_timeout", &c.DrainTimeout, DefaultDrainTimeout)
	def(c, "upgrade.timeout", &c.Upgrade.Timeout, DefaultUpgradeTimeout)

	for name, u := range c.Upstreams {
		if u == nil {
			continue
		}
		p := "upstreams." + name
		def(c, p+".balancer", &u.Balancer, "round_robin")
		if u.Balancer == "ring_hash" || u.Balancer == "maglev" {
			def(c, p+".hash_key", &u.HashKey, "ip")
		}
		def(c, p+".protocol", &u.Protocol, "http1")
		def(c, p+".connect_timeout", &u.ConnectTimeout, DefaultConnectTimeout)
		def(c, p+".keepalive.max_idle_per_target", &u.Keepalive.MaxIdlePerTarget, DefaultMaxIdlePerTarget)
		def(c, p+".keepalive.idle_timeout", &u.Keepalive.IdleTimeout, DefaultIdleTimeout)
		for j := range u.Targets {
			def(c, p+".targets["+strconv.Itoa(j)+"].weight", &u.Targets[j].Weight, 1)
		}
		if d := u.Discovery; d != nil {
			def(c, p+".discovery.type", &d.Type, "static")
			if d.Type == "dns" || d.Type == "srv" {
				def(c, p+".discovery.refresh", &d.Refresh, Refresh{Every: DefaultDiscoveryRefresh})
			}
			if d.Type == "dns" || d.Type == "srv" || d.Type == "etcd" {
				def(c, p+".discovery.timeout", &d.Timeout, DefaultDiscoveryTimeout)
			}
			if d.Type == "etcd" {
				def(c, p+".discovery.prefix", &d.Prefix, DefaultDiscoveryPrefix)
			}
		}
		if h := u.HealthCheck; h != nil {
			if a := h.Active; a != nil {
				q := p + ".health_check.active"
				def(c, q+".interval", &a.Interval, DefaultHealthInterval)
				def(c, q+".timeout", &a.Timeout, DefaultHealthTimeout)
				def(c, q+".healthy_threshold", &a.HealthyThreshold, DefaultHealthyThreshold)
				def(c, q+".unhealthy_threshold", &a.UnhealthyThreshold, DefaultUnhealthyThreshold)
			}
			if ps := h.Passive; ps != nil {
				q := p + ".health_check.passive"
				def(c, q+".consecutive_5xx", &ps.Consecutive5xx, DefaultConsecutive5xx)
				// 0 also means the default (documented on the field).
				if ps.ConsecutiveConnectFailures == 0 {
					ps.ConsecutiveConnectFailures = DefaultConsecutiveConnectFailures
				}
				def(c, q+".interval", &ps.Interval, DefaultOutlierInterval)
				def(c, q+".base_ejection_time", &ps.BaseEjectionTime, DefaultBaseEjectionTime)
				def(c, q+".max_ejection_time", &ps.MaxEjectionTime, max(DefaultMaxEjectionTime, ps.BaseEjectionTime))
				def(c, q+".max_ejection_percent", &ps.MaxEjectionPercent, DefaultMaxEjectionPercent)
			}
		}
		if b := u.CircuitBreaker; b != nil {
			q := p + ".circuit_breaker"
			def(c, q+".max_connections", &b.MaxConnections, DefaultBreakerMaxConnections)
			def(c, q+".max_pending_requests", &b.MaxPendingRequests, DefaultBreakerMaxPendingRequests)
			def(c, q+".max_requests", &b.MaxRequests, DefaultBreakerMaxRequests)
			def(c, q+".max_retries", &b.MaxRetries, DefaultBreakerMaxRetries)
		}
	}

	for i := range c.Routes {
		r := &c.Routes[i]
		p := "routes[" + strconv.Itoa(i) + "]"
		def(c, p+".name", &r.Name, fmt.Sprintf("route-%d", i))
		def(c, p+".timeout", &r.Timeout, DefaultRouteTimeout)
		def(c, p+".request_buffering", &r.RequestBuffering, DefaultRequestBuffering)
		if m := r.Mirror; m != nil {
			def(c, p+".mirror.percent", &m.Percent, 100)
			def(c, p+".mirror.max_in_flight", &m.MaxInFlight, DefaultMirrorMaxInFlight)
			def(c, p+".mirror.max_body_bytes", &m.MaxBodyBytes, DefaultMirrorMaxBodyBytes)
		}
		if rt := r.Retry; rt != nil {
			q := p + ".retry"
			def(c, q+".attempts", &rt.Attempts, 2)
			if rt.On == nil {
				if _, ok := c.pos[q+".on"]; !ok {
					rt.On = []string{"connect_failure", "reset"}
				}
			}
			def(c, q+".backoff.base", &rt.Backoff.Base, Duration(25*time.Millisecond))
			def(c, q+".backoff.max", &rt.Backoff.Max, Duration(250*time.Millisecond))
			if b := rt.Budget; b != nil {
				def(c, q+".budget.percent", &b.Percent, 20)
				def(c, q+".budget.min_per_second", &b.MinPerSecond, 10)
			}
		}
		if f := r.Fallback; f != nil {
			def(c, p+".fallback.status", &f.Status, 503)
			def(c, p+".fallback.content_type", &f.ContentType, "application/json")
		}
	}

	if rd := c.Cluster.Redis; rd != nil {
		def(c, "cluster.redis.timeout", &rd.Timeout, DefaultRedisTimeout)
		def(c, "cluster.redis.on_failure", &rd.OnFailure, DefaultRedisOnFailure)
		def(c, "cluster.redis.prefix", &rd.Prefix, DefaultRedisPrefix)
		def(c, "cluster.instances", &c.Cluster.Instances, DefaultInstances)
	}
	o := &c.Observability
	def(c, "observability.request_id_header", &o.RequestIDHeader, DefaultRequestIDHeader)
	def(c, "observability.access_log.path", &o.AccessLog.Path, "stdout")
	def(c, "observability.access_log.format", &o.AccessLog.Format, "json")
	if t := o.Tracing; t != nil {
		def(c, "observability.tracing.sample_ratio", &t.SampleRatio, 1)
		def(c, "observability.tracing.protocol", &t.Protocol, "grpc")
		def(c, "observability.tracing.service_name", &t.ServiceName, "rampart")
	}
	c.applyTripDefaults()
}

// def sets *p to v when the key at path was not written and *p is zero.
func def[T comparable](c *Config, path string, p *T, v T) {
	var zero T
	if *p != zero {
		return
	}
	if _, written := c.pos[path]; written {
		return
	}
	*p = v
}
