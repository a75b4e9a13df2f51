package config

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults of a circuit_breaker.trip key left out.
const (
	DefaultTripConsecutiveFailures = 5
	DefaultTripFailureRatio        = 0.5
	DefaultTripMinRequests         = 20
	DefaultTripWindow              = Duration(10 * time.Second)
	DefaultTripOpenFor             = Duration(5 * time.Second)
	DefaultTripMaxOpenFor          = Duration(60 * time.Second)
	DefaultTripHalfOpenRequests    = 3
)

// DefaultTripStatuses are the upstream statuses that count as failures
// when trip.statuses is left out: every 5xx except 501 Not Implemented,
// which says that this request cannot be served, not that the service is
// failing (the cache's stale_if_error makes the same exception).
var DefaultTripStatuses = []string{"500", "502-599"}

// CircuitTrip is a failure-tripped circuit breaker (closed, open,
// half-open) for one upstream, beside the concurrency limits of
// CircuitBreaker. A failure is a response whose status is in Statuses, a
// connect failure, a reset or a timeout; any other response is a success.
type CircuitTrip struct {
	// ConsecutiveFailures opens the circuit after this many failures in a
	// row. Default 5; at least 1.
	ConsecutiveFailures int `yaml:"consecutive_failures" json:"consecutive_failures"`
	// FailureRatio opens the circuit when failures make up at least this
	// share of the requests in Window (and there are MinRequests of them).
	// Default 0.5; in (0, 1].
	FailureRatio float64 `yaml:"failure_ratio" json:"failure_ratio"`
	// MinRequests is the number of requests in Window below which
	// FailureRatio is not applied. Default 20; at least 1.
	MinRequests int `yaml:"min_requests" json:"min_requests"`
	// Window is the sliding window of FailureRatio, kept as 10 buckets of
	// Window/10 each. Default 10s; positive.
	Window Duration `yaml:"window" json:"window"`
	// OpenFor is how long the circuit stays open the first time before
	// half-open probes are let through. Default 5s; positive.
	OpenFor Duration `yaml:"open_for" json:"open_for"`
	// MaxOpenFor caps OpenFor × 2^n, the open time after the n-th failed
	// half-open probe in a row; also how long half-open probes may take
	// before they count as failed. Default 60s, or OpenFor if that is
	// longer; at least OpenFor.
	MaxOpenFor Duration `yaml:"max_open_for" json:"max_open_for"`
	// HalfOpenRequests is the number of probe requests let through while
	// half-open; when all of them succeed the circuit closes, when one
	// fails it opens again. Default 3; at least 1.
	HalfOpenRequests int `yaml:"half_open_requests" json:"half_open_requests"`
	// Statuses are the upstream statuses that count as failures: codes
	// ("503"), ranges ("502-504") or classes ("5xx"), each within 400-599.
	// Default ["500", "502-599"]: every 5xx except 501. An empty list
	// counts only connect failures, resets and timeouts.
	Statuses []string `yaml:"statuses" json:"statuses"`
}

// ParseStatusRange reads one entry of CircuitTrip.Statuses: "503",
// "502-504" or "5xx". It returns the inclusive range of statuses it names,
// which lies within 400-599.
func ParseStatusRange(s string) (lo, hi int, err error) {
	s = strings.TrimSpace(s)
	switch {
	case len(s) == 3 && (s[1:] == "xx" || s[1:] == "XX"):
		d := s[0]
		if d != '4' && d != '5' {
			return 0, 0, fmt.Errorf("invalid status class %q (want 4xx or 5xx)", s)
		}
		lo = int(d-'0') * 100
		return lo, lo + 99, nil
	case strings.Contains(s, "-"):
		a, b, _ := strings.Cut(s, "-")
		lo, err1 := strconv.Atoi(strings.TrimSpace(a))
		hi, err2 := strconv.Atoi(strings.TrimSpace(b))
		if err1 != nil || err2 != nil {
			return 0, 0, fmt.Errorf("invalid status range %q (want e.g. 502-504)", s)
		}
		if lo > hi {
			return 0, 0, fmt.Errorf("invalid status range %q: %d is above %d", s, lo, hi)
		}
		if lo < 400 || hi > 599 {
			return 0, 0, fmt.Errorf("status range %q out of range 400-599", s)
		}
		return lo, hi, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, 0, fmt.Errorf("invalid status %q (want a code such as 503, a range such as 502-504, or 5xx)", s)
	}
	if n < 400 || n > 599 {
		return 0, 0, fmt.Errorf("status %d out of range 400-599", n)
	}
	return n, n, nil
}

