// Package retry holds the pieces of a route's retry policy: which failures
// are retried (Conditions), how long to wait between attempts (Backoff,
// ParseRetryAfter) and how many retries an upstream may receive in total
// (Budget). The proxy owns the loop; this package only decides.
//
// The proxy is meant to use it like this (one Budget per route and
// upstream, kept outside the config snapshot so a reload does not reset it;
// one Conditions per route, compiled once):
//
//	on, err := config.ParseRetryOn(route.Retry.On) // at compile time
//	cond := retry.New(on)
//	budget := retry.NewBudget(20, 10, 0, nil)          // 20 %, 10/s, 10 s window
//
//	budget.RecordRequest() // once per client request, not per attempt
//	for attempt := 0; ; attempt++ {
//		res, err := try(ctx, target)
//		kind, status := classify(res, err)
//		if attempt+1 >= attempts || !cond.ShouldRetry(kind, status) ||
//			!replayable || responseStarted {
//			return res, err
//		}
//		wait := retry.Backoff(attempt, base, max, nil)
//		if d, ok := retry.ParseRetryAfter(res.Header.Get("Retry-After"), time.Now()); ok {
//			wait = max(wait, d) // honour the upstream, RFC 9110 section 10.2.3
//		}
//		if wait >= time.Until(deadline) || !budget.TryRetry() || !breaker.TryAcquireRetry() {
//			return res, err // never outlive the route timeout
//		}
//		sleep(ctx, wait) // then pick a different target if there is one
//	}
//
// Budget semantics follow Linkerd (and Finagle's RetryBudget): over a
// sliding window (default 10 s) retries may add at most percent % to the
// original requests, plus minPerSecond × window seconds so that a
// low-traffic route can still retry. During a total outage an upstream
// therefore sees at most about (1 + percent/100) × requests + the minimum,
// however many attempts a route allows.
package retry
