package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-gw/rampart/internal/clientip"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/exchange"
	"github.com/rampart-gw/rampart/internal/pathnorm"
	rt "github.com/rampart-gw/rampart/internal/route"
	"github.com/rampart-gw/rampart/internal/spool"
	"github.com/rampart-gw/rampart/internal/telemetry"
	"github.com/rampart-gw/rampart/internal/telemetry/tracing"
)

// Handler is the top-level handler of one listener: request ID, limits,
// routing, then the matched route's handler, then metrics and access log.
type Handler struct {
	// tls is set for listeners that terminate TLS beneath the framing
	// guard, where net/http cannot fill r.TLS.
	tls func(context.Context) *tls.ConnectionState

	store    *Store
	listener string
	limits   config.Limits
	metrics  *telemetry.Metrics
	log      func() *telemetry.AccessLog
	// tracer holds the current Tracer (nil inside: tracing off); nil
	// for none at all.
	tracer *atomic.Pointer[tracing.Tracer]
	// spool buffers the request bodies of routes with request_buffering
	// within the listener's memory budget.
	spool *spool.Spool
	// clients resolves each request's client (trusted_proxies).
	clients *clientip.Resolver
	// explain honours X-Rampart-Explain: 1 (the listener's explain).
	explain bool

	// unmatched holds the series for requests that matched no route
	// (route label ""), created on the first such request.
	unmatchedOnce sync.Once
	unmatched     *telemetry.RouteMetrics
}

// HandlerConfig configures a Handler.
type HandlerConfig struct {
	Listener string
	Limits   config.Limits
	// TLSState, for TLS listeners, returns the TLS state of a request's
	// connection (see listener.TLSState).
	TLSState func(context.Context) *tls.ConnectionState
	// Clients resolves the client of each request from the listener's
	// trusted_proxies (nil: the TCP peer).
	Clients *clientip.Resolver
	// Explain answers X-Rampart-Explain: 1 with the request's
	// explanation in a response header (the listener's explain).
	Explain bool
}

// HandlerDeps are the shared services a Handler uses.
type HandlerDeps struct {
	Store   *Store
	Metrics *telemetry.Metrics
	// AccessLog returns the current access log (nil for none); it is a
	// function so a reload can change the log without rebuilding listeners.
	AccessLog func() *telemetry.AccessLog
	// Tracer holds the current tracer (nil inside while tracing is off);
	// a pointer so a reload can change tracing without rebuilding
	// listeners. nil: no tracing.
	Tracer *atomic.Pointer[tracing.Tracer]
}

// NewHandler returns the handler for one listener.
func NewHandler(cfg HandlerConfig, deps HandlerDeps) *Handler {
	h := &Handler{store: deps.Store, listener: cfg.Listener, limits: cfg.Limits, metrics: deps.Metrics, log: deps.AccessLog, tracer: deps.Tracer, tls: cfg.TLSState, clients: cfg.Clients, explain: cfg.Explain}
	lim := cfg.Limits
	h.spool = spool.New(spool.Config{Memory: lim.BodyBufferBytes, Budget: lim.BufferMemoryBytes, Dir: lim.BufferDir})
	if h.log == nil {
		h.log = func() *telemetry.AccessLog { return nil }
	}
	return h
}

// defaultRequestIDHeader is the request ID header while no snapshot is
// active: config's default, in canonical form.
var defaultRequestIDHeader = http.CanonicalHeaderKey(config.DefaultRequestIDHeader)

