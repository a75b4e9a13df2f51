package cluster

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"

	"github.com/rampart-gw/rampart/internal/cluster/balancer"
	"github.com/rampart-gw/rampart/internal/cluster/breaker"
	"github.com/rampart-gw/rampart/internal/cluster/outlier"
	"github.com/rampart-gw/rampart/internal/cluster/retry"
	"github.com/rampart-gw/rampart/internal/exchange"
	"github.com/rampart-gw/rampart/internal/http1"
	"github.com/rampart-gw/rampart/internal/telemetry"
)

// Policy is a route's compiled call policy: how Do calls an upstream for
// that route.
type Policy struct {
	// Route names the route (the retries metric's label).
	Route string
	// Timeout bounds the wait for the upstream's response head, retries
	// and backoff included; 0 = none.
	Timeout time.Duration
	// Retry, when set, lets Do try again on another target.
	Retry *Retry
	// Path, when set, rewrites the outbound URL's path in place (the
	// route's strip_prefix / rewrite); it runs on Do's own copy.
	Path func(*url.URL)
	// Metrics receives the upstream series (may be nil); Log the
	// upstream-side warnings (nil = slog.Default()).
	Metrics *telemetry.Metrics
	Log     *slog.Logger
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
	// NonIdempotent allows retrying POST/PATCH after the request was sent;
	// without it only requests http1.Idempotent accepts are (idempotent
	// methods and requests with an Idempotency-Key).
	NonIdempotent bool
	// MaxReplayBytes bounds the request body kept for replay. Default 64 KiB.
	MaxReplayBytes int64
}

// DefaultMaxReplayBytes is Retry.MaxReplayBytes when not set.
const DefaultMaxReplayBytes = 64 << 10

// callState is what Do keeps per upstream: the transport seam, chosen once,
// the metric series per target and the targets failing TLS verification.
type callState struct {
	once   sync.Once
	send   sender
	series sync.Map // *balancer.Target -> *targetSeries
	tlsBad sync.Map // target address -> struct{}: its last attempt failed TLS verification
	// rewind: the transport is net/http's (HTTP/2, TLS), which resends a
	// request its target refused unprocessed (REFUSED_STREAM, a stream
	// above a GOAWAY's last one) when it can get the body again
	// (Request.GetBody): streamed bodies are kept for replay even
	// without retries.
	rewind bool
}

func (u *Upstream) caller() *callState {
	cs := &u.calls
	cs.once.Do(func() {
		cs.send = newSender(u.Transport)
		_, cs.rewind = cs.send.(rtSender)
	})
	return cs
}