// applyTripDefaults fills in the defaults of every circuit_breaker.trip.
func (c *Config) applyTripDefaults() {
	for name, u := range c.Upstreams {
		if u == nil || u.CircuitBreaker == nil || u.CircuitBreaker.Trip == nil {
			continue
		}
		t := u.CircuitBreaker.Trip
		p := "upstreams." + name + ".circuit_breaker.trip"
		def(c, p+".consecutive_failures", &t.ConsecutiveFailures, DefaultTripConsecutiveFailures)
		def(c, p+".failure_ratio", &t.FailureRatio, DefaultTripFailureRatio)
		def(c, p+".min_requests", &t.MinRequests, DefaultTripMinRequests)
		def(c, p+".window", &t.Window, DefaultTripWindow)
		def(c, p+".open_for", &t.OpenFor, DefaultTripOpenFor)
		def(c, p+".max_open_for", &t.MaxOpenFor, max(DefaultTripMaxOpenFor, t.OpenFor))
		def(c, p+".half_open_requests", &t.HalfOpenRequests, DefaultTripHalfOpenRequests)
		if t.Statuses == nil {
			if _, written := c.pos[p+".statuses"]; !written {
				t.Statuses = slices.Clone(DefaultTripStatuses)
			}
		}
	}
}

// trips checks every circuit_breaker.trip.
func (v *validator) trips() {
	for _, name := range slices.Sorted(maps.Keys(v.c.Upstreams)) {
		u := v.c.Upstreams[name]
		if u == nil || u.CircuitBreaker == nil || u.CircuitBreaker.Trip == nil {
			continue
		}
		p := "upstreams." + name + ".circuit_breaker.trip"
		v.trip(p, u.CircuitBreaker.Trip)
	}
}

func (v *validator) trip(p string, t *CircuitTrip) {
	if t.ConsecutiveFailures < 1 {
		v.errorf(p+".consecutive_failures", "must be at least 1")
	}
	if !(t.FailureRatio > 0 && t.FailureRatio <= 1) {
		v.errorf(p+".failure_ratio", "%v out of range (0, 1]", t.FailureRatio)
	}
	if t.MinRequests < 1 {
		v.errorf(p+".min_requests", "must be at least 1")
	}
	if t.Window <= 0 {
		v.errorf(p+".window", "must be positive")
	}
	if t.OpenFor <= 0 {
		v.errorf(p+".open_for", "must be positive")
	}
	switch {
	case t.MaxOpenFor <= 0:
		v.errorf(p+".max_open_for", "must be positive")
	case t.OpenFor > 0 && t.MaxOpenFor < t.OpenFor:
		v.errorf(p+".max_open_for", "must not be less than open_for (%v)", t.OpenFor)
	}
	if t.HalfOpenRequests < 1 {
		v.errorf(p+".half_open_requests", "must be at least 1")
	}
	seen := map[string]int{}
	for j, s := range t.Statuses {
		sp := idx(p+".statuses", j)
		if _, _, err := ParseStatusRange(s); err != nil {
			v.errorf(sp, "%v", err)
			continue
		}
		if first, dup := seen[s]; dup {
			v.errorf(sp, "duplicate status %q (also statuses[%d])", s, first)
			continue
		}
		seen[s] = j
	}
}
