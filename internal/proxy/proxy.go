// Package proxy forwards a request to an upstream and streams the response
// back: HTTP/1.1 and HTTP/2 on both sides, streaming bodies both ways
// (flushing streamed responses such as SSE as they arrive), WebSocket
// upgrades, trailers and the forwarding headers. It prepares the outbound
// request (URL rewrite, hop-by-hop fields, X-Forwarded-*, trailers,
// upgrades), makes one call (cluster.Upstream.Do, which owns picking,
// retries and timeouts), and copies the answer; a failed call goes to
// route.Fail. It is the innermost handler of a route (see internal/route).
package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rampart-gw/rampart/internal/capture"
	"github.com/rampart-gw/rampart/internal/certid"
	"github.com/rampart-gw/rampart/internal/cluster"
	"github.com/rampart-gw/rampart/internal/exchange"
	"github.com/rampart-gw/rampart/internal/route"
	"github.com/rampart-gw/rampart/internal/spool"
)

// Config is the compiled forwarding part of one route towards one
// upstream.
type Config struct {
	Route string
	// Upstream is where requests go; Policy is how (timeout, retries).
	Upstream *cluster.Upstream
	Policy   cluster.Policy
	// Prefix is the route's matched path prefix (for strip/rewrite).
	Prefix string
	// StripPrefix removes Prefix from the forwarded path.
	StripPrefix bool
	// Rewrite, when set (HasRewrite), replaces Prefix.
	Rewrite    string
	HasRewrite bool
	// RewritePath, when set, replaces the whole path (rewrite.path), its
	// placeholders filled from the request's captures.
	RewritePath *capture.Subst
	// RequestIDHeader is the canonical request ID header name.
	RequestIDHeader string
	// Buffering is the route's request_buffering.
	Buffering Buffering
}

// Buffering is how a request body reaches the upstream (a route's
// request_buffering; docs/proxying.md).
type Buffering uint8

const (
	// BufferAuto buffers a body of unknown length in memory up to the
	// listener's body_buffer_bytes before the upstream request opens: a
	// body that ends there is forwarded with its Content-Length (or
	// refused with 413 when over max_body_bytes); a longer one streams.
	BufferAuto Buffering = iota + 1
	// BufferOn buffers every body whole, in memory and then in a
	// temporary file, up to max_body_bytes: it is refused before the
	// upstream sees anything, forwarded with its Content-Length, and
	// replayed whole on every retry.
	BufferOn
	// BufferOff streams every body as it arrives.
	BufferOff
)

// ParseBuffering returns the Buffering named by request_buffering.
func ParseBuffering(s string) (Buffering, error) {
	switch s {
	case "auto":
		return BufferAuto, nil
	case "on":
		return BufferOn, nil
	case "off":
		return BufferOff, nil
	}
	return 0, fmt.Errorf("request_buffering: invalid mode %q (want auto, on or off)", s)
}

// Deps are the shared services a Proxy uses.
type Deps struct {
	Log *slog.Logger
	// Upgraded tracks hijacked (WebSocket) connections so that shutdown can
	// close them after the drain timeout. May be nil.
	Upgraded *ConnSet
}

// Proxy forwards requests for one route to one upstream.
type Proxy struct {
	cfg  Config
	deps Deps
}

// New returns the forwarding handler for one route and upstream.
func New(cfg Config, deps Deps) (*Proxy, error) {
	if cfg.Upstream == nil {
		return nil, errors.New("route has no upstream")
	}
	if r := cfg.Policy.Retry; r != nil && r.Attempts < 1 {
		r.Attempts = 1
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	p := &Proxy{cfg: cfg, deps: deps}
	if cfg.StripPrefix || cfg.HasRewrite {
		p.cfg.Policy.Path = p.rewrite
	}
	return p, nil
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// ServeHTTP forwards r to the upstream and streams its answer back; a
// failed call is handed to route.Fail.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.cfg.RewritePath != nil {
		r = p.withPath(r)
	}
	upgrade := p.prepare(r)
	if upgrade == "" {
		if v := r.Header["Grpc-Timeout"]; len(v) > 0 && exchange.IsGRPC(r) {
			p.serveDeadline(w, r, v[0])
			return
		}
		if p.buffers(r) {
			p.serveBuffered(w, r, &p.cfg.Policy)
			return
		}
	}
	resp, err := p.cfg.Upstream.Do(r, &p.cfg.Policy)
	if err != nil {
		route.Fail(w, r, err)
		return
	}
	p.respond(w, r, resp, upgrade)
}

