// Package outlier implements passive health checking — outlier detection —
// with Envoy's semantics: a target that answers real requests with too many
// consecutive 5xx (or refuses too many consecutive connections) is ejected
// from load balancing for BaseEjectionTime × the number of times it has been
// ejected, and re-admitted automatically when that time has passed.
//
// Semantics, following Envoy's outlier detection (and where we chose):
//
//   - Consecutive counters. A 5xx response adds to the consecutive-5xx
//     counter; a connect failure adds to it too (Envoy maps local-origin
//     failures to 5xx unless split_external_local_origin_errors is set) and
//     also to a separate consecutive-connect-failure counter, which has its
//     own, usually lower, threshold. Any success resets both; a 5xx response
//     resets the connect-failure counter (the connection worked).
//   - Ejection time. The n-th ejection lasts BaseEjectionTime × n, capped at
//     MaxEjectionTime (Envoy's max_ejection_time, default 300 s). The
//     multiplier n decays by one for every Interval a target spends not
//     ejected, so a target that recovered for good gets back to the base
//     time.
//   - Re-admission is exact: Run wakes at the ejection deadline rather than
//     at the next Interval sweep as Envoy does.
//   - MaxEjectionPercent. An ejection is allowed while the ejected targets,
//     this one included, stay within MaxEjectionPercent of the targets, and
//     — like Envoy's max_ejection_percent doc ("will eject at least one host
//     regardless of the value") — one target may always be ejected when the
//     percent is above zero, even the only target of an upstream. The
//     balancer's panic threshold then still routes to it when nothing else
//     is left, and an upstream with a failover sends its traffic there. A
//     target over its threshold that may not be ejected now is ejected as
//     soon as room frees, on its next failure.
//
// One Detector serves one upstream and is kept across config reloads, keyed
// by upstream name; Update changes the target set and keeps the counters
// and ejection state of the targets that remain.
//
// The proxy is meant to use it like this:
//
//	d := outlier.New(cfg, outlier.Deps{OnChange: rebuildBalancer})
//	d.Update(addrs)
//	go d.Run(ctx) // re-admits ejected targets and decays multipliers
//
//	// on the request path, after every attempt:
//	switch {
//	case isConnectError(err):
//		d.Report(addr, outlier.ConnectFailure)
//	case err == nil && resp.StatusCode >= 500:
//		d.Report(addr, outlier.ServerError)
//	case err == nil:
//		d.Report(addr, outlier.Success)
//	}
//
// OnChange(addr, ejected) is called without locks held, from the goroutine
// whose Report ejected the target or from Run when it re-admits one; it
// should only schedule a balancer rebuild and update the gauges.
package outlier
