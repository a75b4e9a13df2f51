package breaker

import (
	"math"
	"sync/atomic"

	"github.com/rampart-gw/rampart/internal/config"
)

// Defaults for a zero Config field: config's (package config is their
// home, issue 16).
const (
	// DefaultMaxConnections matches Envoy's default.
	DefaultMaxConnections = config.DefaultBreakerMaxConnections
	// DefaultMaxPendingRequests matches Envoy's default.
	DefaultMaxPendingRequests = config.DefaultBreakerMaxPendingRequests
	// DefaultMaxRequests matches Envoy's default.
	DefaultMaxRequests = config.DefaultBreakerMaxRequests
	// DefaultMaxRetries is far above Envoy's 3. Envoy's default is a common
	// source of spurious "retry overflow" failures: at 300 requests/s with
	// 1 % errors and a 1 s per-try timeout, three concurrent retries are
	// already in flight, so the fourth failing request is not retried even
	// though the upstream is healthy. Retry storms are contained by the
	// retry budget (retry.Budget), which scales with traffic; this limit is
	// only a backstop against unbounded concurrency, so it is set to 1/16 of
	// DefaultMaxRequests: a handful — indeed dozens — of concurrent retries
	// always pass.
	DefaultMaxRetries = config.DefaultBreakerMaxRetries
)

// Config holds the limits of one upstream. A zero field takes its default;
// a negative field means unlimited.
type Config struct {
	// MaxConnections bounds the open connections to all targets of the
	// upstream. Default 1024.
	MaxConnections int
	// MaxPendingRequests bounds the requests waiting for a connection.
	// Default 1024.
	MaxPendingRequests int
	// MaxRequests bounds the requests in flight to the upstream, retries
	// included. Default 1024.
	MaxRequests int
	// MaxRetries bounds the retries in flight to the upstream. Default 64.
	MaxRetries int
}

// Resource names one of the limits.
type Resource int

// The limited resources.
const (
	Connections Resource = iota
	PendingRequests
	Requests
	Retries
	numResources
)

var resourceNames = [numResources]string{"connections", "pending_requests", "requests", "retries"}

// String returns the snake_case name used in metrics and the admin API.
func (r Resource) String() string {
	if r < 0 || r >= numResources {
		return "unknown"
	}
	return resourceNames[r]
}

// counter is one limit padded to its own cache line, so that contention on
// one resource (requests) does not slow the others.
type counter struct {
	n   atomic.Int64
	max int64
	_   [48]byte
}

func (c *counter) tryAcquire() bool {
	for {
		n := c.n.Load()
		if n >= c.max {
			return false
		}
		if c.n.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (c *counter) release() { c.n.Add(-1) }

// Breaker enforces the limits of one upstream. It is safe for concurrent use
// and allocation-free; the zero value is not usable, call New.
type Breaker struct {
	c [numResources]counter
}

// New returns a Breaker with cfg's limits (defaults applied).
func New(cfg Config) *Breaker {
	b := &Breaker{}
	b.c[Connections].max = limit(cfg.MaxConnections, DefaultMaxConnections)
	b.c[PendingRequests].max = limit(cfg.MaxPendingRequests, DefaultMaxPendingRequests)
	b.c[Requests].max = limit(cfg.MaxRequests, DefaultMaxRequests)
	b.c[Retries].max = limit(cfg.MaxRetries, DefaultMaxRetries)
	return b
}

func limit(v, def int) int64 {
	switch {
	case v == 0:
		return int64(def)
	case v < 0:
		return math.MaxInt64
	}
	return int64(v)
}

// TryAcquireRequest reserves a request slot; it reports false, at once, when
// MaxRequests are already in flight. Pair a true result with ReleaseRequest.
func (b *Breaker) TryAcquireRequest() bool { return b.c[Requests].tryAcquire() }

// ReleaseRequest frees a slot taken by TryAcquireRequest.
func (b *Breaker) ReleaseRequest() { b.c[Requests].release() }

// TryAcquireRetry reserves a retry slot; pair a true result with
// ReleaseRetry once the retried attempt is over.
func (b *Breaker) TryAcquireRetry() bool { return b.c[Retries].tryAcquire() }

// ReleaseRetry frees a slot taken by TryAcquireRetry.
func (b *Breaker) ReleaseRetry() { b.c[Retries].release() }

// TryAcquirePending reserves a place in the queue for a connection; pair a
// true result with ReleasePending once the request has a connection or gave
// up waiting.
func (b *Breaker) TryAcquirePending() bool { return b.c[PendingRequests].tryAcquire() }

// ReleasePending frees a place taken by TryAcquirePending.
func (b *Breaker) ReleasePending() { b.c[PendingRequests].release() }

// TryAcquireConnection reserves a connection slot before dialling; pair a
// true result with ReleaseConnection when the connection closes (or the
// dial fails).
func (b *Breaker) TryAcquireConnection() bool { return b.c[Connections].tryAcquire() }

// ReleaseConnection frees a slot taken by TryAcquireConnection.
func (b *Breaker) ReleaseConnection() { b.c[Connections].release() }

// Open reports whether any limit is saturated right now, that is whether
// the next TryAcquire of that resource would fail. It backs the
// rampart_upstream_circuit_open gauge.
func (b *Breaker) Open() bool {
	for i := range b.c {
		if b.c[i].n.Load() >= b.c[i].max {
			return true
		}
	}
	return false
}

// Saturated reports whether resource r is at its limit.
func (b *Breaker) Saturated(r Resource) bool {
	c := &b.c[r]
	return c.n.Load() >= c.max
}

// Usage is the current count and the limit of one resource.
type Usage struct {
	Active int64 `json:"active"`
	// Max is math.MaxInt64 for an unlimited resource.
	Max int64 `json:"max"`
}

// Stats is a point-in-time view of all resources, for the admin API.
type Stats struct {
	Connections     Usage `json:"connections"`
	PendingRequests Usage `json:"pending_requests"`
	Requests        Usage `json:"requests"`
	Retries         Usage `json:"retries"`
	Open            bool  `json:"open"`
}

// Stats returns the current usage. The counters are read one by one, so
// under load the view is approximate.
func (b *Breaker) Stats() Stats {
	u := func(r Resource) Usage { return Usage{Active: b.c[r].n.Load(), Max: b.c[r].max} }
	return Stats{
		Connections:     u(Connections),
		PendingRequests: u(PendingRequests),
		Requests:        u(Requests),
		Retries:         u(Retries),
		Open:            b.Open(),
	}
}