// serveDeadline forwards a gRPC call that carries a grpc-timeout: the
// whole call, response body and trailers included, must end within it
// (counted from the request's arrival), capped by the route's timeout. The cluster sends the budget left at each
// attempt upstream as grpc-timeout (Upstream.Do); when it runs out the
// client gets DEADLINE_EXCEEDED: as a trailers-only answer before the
// response head, in the trailers after it (docs/grpc.md).
func (p *Proxy) serveDeadline(w http.ResponseWriter, r *http.Request, v string) {
	d, ok := exchange.ParseGRPCTimeout(v)
	if !ok {
		exchange.Error(w, r, http.StatusBadRequest, "bad_request", "malformed grpc-timeout "+strconv.Quote(v))
		return
	}
	if ex := exchange.From(r.Context()); ex != nil && !ex.Start.IsZero() {
		// The client's deadline runs from when it sent the call: the time
		// the gateway spent on it so far (policies) is gone from it.
		d -= time.Since(ex.Start)
	}
	pol := p.cfg.Policy
	if pol.Timeout <= 0 || d < pol.Timeout {
		pol.Timeout = d
	}
	ctx, cancel := context.WithTimeout(r.Context(), pol.Timeout)
	defer cancel()
	r = r.WithContext(ctx)
	if p.buffers(r) {
		p.serveBuffered(w, r, &pol)
		return
	}
	p.forward(w, r, &pol)
}

// deadlineError is err, or an upstream timeout when r's own deadline (a
// gRPC call's grpc-timeout) is what cut the call short: the cluster sees
// a done context and calls it a cancellation, which gets no answer.
func deadlineError(r *http.Request, err error, pol *cluster.Policy) error {
	if errors.Is(r.Context().Err(), context.DeadlineExceeded) {
		var e *cluster.Error
		if errors.As(err, &e) && e.Kind == cluster.Canceled {
			return &cluster.Error{Kind: cluster.Timeout, Status: http.StatusGatewayTimeout, Code: "upstream_timeout",
				Msg: "upstream did not answer within the call's deadline (" + pol.Timeout.String() + ")", Upstream: e.Upstream, Err: err}
		}
	}
	return err
}

// buffers reports whether the route's request_buffering reads r's body
// before the upstream request opens: with on, every body; with auto, a
// body of unknown length (chunked, or HTTP/2 without content-length) that
// is not a gRPC call.
func (p *Proxy) buffers(r *http.Request) bool {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return false
	}
	switch p.cfg.Buffering {
	case BufferOn:
		return true
	case BufferAuto:
		// A gRPC call's body is a stream of messages (client-streaming and
		// bidi calls wait for answers between them): never held back.
		return r.ContentLength < 0 && !exchange.IsGRPC(r)
	}
	return false
}

// serveBuffered reads r's body into the listener's spool (exchange.Spool),
// then forwards the request with the buffered body. A complete body goes
// with its Content-Length (unless the request declared trailers, which
// need chunked framing) and is opened afresh for every attempt; the rest of
// an incomplete one (auto, over body_buffer_bytes) streams after the
// buffered part. A body that cannot be read is answered without contacting
// the upstream: 413 over max_body_bytes (the listener's limited body fails
// the read), 400 for a malformed one, nothing for a client that went away,
// 503 when the temporary file fails.
func (p *Proxy) serveBuffered(w http.ResponseWriter, r *http.Request, pol *cluster.Policy) {
	var sp *spool.Spool
	if ex := exchange.From(r.Context()); ex != nil {
		sp = ex.Spool
	}
	if sp == nil {
		p.forward(w, r, pol) // outside a listener: nothing to buffer into
		return
	}
	tap, _ := r.Body.(bodyTap)
	b, ok := spool.Buffered(r.Body)
	if !ok {
		if tap != nil {
			tap.Pause() // the mirror's copy shares the buffer (route.Tee)
		}
		var err error
		b, err = sp.Read(r.Body, p.cfg.Buffering == BufferOn)
		if err != nil {
			route.Fail(w, r, p.bodyError(r, err))
			return
		}
		defer b.Close()
		if tap != nil {
			tap.Spooled(b)
		}
	} // else a policy (waf) buffered it already, and closes it
	out := *r
	out.Body, _ = b.Open()
	if b.Complete() {
		out.GetBody = b.Open
		if len(r.Trailer) == 0 {
			out.ContentLength = b.Len()
			out.TransferEncoding = nil
		}
	}
	p.forward(w, &out, pol)
}

// bodyTap is a request body that keeps a copy of itself for a mirrored
// request (route.Tee): Pause stops its copying while the body is buffered,
// Spooled hands it the buffered body to share.
type bodyTap interface {
	Pause()
	Spooled(*spool.Body)
}

var _ bodyTap = (*route.Tee)(nil)