// Do sends req to a target of u and returns the response once its head
// has arrived, or a *Error saying what the gateway answers instead.
//
// req is the outbound request as the caller prepared it: its headers, and
// the path and query of its URL, which p.Path may rewrite. Do sends them
// to the chosen target on its own copy, with the upstream's scheme and the
// target's address. Do neither modifies nor retains req; it reads
// req.Body, replaying it on a retry. A body that req.GetBody can open
// afresh (a buffered one: request_buffering) is not replayed: every retry
// sends a new copy from GetBody, whatever its size.
//
// Do owns the whole call: the target pick (another target on a retry), the
// circuit breaker's request and retry slots, the target's in-flight count
// and latency estimate, outlier reports, the upstream metric series, the
// attempt loop with body replay and backoff inside p.Timeout, and each
// attempt's timeout. A request asking to upgrade (an Upgrade header) gets
// one attempt and no per-try timeout; a 101 response's Body is the raw
// connection, an io.ReadWriteCloser.
//
// Closing the response's Body, once, ends the call: the request slot, the
// in-flight count, the transport's response memory and Do's own state are
// released. The caller must not touch resp, its Header or its Trailer after
// closing the body: the memory is reused.
func (u *Upstream) Do(req *http.Request, p *Policy) (*http.Response, error) {
	cs := u.caller()
	b := u.Breaker()
	if !b.TryAcquireRequest() {
		return nil, errOverflow(u.Name, "max_requests")
	}
	rt := p.Retry
	if rt != nil && rt.Budget != nil {
		rt.Budget.RecordRequest()
	}
	upgrade := len(req.Header["Upgrade"]) > 0
	attempts := 1
	if rt != nil && !upgrade {
		attempts = rt.Attempts
	}
	var now, deadline time.Time
	if p.Timeout > 0 {
		now = time.Now()
		deadline = now.Add(p.Timeout)
	}
	var body *replay
	if (attempts > 1 || cs.rewind) && req.GetBody == nil && req.Body != nil && req.Body != http.NoBody && req.ContentLength != 0 {
		limit := int64(DefaultMaxReplayBytes)
		if rt != nil && rt.MaxReplayBytes > 0 {
			limit = rt.MaxReplayBytes
		}
		body = &replay{src: req.Body, limit: limit}
	}
	ex := exchange.From(req.Context())
	var first time.Time // the first attempt's start, for ex.UpstreamDuration
	if ex != nil {
		ex.Upstream = u.Name
		if now.IsZero() {
			now = time.Now() // the first attempt's start, read once
		}
		first = now
	}
	var triedBuf [4]*balancer.Target
	tried := triedBuf[:0]
	// tk is the failure-tripped breaker's permit for the next attempt;
	// each retry asks for its own before the previous answer is dropped,
	// so that an open circuit ends the retries with that answer.
	tk, e := u.admit()
	if e != nil {
		b.ReleaseRequest()
		return nil, e
	}
	for n := 0; ; n++ {
		// The balancer sees the call's copy of req, never req itself:
		// req does not escape, so a caller's request on its stack stays
		// there.
		c := cs.send.newCall(upgrade)
		c.out = *req
		var target *balancer.Target
		if n == 0 {
			target = u.Pick(&c.out)
		} else {
			target = u.PickOther(&c.out, tried)
		}
		if target == nil {
			c.finish()
			u.tripDone(tk, breaker.Ignored)
			b.ReleaseRequest()
			return nil, u.noTarget()
		}
		tried = append(tried, target)
		if ex != nil {
			ex.Target = target.Addr
			ex.Attempts++
		}

		resp, kind, err := u.attempt(cs, c, req, ex, p, target, body, deadline, now, n, upgrade)
		now = time.Time{} // a retry reads the clock again
		if ex != nil {
			ex.UpstreamDuration = time.Since(first)
		}
		if err == nil {
			u.tripDone(tk, u.tripResult(resp.StatusCode))
			if n+1 < attempts && (retryable(req, rt, retry.Response, resp.StatusCode, body) || retryableGRPC(req, rt, resp, body)) {
				if next, wait, ok := u.retryPermit(rt, b, n, resp, deadline); ok {
					c.discard()
					if tk = next; !u.retryWait(req, p, b, tk, wait) {
						return nil, errCanceled(u.Name, req.Context().Err())
					}
					continue
				}
			}
			c.slot = b // released when the body closes
			if body != nil {
				body.finish() // a long stream keeps no copy
			}
			return resp, nil
		}

		e := classify(req.Context(), u.Name, target.Addr, kind, err)
		switch {
		case e.Kind == Canceled || e.Kind == BadRequest || kind == failOverflow:
			// None says anything about the upstream's health.
			u.tripDone(tk, breaker.Ignored)
		default:
			u.tripDone(tk, breaker.Failure)
		}
		if e.Kind == Canceled || e.Kind == BadRequest {
			b.ReleaseRequest()
			return nil, e
		}
		if n+1 < attempts && kind != failOverflow && retryable(req, rt, retryKind(kind), 0, body) {
			if next, wait, ok := u.retryPermit(rt, b, n, nil, deadline); ok {
				if tk = next; !u.retryWait(req, p, b, tk, wait) {
					return nil, errCanceled(u.Name, req.Context().Err())
				}
				continue
			}
		}
		b.ReleaseRequest()
		return nil, e
	}
}

// retryPermit decides whether attempt n may be followed by a retry: the
// backoff leaves time before the deadline, the budget and the breaker
// have a retry slot, and the failure-tripped circuit admits it (its permit
// is returned, with the backoff to wait). Otherwise the current answer
// stands.
func (u *Upstream) retryPermit(rt *Retry, b *breaker.Breaker, n int, resp *http.Response, deadline time.Time) (breaker.Ticket, time.Duration, bool) {
	wait, ok := backoff(rt, n, resp, deadline)
	if !ok || !acquireRetry(rt, b) {
		return breaker.Ticket{}, 0, false
	}
	tk, e := u.admit()
	if e != nil {
		return tk, 0, false
	}
	return tk, wait, true
}

// retryWait counts the retry and waits its backoff. When the client goes
// away meanwhile it gives back the retry's permit and the request slot and
// returns false.
func (u *Upstream) retryWait(req *http.Request, p *Policy, b *breaker.Breaker, tk breaker.Ticket, wait time.Duration) bool {
	u.countRetry(p)
	if sleep(req.Context(), wait) {
		return true
	}
	u.tripDone(tk, breaker.Ignored)
	b.ReleaseRequest()
	return false
}