// ServeHTTP handles one client request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.tls != nil && r.TLS == nil {
		r.TLS = h.tls(r.Context())
	}
	client, peerTrusted := h.clients.Resolve(r.RemoteAddr, r.Header)
	snap := h.store.PickFor(r, client)
	st := &state{}
	st.ctx.Context = r.Context()
	ex := &st.ctx.Exchange
	ex.ClientIP, ex.PeerTrusted = client, peerTrusted
	ex.Start = time.Now()
	ex.Spool = h.spool

	ridHeader := defaultRequestIDHeader
	if snap != nil {
		ridHeader = snap.RequestIDHeader
	}
	rid, generated := "", false
	if vv := r.Header[ridHeader]; len(vv) == 1 && saneRequestID(vv[0]) {
		rid = vv[0]
	} else {
		generated = true
	}
	tp := ""
	if !generated || ridHeader != "Traceparent" {
		// (A generated ID in a request ID header named Traceparent is
		// not a valid traceparent either: a new trace, as for "".)
		tp = r.Header.Get("Traceparent")
	}
	if !validTraceparent(tp) {
		delete(r.Header, "Tracestate") // W3C: state without a valid parent is dropped
	}
	var child string
	if generated {
		rid, child = st.ids.newIDs(tp)
	} else {
		child = st.ids.child(tp)
	}
	ex.RequestID = rid
	// The header values share one backing array, each capped so that an
	// append elsewhere cannot run into its neighbour.
	v := &st.vals
	if generated {
		v[0] = rid
		r.Header[ridHeader] = v[0:1:1]
	}
	v[1] = rid
	w.Header()[ridHeader] = v[1:2:2]
	var ctx context.Context = &st.ctx
	var tr *tracing.Tracer
	if h.tracer != nil {
		tr = h.tracer.Load()
	}
	if tr != nil {
		// Tracing on: the SERVER span continues the caller's trace
		// (traceparent, else B3) and its own traceparent goes upstream
		// until an attempt's CLIENT span replaces it.
		ctx, _ = tr.Start(ctx, r, ex)
	} else {
		v[2] = child
		r.Header["Traceparent"] = v[2:3:3]
	}
	// The request copy carrying the context lives in st too: WithContext
	// is inlined and its result does not escape, so st is the only
	// allocation.
	st.req = *r.WithContext(ctx)
	r = &st.req

	rw := &st.rw
	rw.ResponseWriter = w

	var route *Route
	switch {
	case snap == nil:
		exchange.Error(rw, r, http.StatusServiceUnavailable, "not_ready", "the gateway has no configuration yet")
	case h.limits.MaxHeaderBytes > 0 && headerBytes(r) > h.limits.MaxHeaderBytes:
		rw.Header().Set("Connection", "close")
		exchange.Error(rw, r, http.StatusRequestHeaderFieldsTooLarge, "headers_too_large", "request headers exceed the limit")
	case h.limits.MaxBodyBytes > 0 && r.ContentLength > h.limits.MaxBodyBytes:
		// Refused before reading a byte of the body; the connection is
		// closed because the unread body cannot be skipped cheaply.
		rw.Header().Set("Connection", "close")
		exchange.Error(rw, r, http.StatusRequestEntityTooLarge, "body_too_large", "request body exceeds the limit")
	case pathnorm.Request(r) != nil:
		// One spelling per path before routing and policies (docs/security.md).
		exchange.Error(rw, r, http.StatusBadRequest, "bad_request", "malformed request path")
	default:
		if h.explain {
			explainInto(rw, r, snap)
		}
		idx := snap.Router.Match(r.Host, r.URL.Path, r.Method, r.Header, r.URL.RawQuery)
		if idx < 0 {
			exchange.Error(rw, r, http.StatusNotFound, "route_not_found", "no route matches "+r.Method+" "+r.URL.Path)
			break
		}
		route = snap.Routes[idx]
		ex.Route = route.Name
		if route.Params {
			ex.Params = snap.Router.Params(idx, r.URL.Path, nil)
		}
		if h.limits.MaxBodyBytes > 0 && r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody {
			r.Body = &limitedBody{rc: r.Body, left: h.limits.MaxBodyBytes}
		}
		if r.Body != nil && r.Body != http.NoBody {
			// Counts what is read of the body, chunked or not, for the
			// request size histogram and the access log.
			st.body.rc = r.Body
			r.Body = &st.body
		}
		h.serveRoute(rw, r, ex, route, snap)
		if ex.Err != nil {
			// A route composed without route.Errors (compile always adds
			// it): render the failure plainly.
			err := ex.Err
			ex.Err = nil
			rt.Render(rw, r, err, nil, nil)
		}
	}
	switch {
	case rw.wroteHeader:
	case ex.Unanswered != 0:
		// Deliberately unanswered (the client went away): logged, and
		// nothing is sent.
		rw.wroteHeader, rw.status = true, ex.Unanswered
	default:
		rw.WriteHeader(http.StatusOK)
	}
	h.finish(r, rw, ex, route, snap)
}

// serveRoute runs the route's handler. A handler that aborts the response
// (http.ErrAbortHandler: the upstream broke off mid-body, or the client is
// gone) is still counted and logged before the abort reaches net/http,
// which then resets the connection.
func (h *Handler) serveRoute(rw *writer, r *http.Request, ex *exchange.Exchange, route *Route, snap *Snapshot) {
	defer func() {
		if p := recover(); p != nil {
			if !rw.wroteHeader {
				rw.status = http.StatusBadGateway
			}
			if ex.Code == "" {
				ex.Code = "response_aborted"
			}
			h.finish(r, rw, ex, route, snap)
			panic(p)
		}
	}()
	route.Handler.ServeHTTP(rw, r)
}

