// Package breaker implements Envoy-style circuit breaking for one upstream:
// four independent concurrency limits (connections, pending requests,
// requests, retries) enforced with lock-free counters.
//
// Unlike the "closed/open/half-open" breakers of Hystrix, an Envoy breaker
// has no state machine and no timers: a limit is either saturated right now
// or it is not, so shedding starts and stops with the load itself and a
// request over a limit is refused at once (503, never after a timeout).
//
// Each upstream owns one Breaker, kept outside the config snapshot and keyed
// by upstream name so a reload does not reset the counters of in-flight
// requests (bulkheads: a slow upstream saturates only its own Breaker).
//
// The proxy is meant to call it like this:
//
//	if !b.TryAcquireRequest() {
//		// 503 {"error":{"code":"circuit_open"}} with Retry-After: 1
//		return errCircuitOpen
//	}
//	defer b.ReleaseRequest()
//	...
//	for attempt := 1; attempt < attempts; attempt++ {
//		if !b.TryAcquireRetry() {
//			break // answer with the last failure; a retry never waits
//		}
//		res, err = try(ctx)
//		b.ReleaseRetry()
//	}
//
// A connection pool calls TryAcquireConnection before dialling and
// ReleaseConnection when the connection closes, and TryAcquirePending /
// ReleasePending around the time a request waits for a free connection.
// The admin API and the rampart_upstream_circuit_open gauge read Open and
// Stats.
//
// Every TryAcquireX that returns true must be paired with exactly one
// ReleaseX; a false return must not be released.
//
// # Failure-tripped breaker
//
// Trip, beside the limits, is the closed/open/half-open state machine of
// Hystrix and resilience4j (config: circuit_breaker.trip). It opens on
// ConsecutiveFailures failures in a row or on FailureRatio over a sliding
// Window, refuses everything for OpenFor, then lets HalfOpenRequests
// probes through; their success closes it, a failure reopens it for
// OpenFor × 2^n up to MaxOpenFor. Each upstream attempt, retries
// included, is meant to go through it like this:
//
//	tk, ok, retryAfter := trip.Allow(now)
//	if !ok {
//		// no attempt: fallback, stale cache, or 503 circuit_open with
//		// Retry-After: RetryAfterSeconds(retryAfter)
//	}
//	res, err := try(ctx)
//	tk.Done(outcome(res, err), time.Now()) // Success, Failure or Ignored
//
// where outcome is Failure for a status in the upstream's StatusSet, a
// connect failure, a reset or a timeout, Ignored when the client went
// away, and Success otherwise.
package breaker