// admit asks the upstream's failure-tripped circuit breaker, before each
// attempt, whether the upstream takes calls: an open circuit answers at
// once with 503 circuit_open and Retry-After set to the time left open,
// and retries stop there. Without circuit_breaker.trip every attempt is
// admitted with a zero permit.
func (u *Upstream) admit() (breaker.Ticket, *Error) {
	t := u.Trip()
	if t == nil {
		return breaker.Ticket{}, nil
	}
	tk, ok, wait := t.Allow(time.Now())
	if !ok {
		return tk, errCircuitOpen(u.Name, wait)
	}
	return tk, nil
}

// tripDone reports an admitted attempt's outcome to the failure-tripped
// breaker (nothing for a zero permit).
func (u *Upstream) tripDone(tk breaker.Ticket, r breaker.Result) {
	if tk != (breaker.Ticket{}) {
		tk.Done(r, time.Now())
	}
}

// tripResult classifies an upstream status for the failure-tripped
// breaker: the configured failure statuses fail, others succeed.
func (u *Upstream) tripResult(status int) breaker.Result {
	if set := u.tripFailures(); set != nil {
		return set.Classify(status)
	}
	return breaker.Success
}

func retryKind(k attemptKind) retry.ErrorKind {
	switch k {
	case failConnect:
		return retry.ConnectFailure
	case failTimeout:
		return retry.Timeout
	}
	return retry.Reset
}

func (u *Upstream) countRetry(p *Policy) {
	if p.Metrics != nil {
		p.Metrics.Retries.WithLabelValues(p.Route, u.Name).Inc()
	}
}

// acquireRetry takes a retry slot from the budget and the breaker, and
// releases the breaker slot at once: max_retries bounds retries being
// decided concurrently, the budget bounds their rate.
func acquireRetry(rt *Retry, br *breaker.Breaker) bool {
	if rt.Budget != nil && !rt.Budget.TryRetry() {
		return false
	}
	if !br.TryAcquireRetry() {
		return false
	}
	br.ReleaseRetry()
	return true
}

// retryable reports whether an attempt that ended with kind/status may be
// retried for r.
func retryable(r *http.Request, rt *Retry, kind retry.ErrorKind, status int, body *replay) bool {
	if rt == nil || r.Context().Err() != nil {
		return false
	}
	if !rt.On.ShouldRetry(kind, status) {
		return false
	}
	if kind != retry.ConnectFailure && !rt.NonIdempotent && !http1.Idempotent(r.Method, r.Header) {
		return false // the request may have had its effect
	}
	if body != nil && !body.replayable() {
		return false
	}
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 && body == nil && r.GetBody == nil {
		return false
	}
	return true
}

// retryableGRPC reports whether a gRPC answer may be retried: its status
// came in the head (a trailers-only answer, so nothing of it has reached
// the client) and retry.on lists it (grpc:NAME). Listing a gRPC status is
// the operator's word that the route's calls may run again on it, as a
// gRPC retry policy's retryableStatusCodes is: every gRPC call is a POST,
// and which methods are idempotent is not the gateway's to know.
func retryableGRPC(r *http.Request, rt *Retry, resp *http.Response, body *replay) bool {
	if rt == nil || !rt.On.GRPC() || resp.StatusCode != http.StatusOK || r.Context().Err() != nil {
		return false
	}
	v := resp.Header["Grpc-Status"]
	if len(v) == 0 || !rt.On.ShouldRetryGRPC(grpcCode(v[0])) {
		return false
	}
	if body != nil && !body.replayable() {
		return false
	}
	return r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 || body != nil || r.GetBody != nil
}

// grpcCode parses a grpc-status value, or returns -1.
func grpcCode(v string) int {
	if len(v) == 0 || len(v) > 2 {
		return -1
	}
	n := 0
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return -1
		}
		n = n*10 + int(v[i]-'0')
	}
	return n
}

