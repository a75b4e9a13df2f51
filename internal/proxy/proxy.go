// Package proxy forwards a request to an upstream target and streams the
// response back: HTTP/1.1 and HTTP/2 on both sides, streaming bodies both
// ways (flushing streamed responses such as SSE as they arrive), WebSocket
// upgrades, trailers, and the forwarding headers. It is the terminal handler
// of a route's policy chain.
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

	"github.com/rampart-gw/rampart/internal/cluster"
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
	// Timeout bounds the wait for the upstream's response headers; 0 = none.
	Timeout time.Duration
	// Backends are the upstreams to choose from, by weight.
	Backends []Backend
	// RequestIDHeader is the canonical request ID header name.
	RequestIDHeader string
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

// ServeHTTP forwards r to a target of the route's upstream.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ex := exchange.From(r.Context())
	up := p.backend()
	target := up.Pick(r)
	if ex != nil {
		ex.Upstream = up.Name
	}
	if target == nil {
		w.Header().Set("Retry-After", "1")
		exchange.Error(w, r, http.StatusServiceUnavailable, "no_healthy_upstream", "upstream "+up.Name+" has no healthy target")
		return
	}
	if ex != nil {
		ex.Target = target.Addr
		ex.Attempts++
	}

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

	out := new(http.Request)
	*out = *r
	out.URL = p.outURL(r.URL, up.Scheme, target.Addr)
	out.RequestURI = ""
	out.Close = false
	out.Proto, out.ProtoMajor, out.ProtoMinor = "HTTP/1.1", 1, 1
	if r.ContentLength == 0 {
		out.Body = nil // lets the transport retry on a stale pooled connection
	}

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	var timedOut atomic.Bool
	var timer *time.Timer
	if p.cfg.Timeout > 0 {
		timer = time.AfterFunc(p.cfg.Timeout, func() { timedOut.Store(true); cancel() })
	}
	out = out.WithContext(ctx)

	target.InFlight.Add(1)
	start := time.Now()
	resp, err := up.Transport.RoundTrip(out)
	if timer != nil && !timer.Stop() {
		timedOut.Store(true)
	}
	elapsed := time.Since(start)
	defer target.InFlight.Add(-1)
	m := p.deps.Metrics
	if m != nil {
		m.UpstreamDuration.WithLabelValues(up.Name).Observe(elapsed.Seconds())
	}
	if err != nil {
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		if ex != nil && ex.BodyTooLarge {
			err = ErrBodyTooLarge
		}
		status, code, msg := p.classify(err, timedOut.Load(), r.Context().Err() != nil, target.Addr)
		if m != nil {
			m.UpstreamRequests.WithLabelValues(up.Name, target.Addr, code).Inc()
		}
		if r.Context().Err() != nil {
			// The client went away: nobody reads an answer. 499 is what
			// nginx logs for this.
			if ex != nil {
				ex.Code = "client_closed_request"
			}
			w.WriteHeader(499)
			return
		}
		exchange.Error(w, r, status, code, msg)
		return
	}
	if m != nil {
		m.UpstreamRequests.WithLabelValues(up.Name, target.Addr, m.Code(resp.StatusCode)).Inc()
	}

	if resp.StatusCode == http.StatusSwitchingProtocols {
		p.serveUpgrade(w, r, resp, upgrade)
		return
	}
	defer resp.Body.Close()

	removeHopByHop(resp.Header)
	h := w.Header()
	for k, vv := range resp.Header {
		h[k] = append(h[k], vv...)
	}
	if len(resp.Trailer) > 0 {
		names := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			names = append(names, k)
		}
		h["Trailer"] = []string{strings.Join(names, ", ")}
	}
	w.WriteHeader(resp.StatusCode)

	streaming := resp.ContentLength < 0 || isStreamType(resp.Header.Get("Content-Type"))
	if err := copyBody(w, resp.Body, streaming); err != nil {
		if r.Context().Err() == nil && !errors.Is(err, errClientWrite) {
			// The upstream broke off mid-body. Abort the client connection
			// (RST / h2 stream reset) so the client cannot mistake a
			// truncated body for a complete one.
			p.deps.Log.Debug("upstream body aborted", "route", p.cfg.Route, "target", target.Addr, "err", err)
		}
		if ex != nil {
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
}

// setForwarded adds the X-Forwarded-* headers.
func (p *Proxy) setForwarded(r *http.Request) {
	ip := clientIP(r.RemoteAddr)
	if prior := r.Header["X-Forwarded-For"]; len(prior) > 0 {
		ip = strings.Join(prior, ", ") + ", " + ip
	}
	r.Header["X-Forwarded-For"] = []string{ip}
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	r.Header["X-Forwarded-Proto"] = []string{proto}
	r.Header["X-Forwarded-Host"] = []string{r.Host}
}

// outURL builds the upstream URL: the target's address and the request's
// path after strip_prefix / rewrite.
func (p *Proxy) outURL(in *url.URL, scheme, addr string) *url.URL {
	u := &url.URL{Scheme: scheme, Host: addr, Path: in.Path, RawPath: in.RawPath, RawQuery: in.RawQuery}
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

// classify maps a round-trip error to a status, code and message.
func (p *Proxy) classify(err error, timedOut, clientGone bool, addr string) (int, string, string) {
	switch {
	case errors.Is(err, ErrBodyTooLarge):
		return http.StatusRequestEntityTooLarge, "body_too_large", "request body exceeds the limit"
	case timedOut:
		return http.StatusGatewayTimeout, "upstream_timeout", fmt.Sprintf("upstream did not answer within %s", p.cfg.Timeout)
	case clientGone:
		return 499, "client_closed_request", "client closed the request"
	case cluster.IsDialError(err):
		return http.StatusBadGateway, "upstream_unreachable", "cannot connect to upstream " + addr
	case isReset(err):
		return http.StatusBadGateway, "upstream_unreachable", "upstream closed the connection"
	}
	return http.StatusBadGateway, "bad_upstream_response", "invalid response from upstream"
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
