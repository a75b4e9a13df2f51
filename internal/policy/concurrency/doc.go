// Package concurrency is the `concurrency_limit` policy: it bounds how many
// requests of the routes that list it are in flight at once, queues a few
// more for a short while, and sheds the rest.
//
// Config:
//
//	policies:
//	  concurrency:
//	    type: concurrency_limit
//	    max_in_flight: 500      # required, >= 1
//	    max_queue: 1000         # default 0: no queue, shed at once
//	    queue_timeout: 100ms    # default 1s: longest wait in the queue
//	    priority:               # optional
//	      by_role: {premium: 0, free: 2}   # class by role, 0 served first
//	      default: 1            # without a listed role; default: the worst class
//	      max_queue: {2: 50}    # a class's own queue cap; default max_queue
//	    # adaptive: {min: 10, max: 1000, target_latency: 50ms}  # instead of max_in_flight
//
// A request that finds max_in_flight requests running waits in a FIFO queue
// of at most max_queue requests for up to queue_timeout; when the queue is
// full, or the wait times out, it is refused with 503 overloaded and
// `Retry-After: 1`. A slot is released when the request's handler returns,
// also when it panics or the client goes away, so slots never leak.
//
// With priority, each class has its own FIFO queue and cap, and a freed
// slot goes to the first waiter of the best (lowest) class waiting; a
// consumer gets its best listed role's class, others the default.
//
// With adaptive, the limit is found from latency by AIMD (see aimd in
// semaphore.go): it starts at min, a request slower than target_latency
// cuts it to 90 % at most once per round trip, and every limit requests
// within the target raise it by one; it stays within min and max.
//
// The counters live outside the config snapshot, keyed by the policy name,
// max_in_flight and the queue caps: a reload that keeps those settings keeps
// counting the requests already in flight (queue_timeout may change
// freely). A policy listed on several routes shares one limit across them.
//
// Metrics: rampart_concurrency_in_flight, rampart_concurrency_queued and
// rampart_concurrency_limit gauges by policy; shed requests count in
// rampart_http_requests_total with code 503.
package concurrency
