// Package proxy forwards a request to an upstream target and streams the
// response back: HTTP/1.1 and HTTP/2 on both sides, streaming bodies both
// ways (flushing streamed responses such as SSE as they arrive), WebSocket
// upgrades, trailers, the forwarding headers — and the resilience around
// it: circuit breaking, retries with backoff and budgets on another target,
// failover, response caching with stale-if-error, and fallbacks. It is the
// terminal handler of a route's policy chain.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampart-gw/rampart/internal/cluster"
	"github.com/rampart-gw/rampart/internal/cluster/balancer"
	"github.com/rampart-gw/rampart/internal/cluster/cache"
	"github.com/rampart-gw/rampart/internal/cluster/outlier"
	"github.com/rampart-gw/rampart/internal/cluster/retry"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/exchange"
	"github.com/rampart-gw/rampart/internal/telemetry"
)

// ErrBodyTooLarge is returned by request bodies that exceed the listener's
// max_body_bytes; the proxy answers 413 when it sees it.
var ErrBodyTooLarge = errors.New("request body too large")

// Backend is one weighted branch of a route.
type Backend struct {
	Upstream *cluster.Upstream
	Weight   int
}

// Retry is a route's compiled retry policy.
type Retry struct {
	// Attempts is the total number of attempts, the first included.
	Attempts int
	// PerTryTimeout bounds each attempt's wait for response headers.
	PerTryTimeout time.Duration
	On            retry.Conditions
	BackoffBase   time.Duration
	BackoffMax    time.Duration
	// Budget, when set, caps retries as a share of requests.
	Budget *retry.Budget
	// NonIdempotent allows retrying POST/PATCH after the request was sent.
	NonIdempotent bool
	// MaxReplayBytes bounds the request body kept for replay. Default 64 KiB.
	MaxReplayBytes int64
}

// Cache is a route's compiled response cache setting.
type Cache struct {
	Store        *cache.Cache
	TTL          time.Duration
	StaleIfError time.Duration
}

// Config is the compiled forwarding part of one route.
type Config struct {
	Route string
	// Prefix is the route's matched path prefix (for strip/rewrite).
	Prefix string
	// StripPrefix removes Prefix from the forwarded path.
	StripPrefix bool
	// Rewrite, when set (HasRewrite), replaces Prefix.
	Rewrite    string
	HasRewrite bool
	// Timeout bounds the wait for the upstream's response headers, retries
	// included; 0 = none.
	Timeout time.Duration
	// Backends are the upstreams to choose from, by weight.
	Backends []Backend
	// RequestIDHeader is the canonical request ID header name.
	RequestIDHeader string
	Retry           *Retry
	Fallback        *config.Fallback
	Cache           *Cache
}

// Deps are the shared services a Proxy uses.
type Deps struct {
	Metrics *telemetry.Metrics
	Log     *slog.Logger
	// Upgraded tracks hijacked (WebSocket) connections so that shutdown can
	// close them after the drain timeout. May be nil.
	Upgraded *ConnSet
}

// Proxy forwards requests for one route.
type Proxy struct {
	cfg         Config
	deps        Deps
	totalWeight int
	// series caches the upstream metric series per upstream and target
	// (seriesKey -> *targetSeries), so that an attempt does not hash
	// label values.
	series sync.Map
}

type seriesKey struct {
	up     *cluster.Upstream
	target *balancer.Target
}

// targetSeries are the upstream metric series of one target of one
// upstream.
type targetSeries struct {
	duration prometheus.Observer // rampart_upstream_request_duration_seconds{upstream}
	m        *telemetry.Metrics
	up, addr string
	codes    sync.Map // count's key (int) -> prometheus.Counter
}

func (p *Proxy) targetSeries(up *cluster.Upstream, target *balancer.Target) *targetSeries {
	k := seriesKey{up, target}
	if s, ok := p.series.Load(k); ok {
		return s.(*targetSeries)
	}
	m := p.deps.Metrics
	s := &targetSeries{duration: m.UpstreamDuration.WithLabelValues(up.Name), m: m, up: up.Name, addr: target.Addr}
	v, _ := p.series.LoadOrStore(k, s)
	return v.(*targetSeries)
}