func (h *Handler) finish(r *http.Request, rw *writer, ex *exchange.Exchange, route *Route, snap *Snapshot) {
	d := time.Since(ex.Start)
	var in int64 // request body bytes read
	if b, ok := r.Body.(*countedBody); ok {
		in = b.n.Load()
	}
	if ex.Trace != nil {
		if s, ok := ex.Trace.(*tracing.Span); ok {
			s.End(rw.status, ex)
		}
	}
	if o := h.store.observer(); o != nil && snap != nil {
		o.Observe(snap, rw.status, d)
	}
	if h.metrics != nil {
		var rm *telemetry.RouteMetrics
		if route != nil {
			rm = route.Metrics
		} else {
			h.unmatchedOnce.Do(func() { h.unmatched = h.metrics.Route("") })
			rm = h.unmatched
		}
		rm.Count(r.Method, rw.status)
		if ex.GRPCStatus != "" {
			rm.CountGRPC(ex.GRPCStatus)
		}
		rm.Duration.Observe(d.Seconds())
		if in > 0 {
			rm.RequestSize.Observe(float64(in))
		}
		rm.ResponseSize.Observe(float64(rw.bytes))
	}
	if al := h.log(); al != nil {
		e := telemetry.Entry{
			RequestID:        ex.RequestID,
			TraceID:          ex.TraceID,
			SpanID:           ex.SpanID,
			ClientIP:         ex.ClientIP,
			RemoteAddr:       r.RemoteAddr,
			Consumer:         ex.Consumer,
			Method:           r.Method,
			Host:             r.Host,
			Path:             r.URL.Path,
			Proto:            r.Proto,
			Route:            ex.Route,
			Upstream:         ex.Upstream,
			Target:           ex.Target,
			Status:           rw.status,
			Code:             ex.Code,
			BytesIn:          in,
			BytesOut:         rw.bytes,
			Duration:         d,
			UpstreamDuration: ex.UpstreamDuration,
			Attempts:         ex.Attempts,
			RejectedBy:       ex.RejectedBy,
			WAFRules:         ex.WAFRules,
			WAFScore:         ex.WAFScore,
			UserAgent:        r.UserAgent(),
			GRPCStatus:       ex.GRPCStatus,
		}
		if r.TLS != nil {
			e.TLSVersion, e.SNI = r.TLS.Version, r.TLS.ServerName
		}
		al.Log(&e)
	}
}

// headerBytes approximates the size of the request head as received.
func headerBytes(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4
	for k, vv := range r.Header {
		for _, v := range vv {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// limitedBody fails reads with exchange.ErrBodyTooLarge once more than
// left bytes were read; TooLarge then reports true (exchange.BodyTooLarge).
type limitedBody struct {
	rc   io.ReadCloser
	left int64
	over atomic.Bool // read by the render, maybe while a transport reads
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, exchange.ErrBodyTooLarge
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		b.over.Store(true)
		return 0, exchange.ErrBodyTooLarge
	}
	return n, err
}

// TooLarge reports whether the body ran over the limit.
func (b *limitedBody) TooLarge() bool { return b.over.Load() }

func (b *limitedBody) Close() error { return b.rc.Close() }

// countedBody counts the bytes read of a request body. It passes
// TooLarge through, so that exchange.BodyTooLarge still sees the limited
// body beneath.
type countedBody struct {
	rc io.ReadCloser
	n  atomic.Int64 // read after the handler, maybe while a transport reads
}

func (b *countedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func (b *countedBody) Close() error { return b.rc.Close() }

// TooLarge reports whether the body beneath ran over the listener's limit.
func (b *countedBody) TooLarge() bool {
	l, ok := b.rc.(interface{ TooLarge() bool })
	return ok && l.TooLarge()
}

// writer records the status and body size of a response. It forwards
// Flush, Hijack and the rest through Unwrap (http.ResponseController).
type writer struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (w *writer) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(code) // informational: more to come
		return
	}
	w.wroteHeader = true
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *writer) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *writer) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.wroteHeader = true
		if w.status == 0 {
			w.status = http.StatusSwitchingProtocols
		}
	}
	return c, brw, err
}

func (w *writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// state is what the gateway keeps for one request, in one allocation: the
// request context with its Exchange, the request copy that carries it, the
// response writer, the backing array of the header values the gateway
// sets and the bytes of the IDs it makes. It is not pooled: the request,
// its context and the header values may outlive the handler (a transport
// still finishing a failed attempt, the server writing the response head).
type state struct {
	ctx  exchange.Context
	req  http.Request
	rw   writer
	body countedBody
	vals [3]string
	ids  idBuf
}