// maxShadowDrain bounds the bytes of a shadow's answer read (and
// discarded) so that its connection can be reused; a longer answer's
// connection is closed.
const maxShadowDrain = 64 << 10

// Shadow sends r, a mirrored copy of a request (route.Mirror), to the
// upstream in one call (the proxy's Policy, which compile gives no
// retries), and discards the answer: it returns the status, or the error.
// r is the copy's own: its headers are edited for forwarding as a proxied
// request's are, and its Host gets "-shadow" appended (route.ShadowHost),
// X-Forwarded-Host keeping the original.
func (p *Proxy) Shadow(r *http.Request) (int, error) {
	p.prepare(r)
	r.Host = route.ShadowHost(r.Host)
	resp, err := p.cfg.Upstream.Do(r, &p.cfg.Policy)
	if err != nil {
		return 0, err
	}
	status := resp.StatusCode // resp is not touched after its body closes
	io.CopyN(io.Discard, resp.Body, maxShadowDrain)
	resp.Body.Close()
	return status, nil
}

var _ route.Shadow = (*Proxy)(nil)

// forward makes the call for r and answers with it.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, pol *cluster.Policy) {
	resp, err := p.cfg.Upstream.Do(r, pol)
	if err != nil {
		route.Fail(w, r, deadlineError(r, err, pol))
		return
	}
	p.respond(w, r, resp, "")
}