// count increments rampart_upstream_requests_total{code=label}. key
// identifies the label: the status code, or a negative number per error
// kind (label is then the error label).
func (s *targetSeries) count(key int, label string) {
	if c, ok := s.codes.Load(key); ok {
		c.(prometheus.Counter).Inc()
		return
	}
	if key >= 0 {
		label = s.m.Code(key)
	}
	c := s.m.UpstreamRequests.WithLabelValues(s.up, s.addr, label)
	s.codes.Store(key, c)
	c.Inc()
}

// New returns the forwarding handler for one route.
func New(cfg Config, deps Deps) (*Proxy, error) {
	if len(cfg.Backends) == 0 {
		return nil, errors.New("route has no upstream")
	}
	p := &Proxy{cfg: cfg, deps: deps}
	for _, b := range cfg.Backends {
		if b.Weight <= 0 {
			return nil, fmt.Errorf("upstream %s: weight must be positive", b.Upstream.Name)
		}
		p.totalWeight += b.Weight
	}
	if r := cfg.Retry; r != nil {
		if r.Attempts < 1 {
			r.Attempts = 1
		}
		if r.MaxReplayBytes <= 0 {
			r.MaxReplayBytes = 64 << 10
		}
	}
	if deps.Log == nil {
		p.deps.Log = slog.Default()
	}
	return p, nil
}

func (p *Proxy) backend() *cluster.Upstream {
	if len(p.cfg.Backends) == 1 {
		return p.cfg.Backends[0].Upstream
	}
	x := rand.IntN(p.totalWeight)
	for _, b := range p.cfg.Backends {
		if x < b.Weight {
			return b.Upstream
		}
		x -= b.Weight
	}
	return p.cfg.Backends[len(p.cfg.Backends)-1].Upstream
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// failure is a gateway-made error waiting to be answered.
type failure struct {
	status     int
	code, msg  string
	retryAfter string
}

// ServeHTTP forwards r to a target of the route's upstream.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ex := exchange.From(r.Context())
	if ex == nil {
		ex = &exchange.Exchange{}
	}
	up := p.backend()
	// Failover: an upstream with no healthy target hands its traffic to
	// its failover upstream (bounded, in case of a cycle).
	for hops := 0; hops < 4 && up.Failover != nil && up.NoHealthy(); hops++ {
		up = up.Failover
	}
	ex.Upstream = up.Name

	cacheKey := ""
	if c := p.cfg.Cache; c != nil && (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.Header.Get("Authorization") == "" {
		cacheKey = cache.Key(p.cfg.Route, r)
		if e, fresh, ok := c.Store.Get(cacheKey, time.Now()); ok && fresh {
			w.Header().Set("X-Cache", "HIT")
			e.Serve(w, time.Now())
			return
		}
	}

	b := up.Breaker()
	if !b.TryAcquireRequest() {
		p.fail(w, r, cacheKey, failure{http.StatusServiceUnavailable, "circuit_open",
			"upstream " + up.Name + " is at its max_requests limit", "1"})
		return
	}
	defer b.ReleaseRequest()
	if rt := p.cfg.Retry; rt != nil && rt.Budget != nil {
		rt.Budget.RecordRequest()
	}

	upgrade := p.prepare(r)
	p.forward(w, r, ex, up, upgrade, cacheKey)
}

// prepare edits the inbound request's headers for forwarding, in place, and
// returns the protocol being upgraded to ("" for none).
func (p *Proxy) prepare(r *http.Request) string {
	upgrade := upgradeType(r.Header)
	if upgrade != "" && !strings.EqualFold(upgrade, "websocket") {
		upgrade = "" // only WebSocket may change protocols through the gateway (no h2c smuggling)
	}
	keepTE := hasToken(r.Header["Te"], "trailers")
	removeHopByHop(r.Header)
	delete(r.Header, "Expect") // the gateway already answered 100-continue
	if keepTE {
		r.Header["Te"] = []string{"trailers"} // gRPC needs it, and it is safe end to end
	}
	if upgrade != "" {
		r.Header["Connection"] = []string{"Upgrade"}
		r.Header["Upgrade"] = []string{upgrade}
	}
	p.setForwarded(r)
	return upgrade
}

// forward runs the attempts (one, or more with retries) and answers.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, ex *exchange.Exchange, up *cluster.Upstream, upgrade, cacheKey string) {
	rt := p.cfg.Retry
	attempts := 1
	if rt != nil && upgrade == "" {
		attempts = rt.Attempts
	}
	var now, deadline time.Time
	if p.cfg.Timeout > 0 {
		now = time.Now()
		deadline = now.Add(p.cfg.Timeout)
	}
	var body *replay
	if attempts > 1 && r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		body = &replay{src: r.Body, limit: rt.MaxReplayBytes}
	}

	var tried []*balancer.Target
	m := p.deps.Metrics
	for attempt := 0; ; attempt++ {
		var target *balancer.Target
		if attempt == 0 {
			target = up.Pick(r)
		} else {
			target = up.PickOther(r, tried)
		}
		if target == nil {
			p.fail(w, r, cacheKey, failure{http.StatusServiceUnavailable, "no_healthy_upstream",
				"upstream " + up.Name + " has no healthy target", "1"})
			return
		}
		tried = append(tried, target)
		ex.Target = target.Addr
		ex.Attempts++

		res := p.attempt(r, up, target, body, deadline, now, attempt, upgrade)
		now = time.Time{} // a retry reads the clock again
		if res.err == nil {
			if attempt+1 < attempts && p.retryable(r, retry.Response, res.resp.StatusCode, body) {
				if wait, ok := p.backoff(attempt, res.resp, deadline); ok && p.acquireRetry(up) {
					res.discard()
					recycle(res)
					p.countRetry(m, up)
					if !sleep(r.Context(), wait) {
						p.fail(w, r, cacheKey, failure{499, "client_closed_request", "client closed the request", ""})
						return
					}
					continue
				}
			}
			if cacheKey != "" && res.resp.StatusCode >= 500 && res.resp.StatusCode != http.StatusNotImplemented {
				if p.serveStale(w, cacheKey) {
					res.discard()
					recycle(res)
					return
				}
			}
			p.respond(w, r, ex, res, upgrade, cacheKey)
			recycle(res) // not when respond panics: the collector takes it
			return
		}

		f := p.classify(r, res, ex)
		kind := res.kind
		recycle(res)
		if f.status == 499 {
			p.fail(w, r, cacheKey, f)
			return
		}
		if attempt+1 < attempts && kind != kindOverflow && p.retryable(r, kind, 0, body) {
			if wait, ok := p.backoff(attempt, nil, deadline); ok && p.acquireRetry(up) {
				p.countRetry(m, up)
				if !sleep(r.Context(), wait) {
					p.fail(w, r, cacheKey, failure{499, "client_closed_request", "client closed the request", ""})
					return
				}
				continue
			}
		}
		p.fail(w, r, cacheKey, f)
		return
	}
}

