package retry

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
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
	status [10]uint64 // bit per status code 0..639
}

// ErrCondition is wrapped by ParseConditions for an entry it does not know.
var ErrCondition = errors.New("unknown retry condition")

// ParseConditions compiles a retry.on list. Entries (case-insensitive,
// "-" and "_" alike, so Envoy's spelling works too):
//
//	connect_failure  no connection could be made
//	reset            the connection broke before a response (alias: refused_stream)
//	timeout          the per-try timeout expired
//	5xx              any 5xx status, and every failure the gateway would
//	                 itself answer with a 5xx: connect_failure, reset, timeout
//	gateway_error    502, 503 and 504, and likewise connect_failure, reset, timeout
//	retriable_4xx    409 Conflict
//	NNN              that status code (100-599)
//
// The 5xx and gateway_error families include the transport failures as
// Envoy's do: otherwise a route saying "retry on 5xx" would not retry the
// very failures its clients see as 502/504. It reports every bad entry.
func ParseConditions(on []string) (Conditions, error) {
	var c Conditions
	var errs []error
	for _, raw := range on {
		name := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(raw)), "-", "_")
		switch name {
		case "connect_failure":
			c.kinds |= 1 << ConnectFailure
		case "reset", "refused_stream":
			c.kinds |= 1 << Reset
		case "timeout":
			c.kinds |= 1 << Timeout
		case "5xx":
			c.kinds |= 1<<ConnectFailure | 1<<Reset | 1<<Timeout
			for s := 500; s < 600; s++ {
				c.setStatus(s)
			}
		case "gateway_error":
			c.kinds |= 1<<ConnectFailure | 1<<Reset | 1<<Timeout
			c.setStatus(502)
			c.setStatus(503)
			c.setStatus(504)
		case "retriable_4xx":
			c.setStatus(409)
		default:
			s, err := strconv.Atoi(name)
			if err != nil || s < 100 || s > 599 {
				errs = append(errs, fmt.Errorf("%w %q", ErrCondition, raw))
				continue
			}
			c.setStatus(s)
		}
	}
	return c, errors.Join(errs...)
}

func (c *Conditions) setStatus(s int) { c.status[s>>6] |= 1 << (s & 63) }

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

// Empty reports whether c retries nothing.
func (c *Conditions) Empty() bool { return *c == Conditions{} }