// bodyError is the answer to a request body that could not be buffered.
func (p *Proxy) bodyError(r *http.Request, err error) error {
	switch {
	case errors.Is(err, exchange.ErrBodyTooLarge):
		return err // route.Render: 413 body_too_large
	case errors.Is(err, spool.ErrSpill):
		p.deps.Log.Warn("request body not buffered", "route", p.cfg.Route, "err", err)
		return &route.Refusal{Status: http.StatusServiceUnavailable, Code: "overloaded", Msg: "the request body could not be buffered", Err: err}
	case r.Context().Err() != nil:
		return &route.Refusal{Status: cluster.StatusClientClosed, Code: "client_closed_request", Msg: "client closed the request", Err: err}
	}
	// A malformed chunked body: the framing guard (internal/listener/guard)
	// replaces this answer with its own 400 and closes the connection.
	return &route.Refusal{Status: http.StatusBadRequest, Code: "bad_request", Msg: "the request body could not be read", Err: err}
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

// respond streams the upstream's response to the client, and closes its
// body (which ends the call: resp is not touched after).
func (p *Proxy) respond(w http.ResponseWriter, r *http.Request, resp *http.Response, upgrade string) {
	if resp.StatusCode == http.StatusSwitchingProtocols {
		p.serveUpgrade(w, r, resp, upgrade)
		return
	}
	closed := false
	defer func() {
		if !closed {
			resp.Body.Close() // on a panic (http.ErrAbortHandler)
		}
	}()

	if len(resp.Header["Connection"]) > 0 {
		removeHopByHop(resp.Header) // fields named by Connection go too
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
	w.WriteHeader(resp.StatusCode)

	streaming := resp.ContentLength < 0 || isStreamType(resp.Header.Get("Content-Type"))
	if err := copyBody(w, resp.Body, streaming); err != nil {
		if exchange.IsGRPC(r) && errors.Is(r.Context().Err(), context.DeadlineExceeded) && !errors.Is(err, errClientWrite) {
			// The call's grpc-timeout ran out mid-stream: end it as gRPC
			// does, with DEADLINE_EXCEEDED in the trailers.
			h[http.TrailerPrefix+"Grpc-Status"] = []string{exchange.GRPCCodeName(exchange.GRPCDeadlineExceeded)}
			h[http.TrailerPrefix+"Grpc-Message"] = []string{"deadline exceeded"}
			if ex := exchange.From(r.Context()); ex != nil {
				ex.Code, ex.GRPCStatus = "upstream_timeout", exchange.GRPCCodeName(exchange.GRPCDeadlineExceeded)
			}
			closed = true
			resp.Body.Close()
			return
		}
		if r.Context().Err() == nil && !errors.Is(err, errClientWrite) {
			// The upstream broke off mid-body (the call counts it against
			// the target). Abort the client connection (RST / h2 stream
			// reset) so the client cannot mistake a truncated body for a
			// complete one.
			p.deps.Log.Debug("upstream body aborted", "route", p.cfg.Route, "upstream", p.cfg.Upstream.Name, "err", err)
		}
		if ex := exchange.From(r.Context()); ex != nil {
			ex.Code = "response_aborted"
		}
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
	if exchange.IsGRPC(r) {
		recordGRPCStatus(r, resp)
	}
	closed = true
	resp.Body.Close()
}

// recordGRPCStatus notes the upstream's grpc-status (its trailer, or its
// header in a trailers-only answer) on the exchange, for the access log
// and metrics.
func recordGRPCStatus(r *http.Request, resp *http.Response) {
	ex := exchange.From(r.Context())
	if ex == nil {
		return
	}
	v := resp.Trailer["Grpc-Status"]
	if len(v) == 0 {
		v = resp.Header["Grpc-Status"]
	}
	if len(v) > 0 {
		ex.GRPCStatus = exchange.GRPCStatusOf(v[0])
	}
}

// setForwarded sets the X-Forwarded-* headers. A trusted proxy's
// X-Forwarded-For is extended with its address, and its X-Forwarded-Proto
// and -Host are kept; anyone else's forwarding headers (Forwarded
// included) are replaced, so that the upstream can believe them.
func (p *Proxy) setForwarded(r *http.Request) {
	ip := clientIP(r.RemoteAddr)
	trusted := false
	c, _ := r.Context().(*exchange.Context)
	if c != nil {
		trusted = c.Exchange.PeerTrusted
	} else if ex := exchange.From(r.Context()); ex != nil {
		trusted = ex.PeerTrusted
	}
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	host := r.Host
	if trusted {
		if prior := r.Header["X-Forwarded-For"]; len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		if vv := r.Header["X-Forwarded-Proto"]; len(vv) == 1 && (vv[0] == "http" || vv[0] == "https") {
			proto = vv[0]
		}
		if vv := r.Header["X-Forwarded-Host"]; len(vv) == 1 && vv[0] != "" {
			host = vv[0]
		}
	} else {
		delete(r.Header, "Forwarded")
	}
	// The client certificate's identity: this connection's verified one,
	// else a trusted proxy's headers, else none (a client's own copies
	// never pass).
	if leaf := certid.Leaf(r.TLS); leaf != nil {
		certid.Set(r.Header, leaf)
	} else if !trusted {
		certid.Strip(r.Header)
	}
	// One backing array for the three values, each capped: the room the
	// request's context has for them, else a new one.
	var v []string
	if c != nil && c.Forwarded[1] == "" {
		v = c.Forwarded[:]
	} else {
		v = make([]string, 3)
	}
	v[0], v[1], v[2] = ip, proto, host
	r.Header["X-Forwarded-For"] = v[0:1:1]
	r.Header["X-Forwarded-Proto"] = v[1:2:2]
	r.Header["X-Forwarded-Host"] = v[2:3:3]
}

// rewrite applies strip_prefix / rewrite to an outbound URL (Do's
// Policy.Path).
func (p *Proxy) rewrite(u *url.URL) {
	v := p.outURL(u)
	u.Path, u.RawPath = v.Path, v.RawPath
}

// outURL builds the upstream URL's path and query: the request's after
// strip_prefix / rewrite (Do adds the scheme and the target's address).
func (p *Proxy) outURL(in *url.URL) url.URL { return p.cfg.OutboundURL(in) }

// OutboundURL is the path and query the upstream receives for the request
// URL in: the request's after strip_prefix / rewrite, as the proxy
// forwards it (the admin API's explain endpoint shows it too).
func (c *Config) OutboundURL(in *url.URL) url.URL {
	u := url.URL{Path: in.Path, RawPath: in.RawPath, RawQuery: in.RawQuery}
	if !c.StripPrefix && !c.HasRewrite {
		return u
	}
	pre := c.Prefix
	if !strings.HasPrefix(in.Path, pre) {
		return u
	}
	repl := ""
	if c.HasRewrite {
		repl = c.Rewrite
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

// withPath returns a shallow copy of r whose URL has the path of
// rewrite.path, its captures percent-encoded again; the query is kept.
func (p *Proxy) withPath(r *http.Request) *http.Request {
	var params []exchange.Param
	if ex := exchange.From(r.Context()); ex != nil {
		params = ex.Params
	}
	esc := p.cfg.RewritePath.ExpandString(params, r.URL.RawQuery, capture.Path)
	u := *r.URL
	u.RawPath = ""
	if dec, err := url.PathUnescape(esc); err == nil {
		u.Path = dec
		if dec != esc {
			u.RawPath = esc
		}
	} else {
		u.Path = esc
	}
	r2 := new(http.Request)
	*r2 = *r
	r2.URL = &u
	return r2
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

func isStreamType(ct string) bool {
	return strings.HasPrefix(ct, "text/event-stream") || strings.HasPrefix(ct, "application/grpc")
}

var errClientWrite = errors.New("write to client failed")

// copyBody streams src to w with a pooled buffer; streaming bodies are
// flushed after every read so events reach the client as they arrive.
func copyBody(w http.ResponseWriter, src io.Reader, streaming bool) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	rc := http.NewResponseController(w)
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
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