func (p *Proxy) countRetry(m *telemetry.Metrics, up *cluster.Upstream) {
	if m != nil {
		m.Retries.WithLabelValues(p.cfg.Route, up.Name).Inc()
	}
}

// acquireRetry takes a retry slot from the budget and the breaker, and
// releases the breaker slot at once: max_retries bounds retries being
// decided concurrently, the budget bounds their rate.
func (p *Proxy) acquireRetry(up *cluster.Upstream) bool {
	if b := p.cfg.Retry.Budget; b != nil && !b.TryRetry() {
		return false
	}
	br := up.Breaker()
	if !br.TryAcquireRetry() {
		return false
	}
	br.ReleaseRetry()
	return true
}

// retryable reports whether an attempt that ended with kind/status may be
// retried for r.
func (p *Proxy) retryable(r *http.Request, kind retry.ErrorKind, status int, body *replay) bool {
	rt := p.cfg.Retry
	if rt == nil || r.Context().Err() != nil {
		return false
	}
	if !rt.On.ShouldRetry(kind, status) {
		return false
	}
	if kind != retry.ConnectFailure && !rt.NonIdempotent && !idempotent(r.Method) {
		return false // the request may have had its effect
	}
	if body != nil && !body.replayable() {
		return false
	}
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 && body == nil {
		return false
	}
	return true
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// backoff returns how long to wait before the next attempt: exponential
// with full jitter, at least what the upstream's Retry-After asks, and only
// if the wait leaves time before the route deadline.
func (p *Proxy) backoff(attempt int, resp *http.Response, deadline time.Time) (time.Duration, bool) {
	rt := p.cfg.Retry
	wait := time.Duration(0)
	if rt.BackoffBase > 0 {
		wait = retry.Backoff(attempt, rt.BackoffBase, max(rt.BackoffMax, rt.BackoffBase), rand.Float64)
	}
	if resp != nil {
		if ra, ok := retry.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok && ra > wait {
			wait = ra
		}
	}
	if !deadline.IsZero() && time.Until(deadline) <= wait {
		return 0, false
	}
	return wait, true
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

const kindOverflow retry.ErrorKind = 250

// result is the outcome of one attempt.
type result struct {
	resp     *http.Response
	err      error
	kind     retry.ErrorKind
	timedOut bool
	cancel   context.CancelFunc
	target   *balancer.Target
	up       *cluster.Upstream
	// inFlight is set while the attempt counts in target.InFlight.
	inFlight bool
	// pooled is the call this result belongs to when it goes back to
	// calls once the result is no longer used (recycle).
	pooled *call
}

// discard drops a response that will not be used (before a retry).
func (res *result) discard() {
	if res.resp != nil {
		// A little draining lets the connection be reused.
		io.CopyN(io.Discard, res.resp.Body, 4<<10)
		res.resp.Body.Close()
	}
	res.finish()
}

func (res *result) finish() {
	if res.resp != nil {
		// The body is closed by now and the response is not used again.
		if rl, ok := res.up.Transport.(releaser); ok {
			rl.Release(res.resp)
		}
		res.resp = nil
	}
	if res.cancel != nil {
		res.cancel()
		res.cancel = nil
	}
	if res.inFlight {
		res.target.InFlight.Add(-1)
		res.inFlight = false
	}
}

// call is one attempt's state in one allocation: the outbound request
// (a shallow copy of the inbound one), its URL and the result.
type call struct {
	out      http.Request
	url      url.URL
	res      result
	timedOut atomic.Bool // set by the attempt's timer
}

// calls recycles the calls of attempts through a deadlineTransport (h1),
// which keeps no reference to the request once the response body is
// closed and the response released. Calls through net/http transports
// are left to the collector: a transport may still hold the request.
var calls = sync.Pool{New: func() any { return new(call) }}

// recycle returns res's call to the pool; res must not be used after.
func recycle(res *result) {
	c := res.pooled
	if c == nil {
		return
	}
	c.out = http.Request{}
	c.url = url.URL{}
	c.res = result{}
	c.timedOut.Store(false) // else the next attempt's failure counts as a timeout
	calls.Put(c)
}

// deadlineTransport is a transport that bounds the wait for response heads
// itself (cluster/h1, with a connection deadline), so an attempt needs no
// cancelable context and no timer of its own.
type deadlineTransport interface {
	RoundTripDeadline(req *http.Request, deadline time.Time) (*http.Response, error)
}

// releaser is a transport that reuses the memory of responses handed back
// to it (cluster/h1).
type releaser interface {
	Release(resp *http.Response)
}

// attempt sends one try to target and waits for its response headers.
// now, when not zero, is the current time (one clock read fewer).
func (p *Proxy) attempt(r *http.Request, up *cluster.Upstream, target *balancer.Target, body *replay, deadline, now time.Time, n int, upgrade string) *result {
	start := now
	if start.IsZero() {
		start = time.Now()
	}
	timeout := time.Duration(0)
	if !deadline.IsZero() {
		timeout = deadline.Sub(start)
	}
	if rt := p.cfg.Retry; rt != nil && rt.PerTryTimeout > 0 && upgrade == "" && (timeout == 0 || rt.PerTryTimeout < timeout) {
		timeout = rt.PerTryTimeout
	}
	dt, direct := up.Transport.(deadlineTransport)
	if timeout <= 0 && !deadline.IsZero() {
		direct = false // the route deadline already passed: the context path fails it
	}

	var c *call
	if direct && upgrade == "" {
		c = calls.Get().(*call)
		c.res.pooled = c
	} else {
		c = &call{}
	}
	res := &c.res
	res.target, res.up = target, up
	var out *http.Request // the one shallow copy of the request
	var cancel context.CancelFunc
	timedOut := &c.timedOut
	var timer *time.Timer
	if direct {
		c.out = *r
		out = &c.out
	} else {
		var ctx context.Context
		ctx, cancel = context.WithCancel(r.Context())
		out = r.WithContext(ctx)
		res.cancel = cancel
	}
	c.url = p.outURL(r.URL, up.Scheme, target.Addr)
	out.URL = &c.url
	out.RequestURI = ""
	out.Close = false
	out.Proto, out.ProtoMajor, out.ProtoMinor = "HTTP/1.1", 1, 1
	switch {
	case r.ContentLength == 0:
		out.Body = nil // lets the transport retry on a stale pooled connection
	case body != nil:
		out.Body = body.reader()
	}
	if n > 0 {
		// Each attempt's request must own its header map: the transport
		// of a failed attempt may still be reading the previous one.
		out.Header = r.Header.Clone()
	}

	var headAt time.Time // direct: when the wait for the head times out
	switch {
	case direct:
		if timeout > 0 {
			headAt = start.Add(timeout)
		}
	case timeout > 0:
		timer = time.AfterFunc(timeout, func() { timedOut.Store(true); cancel() })
	case !deadline.IsZero():
		timedOut.Store(true) // the route deadline already passed
		cancel()
	}

	target.InFlight.Add(1)
	res.inFlight = true
	var resp *http.Response
	var err error
	if direct {
		resp, err = dt.RoundTripDeadline(out, headAt)
	} else {
		resp, err = up.Transport.RoundTrip(out)
	}
	elapsed := time.Since(start) // monotonic clock only: cheaper than time.Now
	if timer != nil && !timer.Stop() {
		timedOut.Store(true)
	}
	if direct && err != nil && !headAt.IsZero() && elapsed >= timeout {
		timedOut.Store(true) // as the timer would have fired
	}
	target.Observe(elapsed)
	var ts *targetSeries
	if p.deps.Metrics != nil {
		ts = p.targetSeries(up, target)
		ts.duration.Observe(elapsed.Seconds())
	}
	if err != nil {
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		res.err = err
		res.timedOut = timedOut.Load()
		var oe *cluster.OverflowError
		switch {
		case errors.As(err, &oe):
			res.kind = kindOverflow
		case cluster.IsDialError(err):
			res.kind = retry.ConnectFailure
			up.Report(target.Addr, outlier.ConnectFailure)
		case res.timedOut:
			res.kind = retry.Timeout
			up.Report(target.Addr, outlier.ServerError)
		default:
			res.kind = retry.Reset
			if r.Context().Err() == nil {
				up.Report(target.Addr, outlier.ServerError)
			}
		}
		if ts != nil {
			ts.count(-1-int(res.kind), errorLabel(res))
		}
		res.finish()
		return res
	}
	res.resp = resp
	res.kind = retry.Response
	if resp.StatusCode >= 500 {
		up.Report(target.Addr, outlier.ServerError)
	} else {
		up.Report(target.Addr, outlier.Success)
	}
	if ts != nil {
		ts.count(resp.StatusCode, "")
	}
	return res
}

func errorLabel(res *result) string {
	switch res.kind {
	case kindOverflow:
		return "overflow"
	case retry.ConnectFailure:
		return "connect_failure"
	case retry.Timeout:
		return "timeout"
	}
	return "reset"
}

// classify maps a failed attempt to the gateway's answer.
func (p *Proxy) classify(r *http.Request, res *result, ex *exchange.Exchange) failure {
	var oe *cluster.OverflowError
	switch {
	case ex.BodyTooLarge || errors.Is(res.err, ErrBodyTooLarge):
		return failure{http.StatusRequestEntityTooLarge, "body_too_large", "request body exceeds the limit", ""}
	case errors.As(res.err, &oe):
		return failure{http.StatusServiceUnavailable, "circuit_open", "upstream " + res.up.Name + " is at its " + oe.Resource.String() + " limit", "1"}
	case res.timedOut && r.Context().Err() == nil:
		return failure{http.StatusGatewayTimeout, "upstream_timeout", "upstream did not answer in time", ""}
	case errors.Is(res.err, context.Canceled) || r.Context().Err() != nil:
		return failure{499, "client_closed_request", "client closed the request", ""}
	case res.kind == retry.ConnectFailure:
		return failure{http.StatusBadGateway, "upstream_unreachable", "cannot connect to upstream " + res.target.Addr, ""}
	case isReset(res.err):
		return failure{http.StatusBadGateway, "upstream_unreachable", "upstream closed the connection", ""}
	}
	return failure{http.StatusBadGateway, "bad_upstream_response", "invalid response from upstream", ""}
}

// fail answers a gateway-made error: with a stale cached copy when the route
// caches, else with the route's fallback for 502/503/504, else as JSON.
func (p *Proxy) fail(w http.ResponseWriter, r *http.Request, cacheKey string, f failure) {
	ex := exchange.From(r.Context())
	if f.status == 499 {
		// The client went away (its request context ended): nobody reads
		// an answer, and net/http closes the connection after the handler.
		// 499 is what nginx logs for this. Nothing is written, so the
		// framing guard can still answer 400 when the "going away" was a
		// malformed request body (internal/listener/h1guard).
		if ex != nil {
			ex.Code = f.code
		}
		w.WriteHeader(499)
		return
	}
	if f.status >= 502 && f.status <= 504 {
		if cacheKey != "" && p.serveStale(w, cacheKey) {
			if ex != nil {
				ex.Code = f.code
			}
			return
		}
		if fb := p.cfg.Fallback; fb != nil {
			if ex != nil {
				ex.Code = f.code
			}
			h := w.Header()
			if fb.ContentType != "" {
				h.Set("Content-Type", fb.ContentType)
			}
			h.Set("X-Rampart-Fallback", f.code)
			h.Set("Content-Length", fmt.Sprint(len(fb.Body)))
			status := fb.Status
			if status == 0 {
				status = f.status
			}
			w.WriteHeader(status)
			io.WriteString(w, fb.Body)
			return
		}
	}
	if f.retryAfter != "" {
		w.Header().Set("Retry-After", f.retryAfter)
	}
	exchange.Error(w, r, f.status, f.code, f.msg)
}

// serveStale answers from a stale cached copy, if there is one.
func (p *Proxy) serveStale(w http.ResponseWriter, key string) bool {
	now := time.Now()
	e, fresh, ok := p.cfg.Cache.Store.Get(key, now)
	if !ok {
		return false
	}
	if fresh {
		w.Header().Set("X-Cache", "HIT")
	} else {
		w.Header().Set("X-Cache", "STALE")
		w.Header().Set("Warning", `110 - "Response is Stale"`)
	}
	e.Serve(w, now)
	return true
}

// respond streams the upstream's response to the client.
func (p *Proxy) respond(w http.ResponseWriter, r *http.Request, ex *exchange.Exchange, res *result, upgrade, cacheKey string) {
	defer res.finish()
	resp := res.resp
	if resp.StatusCode == http.StatusSwitchingProtocols {
		p.serveUpgrade(w, r, resp, upgrade)
		return
	}
	defer resp.Body.Close()

	if len(resp.Header["Connection"]) > 0 || cacheKey != "" {
		// Fields named by Connection go too; a response that may be
		// cached is stored without any hop-by-hop field.
		removeHopByHop(resp.Header)
	}
	h := w.Header()
	for k, vv := range resp.Header {
		if isHop(k) {
			continue // hop-by-hop, never forwarded: cheaper than nine deletes
		}
		if len(h[k]) == 0 {
			// The response is ours: share its values (capped, so that an
			// append to the client's header copies instead).
			h[k] = vv[:len(vv):len(vv)]
		} else {
			h[k] = append(h[k], vv...)
		}
	}
	if len(resp.Trailer) > 0 {
		// Trailers need a chunked (or HTTP/2) response: a fixed length
		// would make the server drop them.
		delete(h, "Content-Length")
		names := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			names = append(names, k)
		}
		h["Trailer"] = []string{strings.Join(names, ", ")}
	}
	var rec *recorder
	if cacheKey != "" && cacheable(r, resp) {
		rec = &recorder{limit: cache.DefaultMaxEntryBytes}
		h.Set("X-Cache", "MISS")
	}
	w.WriteHeader(resp.StatusCode)

	streaming := resp.ContentLength < 0 || isStreamType(resp.Header.Get("Content-Type"))
	if err := copyBody(w, resp.Body, streaming, rec); err != nil {
		if r.Context().Err() == nil && !errors.Is(err, errClientWrite) {
			// The upstream broke off mid-body. Abort the client connection
			// (RST / h2 stream reset) so the client cannot mistake a
			// truncated body for a complete one.
			p.deps.Log.Debug("upstream body aborted", "route", p.cfg.Route, "target", res.target.Addr, "err", err)
			res.up.Report(res.target.Addr, outlier.ServerError)
		}
		ex.Code = "response_aborted"
		panic(http.ErrAbortHandler)
	}
	if len(resp.Trailer) > 0 {
		announced := len(h["Trailer"]) > 0
		for k, vv := range resp.Trailer {
			if announced && hasToken(h["Trailer"], k) {
				h[k] = vv
			} else {
				h[http.TrailerPrefix+k] = vv // undeclared (e.g. HTTP/2) trailers
			}
		}
	}
	if rec != nil && !rec.over && len(resp.Trailer) == 0 {
		c := p.cfg.Cache
		hdr := resp.Header.Clone()
		delete(hdr, "X-Cache")
		c.Store.Put(cacheKey, &cache.Entry{Status: resp.StatusCode, Header: hdr, Body: rec.buf,
			StoredAt: time.Now(), TTL: c.TTL, StaleIfError: c.StaleIfError})
	}
}

// cacheable reports whether a response may be stored for all clients.
func cacheable(r *http.Request, resp *http.Response) bool {
	if r.Method != http.MethodGet || resp.StatusCode != http.StatusOK {
		return false
	}
	if len(resp.Header["Set-Cookie"]) > 0 || len(resp.Header["Vary"]) > 0 {
		return false
	}
	cc := resp.Header["Cache-Control"]
	return !hasToken(cc, "no-store") && !hasToken(cc, "private") && !hasToken(cc, "no-cache")
}

// recorder keeps a copy of a response body up to limit bytes.
type recorder struct {
	buf   []byte
	limit int64
	over  bool
}

func (rc *recorder) add(b []byte) {
	if rc.over {
		return
	}
	if int64(len(rc.buf)+len(b)) > rc.limit {
		rc.over, rc.buf = true, nil
		return
	}
	rc.buf = append(rc.buf, b...)
}

// setForwarded adds the X-Forwarded-* headers.
func (p *Proxy) setForwarded(r *http.Request) {
	ip := clientIP(r.RemoteAddr)
	if prior := r.Header["X-Forwarded-For"]; len(prior) > 0 {
		ip = strings.Join(prior, ", ") + ", " + ip
	}
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	// One backing array for the three values, each capped: the room the
	// request's context has for them, else a new one.
	var v []string
	if c, ok := r.Context().(*exchange.Context); ok && c.Forwarded[1] == "" {
		v = c.Forwarded[:]
	} else {
		v = make([]string, 3)
	}
	v[0], v[1], v[2] = ip, proto, r.Host
	r.Header["X-Forwarded-For"] = v[0:1:1]
	r.Header["X-Forwarded-Proto"] = v[1:2:2]
	r.Header["X-Forwarded-Host"] = v[2:3:3]
}

// outURL builds the upstream URL: the target's address and the request's
// path after strip_prefix / rewrite.
func (p *Proxy) outURL(in *url.URL, scheme, addr string) url.URL {
	u := url.URL{Scheme: scheme, Host: addr, Path: in.Path, RawPath: in.RawPath, RawQuery: in.RawQuery}
	if !p.cfg.StripPrefix && !p.cfg.HasRewrite {
		return u
	}
	pre := p.cfg.Prefix
	if !strings.HasPrefix(in.Path, pre) {
		return u
	}
	repl := ""
	if p.cfg.HasRewrite {
		repl = p.cfg.Rewrite
	}
	u.Path = joinPath(repl, in.Path[len(pre):])
	u.RawPath = ""
	if in.RawPath != "" {
		if esc := in.EscapedPath(); strings.HasPrefix(esc, pre) {
			u.RawPath = joinPath(repl, esc[len(pre):])
		}
	}
	return u
}

// joinPath joins a replacement prefix and the rest of a path so that the
// result starts with "/" and has no doubled slash at the seam.
func joinPath(prefix, rest string) string {
	switch {
	case prefix == "":
		if rest == "" || rest[0] != '/' {
			return "/" + rest
		}
		return rest
	case strings.HasSuffix(prefix, "/") && strings.HasPrefix(rest, "/"):
		return prefix + rest[1:]
	}
	return prefix + rest
}

func isReset(err error) bool {
	var ne *net.OpError
	if errors.As(err, &ne) {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "server closed")
}

func isStreamType(ct string) bool {
	return strings.HasPrefix(ct, "text/event-stream") || strings.HasPrefix(ct, "application/grpc")
}

var errClientWrite = errors.New("write to client failed")

// copyBody streams src to w with a pooled buffer; streaming bodies are
// flushed after every read so events reach the client as they arrive.
func copyBody(w http.ResponseWriter, src io.Reader, streaming bool, rec *recorder) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	rc := http.NewResponseController(w)
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if rec != nil {
				rec.add(buf[:n])
			}
			if _, werr := w.Write(buf[:n]); werr != nil {
				return errClientWrite
			}
			if streaming {
				if err := rc.Flush(); err != nil {
					return errClientWrite
				}
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}
