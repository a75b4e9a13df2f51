package retry

import (
	"github.com/rampart-gw/rampart/internal/config"
)

// ErrorKind classifies how an upstream attempt failed before, or instead
// of, producing a response status.
type ErrorKind uint8

// The kinds of failure the proxy reports to ShouldRetry.
const (
	// Response means the upstream answered; the status decides.
	Response ErrorKind = iota
	// ConnectFailure means no connection could be made: the request never
	// left, so retrying is safe even for non-idempotent methods.
	ConnectFailure
	// Reset means the connection broke before a complete response head.
	Reset
	// Timeout means the per-try timeout expired before a response head.
	Timeout
)

// Conditions is a compiled retry.on list. The zero value retries nothing.
// It is a small value type: copy it freely, it is read-only after parsing.
type Conditions struct {
	kinds  uint8      // bit per ErrorKind
	grpc   uint32     // bit per gRPC status code 0..31 (grpc:NAME)
	status [10]uint64 // bit per status code 0..639
}

// New compiles a retry.on list that config.ParseRetryOn parsed; config
// holds the names and their meaning (config.RetryConditions), this only
// lays them out for ShouldRetry.
func New(on config.RetryOn) Conditions {
	var c Conditions
	if on.ConnectFailure {
		c.kinds |= 1 << ConnectFailure
	}
	if on.Reset {
		c.kinds |= 1 << Reset
	}
	if on.Timeout {
		c.kinds |= 1 << Timeout
	}
	c.grpc = on.GRPC
	for _, s := range on.Statuses {
		if s >= 0 && s < 640 {
			c.status[s>>6] |= 1 << (s & 63)
		}
	}
	return c
}

// ParseConditions parses a retry.on list with config.ParseRetryOn, the
// one grammar Validate checks, and compiles it. It reports every bad
// entry.
func ParseConditions(on []string) (Conditions, error) {
	r, err := config.ParseRetryOn(on)
	return New(r), err
}

// ShouldRetry reports whether a failed attempt of the given kind (and, for
// Response, status) is retryable under c. It is allocation-free.
func (c *Conditions) ShouldRetry(kind ErrorKind, status int) bool {
	if kind != Response {
		return c.kinds&(1<<kind) != 0
	}
	if status < 0 || status >= 640 {
		return false
	}
	return c.status[status>>6]&(1<<(status&63)) != 0
}

// GRPC reports whether c lists any gRPC status (grpc:NAME).
func (c *Conditions) GRPC() bool { return c.grpc != 0 }

// ShouldRetryGRPC reports whether a gRPC call that ended with status code
// is retryable under c. It is allocation-free.
func (c *Conditions) ShouldRetryGRPC(code int) bool {
	return code > 0 && code < 32 && c.grpc&(1<<code) != 0
}

// Empty reports whether c retries nothing.
func (c *Conditions) Empty() bool { return *c == Conditions{} }