// backoff returns how long to wait before the next attempt: exponential
// with full jitter, at least what the upstream's Retry-After asks, and only
// if the wait leaves time before the route deadline.
func backoff(rt *Retry, attempt int, resp *http.Response, deadline time.Time) (time.Duration, bool) {
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

// attempt sends one try to target and waits for its response head. now,
// when not zero, is the current time (one clock read fewer). On success
// the response's Body is the call (see call.Close).
func (u *Upstream) attempt(cs *callState, c *call, req *http.Request, ex *exchange.Exchange, p *Policy, target *balancer.Target, body *replay,
	deadline, now time.Time, n int, upgrade bool) (*http.Response, attemptKind, error) {
	start := now
	if start.IsZero() {
		start = time.Now()
	}
	timeout := time.Duration(0)
	if !deadline.IsZero() {
		timeout = deadline.Sub(start)
		if timeout <= 0 {
			c.finish()
			return nil, failTimeout, os.ErrDeadlineExceeded // the route deadline already passed
		}
	}
	if rt := p.Retry; rt != nil && rt.PerTryTimeout > 0 && !upgrade && (timeout == 0 || rt.PerTryTimeout < timeout) {
		timeout = rt.PerTryTimeout
	}
	var headAt time.Time
	if timeout > 0 {
		headAt = start.Add(timeout)
	}

	s := cs.send
	c.u, c.target, c.s = u, target, s
	in := req.URL
	c.url = url.URL{Scheme: u.Scheme, Host: target.Addr, Path: in.Path, RawPath: in.RawPath, RawQuery: in.RawQuery}
	if p.Path != nil {
		p.Path(&c.url)
	}
	out := &c.out
	out.URL = &c.url
	out.RequestURI = ""
	out.Close = false
	out.Proto, out.ProtoMajor, out.ProtoMinor = "HTTP/1.1", 1, 1
	switch {
	case req.ContentLength == 0:
		out.Body = nil // lets the transport retry on a stale pooled connection
	case body != nil:
		out.Body = body.reader()
		if cs.rewind {
			out.GetBody = body.again
		}
	case n > 0 && req.GetBody != nil:
		// A buffered body: the first attempt read req.Body, each retry
		// reads its own copy from the start.
		rc, err := req.GetBody()
		if err != nil {
			c.finish()
			return nil, failReset, err
		}
		out.Body = rc
	}
	if n > 0 {
		// Each attempt's request must own its header map: the transport
		// of a failed attempt may still be reading the previous one.
		out.Header = req.Header.Clone()
	}
	if v := out.Header["Grpc-Timeout"]; len(v) > 0 && !headAt.IsZero() {
		// A gRPC call's deadline (set by the proxy from its grpc-timeout,
		// capped by the route's): the upstream gets what is left of it
		// for this attempt (docs/grpc.md).
		out.Header["Grpc-Timeout"] = []string{exchange.FormatGRPCTimeout(time.Until(headAt))}
	}

	if ex != nil && ex.Trace != nil {
		// The attempt's CLIENT span (tracing on): its traceparent goes
		// upstream; it ends with the response body, or with the failure.
		c.traceEnd = ex.Trace.Attempt(out, ex, n+1)
	}
	target.InFlight.Add(1)
	c.inFlight = true
	resp, err := s.send(c, headAt)
	elapsed := time.Since(start) // monotonic clock only: cheaper than time.Now
	target.Observe(elapsed)
	var ts *targetSeries
	if p.Metrics != nil {
		ts = cs.targetSeries(p.Metrics, u.Name, target)
		ts.duration.Observe(elapsed.Seconds())
	}
	if err != nil {
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		timedOut := timeout > 0 && (elapsed >= timeout || isDeadline(err))
		var kind attemptKind
		var oe *OverflowError
		switch {
		case errors.As(err, &oe):
			kind = failOverflow
		case errors.Is(err, exchange.ErrMalformedBody):
			kind = failClient // says nothing about the target
		case IsDialError(err):
			kind = failConnect
			u.Report(target.Addr, outlier.ConnectFailure)
		case tlsVerifyError(err) != nil:
			kind = failConnect
			u.Report(target.Addr, outlier.ConnectFailure)
			cs.tlsFailed(p, u.Name, target.Addr, err)
		case timedOut:
			kind = failTimeout
			u.Report(target.Addr, outlier.ServerError)
		default:
			kind = failReset
			if req.Context().Err() == nil {
				u.Report(target.Addr, outlier.ServerError)
			}
		}
		if ts != nil {
			ts.count(-int(kind), kindLabel(kind))
		}
		if end := c.traceEnd; end != nil {
			c.traceEnd = nil
			end(0, err)
		}
		c.finish()
		return nil, kind, err
	}
	if resp.StatusCode >= 500 {
		u.Report(target.Addr, outlier.ServerError)
	} else {
		u.Report(target.Addr, outlier.Success)
	}
	if u.Scheme == "https" {
		cs.tlsOK(p, u.Name, target.Addr)
	}
	if ts != nil {
		ts.count(resp.StatusCode, "")
	}
	c.resp, c.body = resp, resp.Body
	c.traceStatus = resp.StatusCode
	if rwc, ok := resp.Body.(io.ReadWriteCloser); ok && resp.StatusCode == http.StatusSwitchingProtocols {
		resp.Body = &upgradeBody{c: c, rwc: rwc}
	} else {
		resp.Body = c
	}
	return resp, 0, nil
}

func kindLabel(k attemptKind) string {
	switch k {
	case failOverflow:
		return "overflow"
	case failConnect:
		return "connect_failure"
	case failTimeout:
		return "timeout"
	}
	return "reset"
}

// tlsFailed logs a target's TLS verification failure once per change.
func (cs *callState) tlsFailed(p *Policy, up, addr string, err error) {
	if _, loaded := cs.tlsBad.LoadOrStore(addr, struct{}{}); loaded {
		return
	}
	log := p.Log
	if log == nil {
		log = slog.Default()
	}
	log.Warn("upstream TLS verification failed", "upstream", up, "target", addr, "err", tlsVerifyError(err))
}

// tlsOK notes a verified exchange with addr, logging the recovery of a
// target that failed before.
func (cs *callState) tlsOK(p *Policy, up, addr string) {
	if _, failing := cs.tlsBad.LoadAndDelete(addr); !failing {
		return
	}
	log := p.Log
	if log == nil {
		log = slog.Default()
	}
	log.Info("upstream TLS verification succeeds again", "upstream", up, "target", addr)
}

// call is one attempt's state in one allocation: the outbound request (a
// shallow copy of the caller's), its URL, and the accounting that the
// response body's Close ends. A successful attempt's response carries the
// call as its Body.
type call struct {
	out    http.Request
	url    url.URL
	u      *Upstream
	target *balancer.Target
	s      sender
	resp   *http.Response
	body   io.ReadCloser // the transport's response body
	cancel context.CancelFunc
	// slot is the breaker whose request slot the call holds, once Do
	// returned its response.
	slot     *breaker.Breaker
	inFlight bool
	pooled   bool
	closed   bool
	failed   atomic.Bool // a body read failed
	// traceEnd ends the attempt's CLIENT span (tracing on), with
	// traceStatus, the response status.
	traceEnd    func(status int, err error)
	traceStatus int
}

// errBodyBroken is a CLIENT span's error when the target broke off
// mid-body.
var errBodyBroken = errors.New("upstream response body broken off")

// Read reads the upstream's response body. A failure other than the end of
// the body, while the client is still there, means the target broke off
// mid-body: it counts against the target (outlier detection).
func (c *call) Read(p []byte) (int, error) {
	n, err := c.body.Read(p)
	if err != nil && err != io.EOF && !c.failed.Swap(true) && c.out.Context().Err() == nil {
		c.u.Report(c.target.Addr, outlier.ServerError)
	}
	return n, err
}

// Close closes the response body and ends the call. It may be called once;
// resp and the call must not be used after.
func (c *call) Close() error {
	if c.closed {
		return nil
	}
	err := c.body.Close()
	c.finish()
	return err
}

// discard drops a response that will not be used (before a retry).
func (c *call) discard() {
	// A little draining lets the connection be reused.
	io.CopyN(io.Discard, c.body, 4<<10)
	c.Close()
}

// finish ends the call's accounting and recycles a pooled call.
func (c *call) finish() {
	c.closed = true
	if end := c.traceEnd; end != nil {
		c.traceEnd = nil
		var err error
		if c.failed.Load() {
			err = errBodyBroken
		}
		end(c.traceStatus, err)
	}
	if c.resp != nil {
		c.resp.Body = c.body
		c.s.release(c.resp)
		c.resp = nil
	}
	if c.cancel != nil {
		c.cancel()
		c.cancel = nil
	}
	if c.inFlight {
		c.target.InFlight.Add(-1)
		c.inFlight = false
	}
	if c.slot != nil {
		c.slot.ReleaseRequest()
		c.slot = nil
	}
	if c.pooled && !c.failed.Load() {
		*c = call{}
		calls.Put(c)
	}
}

// upgradeBody is the body of a 101 response: the raw connection.
type upgradeBody struct {
	c   *call
	rwc io.ReadWriteCloser
}

func (b *upgradeBody) Read(p []byte) (int, error)  { return b.rwc.Read(p) }
func (b *upgradeBody) Write(p []byte) (int, error) { return b.rwc.Write(p) }
func (b *upgradeBody) Close() error                { return b.c.Close() }

// CloseWrite half-closes the connection when it can.
func (b *upgradeBody) CloseWrite() error {
	if cw, ok := b.rwc.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// calls recycles the calls of attempts through the h1 client, which keeps
// no reference to the request once the response body is closed and the
// response released. Calls through net/http transports are left to the
// collector: a transport may still hold the request.
var calls = sync.Pool{New: func() any { return new(call) }}

// sender is the one seam through which Do sends an attempt: send writes
// c.out and waits for the response head until deadline (if not zero),
// failing with an error wrapping os.ErrDeadlineExceeded when it passes.
// The body is not bounded.
type sender interface {
	send(c *call, deadline time.Time) (*http.Response, error)
	// release hands back a response whose body was closed.
	release(resp *http.Response)
	newCall(upgrade bool) *call
}

// newSender adapts t once: the h1 client bounds the head itself (a
// connection deadline: no timer, goroutine or context); a net/http
// transport gets a cancelable context and a timer.
func newSender(t http.RoundTripper) sender {
	if dt, ok := t.(deadlineTransport); ok {
		return h1Sender{dt}
	}
	return rtSender{t}
}

// deadlineTransport is the h1 client (cluster/h1).
type deadlineTransport interface {
	RoundTripDeadline(req *http.Request, deadline time.Time) (*http.Response, error)
	Release(resp *http.Response)
}

type h1Sender struct{ t deadlineTransport }

func (s h1Sender) send(c *call, deadline time.Time) (*http.Response, error) {
	return s.t.RoundTripDeadline(&c.out, deadline)
}

func (s h1Sender) release(resp *http.Response) { s.t.Release(resp) }

func (s h1Sender) newCall(upgrade bool) *call {
	if upgrade {
		return new(call)
	}
	c := calls.Get().(*call)
	c.pooled = true
	return c
}

type rtSender struct{ t http.RoundTripper }

func (s rtSender) send(c *call, deadline time.Time) (*http.Response, error) {
	ctx, cancel := context.WithCancel(c.out.Context())
	c.out = *c.out.WithContext(ctx)
	c.cancel = cancel
	if deadline.IsZero() {
		return s.t.RoundTrip(&c.out)
	}
	var fired atomic.Bool
	timer := time.AfterFunc(time.Until(deadline), func() { fired.Store(true); cancel() })
	resp, err := s.t.RoundTrip(&c.out)
	if !timer.Stop() || fired.Load() {
		if err == nil {
			// The head arrived as the timer fired: the context is
			// canceled, so the body would fail.
			resp.Body.Close()
		}
		return nil, &timeoutError{err}
	}
	return resp, err
}

func (rtSender) release(*http.Response) {}

func (rtSender) newCall(bool) *call { return new(call) }

// timeoutError is a net/http attempt whose head did not arrive in time.
type timeoutError struct{ err error }

func (e *timeoutError) Error() string {
	if e.err == nil {
		return "upstream response head: " + os.ErrDeadlineExceeded.Error()
	}
	return "upstream response head: " + os.ErrDeadlineExceeded.Error() + ": " + e.err.Error()
}
func (e *timeoutError) Unwrap() []error { return []error{os.ErrDeadlineExceeded, e.err} }

// targetSeries are the upstream metric series of one target.
type targetSeries struct {
	duration prom.Observer // rampart_upstream_request_duration_seconds{upstream}
	m        *telemetry.Metrics
	up, addr string
	codes    sync.Map // count's key (int) -> prom.Counter
}

func (cs *callState) targetSeries(m *telemetry.Metrics, up string, target *balancer.Target) *targetSeries {
	if s, ok := cs.series.Load(target); ok {
		return s.(*targetSeries)
	}
	s := &targetSeries{duration: m.UpstreamDuration.WithLabelValues(up), m: m, up: up, addr: target.Addr}
	v, _ := cs.series.LoadOrStore(target, s)
	return v.(*targetSeries)
}

// count increments rampart_upstream_requests_total{code=label}. key
// identifies the label: the status code, or a negative number per error
// kind (label is then the error label).
func (s *targetSeries) count(key int, label string) {
	if c, ok := s.codes.Load(key); ok {
		c.(prom.Counter).Inc()
		return
	}
	if key >= 0 {
		label = s.m.Code(key)
	}
	c := s.m.UpstreamRequests.WithLabelValues(s.up, s.addr, label)
	s.codes.Store(key, c)
	c.Inc()
}
