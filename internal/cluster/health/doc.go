// Package health implements active health checking of upstream targets.
//
// A Checker probes every target on its own goroutine: an HTTP GET of
// Config.Path (2xx and 3xx are healthy; redirects are not followed), with
// Config.GRPC a grpc.health.v1 Check call over HTTP/2 (SERVING is
// healthy), or, with Config.TCP, a bare TCP connect. The first probe runs as soon as the
// target is known, then one every Interval with ±10 % jitter so that many
// gateways do not probe in lock-step. Each probe is bounded by Timeout.
// HealthyThreshold consecutive successes mark an unhealthy target healthy;
// UnhealthyThreshold consecutive failures mark a healthy one unhealthy.
//
// Targets start healthy unless Config.InitialUnhealthy is set: a freshly
// configured upstream takes traffic at once and is removed only when
// proven bad, which is what users expect from a gateway that is reloaded
// often (Envoy starts hosts unhealthy, and a reload there briefly leaves an
// upstream with no host). Health state belongs to the Checker, not to the
// config: Update changes the target set and keeps the state of targets
// that stay, so a reload never sends traffic back to a known-dead target.
//
// The proxy is meant to use it like this, one Checker per upstream kept
// across reloads:
//
//	hc := health.New(health.Config{Path: "/healthz", Interval: 5 * time.Second,
//		Timeout: time.Second, HealthyThreshold: 2, UnhealthyThreshold: 3},
//		health.Deps{OnChange: func(addr string, healthy bool) {
//			gauge.With(upstream, addr).Set(b2f(healthy))
//			rebuildBalancer() // over the targets where hc.Healthy(addr)
//		}})
//	hc.Update(addrs)
//	hc.Start(ctx) // probes every target now, then every interval
//	defer hc.Close()
//	...
//	hc.Update(newAddrs) // on reload or discovery: unchanged targets keep their state
//
// Healthy is lock-free and cheap enough for the request path, but the
// intended use is to rebuild the balancer from OnChange.
package health
