// Package exchange carries the per-request state every stage of the gateway
// shares (request ID, chosen route, upstream and target, outcome) and writes
// the gateway's JSON error responses. It is a leaf package so that policies,
// the proxy and the top-level handler can all use it without import cycles.
package exchange

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/rampart-gw/rampart/internal/spool"
)

// Exchange is the state of one request passing through the gateway. It is
// created by the top-level handler and reachable from the request context.
type Exchange struct {
	// RequestID is the sanitized or generated request ID.
	RequestID string
	// Start is when the gateway began handling the request.
	Start time.Time
	// Route is the matched route's name ("" when none matched).
	Route string
	// Upstream and Target are where the request was sent, once known.
	Upstream string
	Target   string
	// Code is the error code of a gateway-made error response ("" otherwise).
	Code string
	// Attempts counts upstream attempts (more than 1 with retries).
	Attempts int
	// ClientIP is the client's address as the listener's trusted_proxies
	// resolve it (the TCP peer unless that is a trusted proxy); "" outside
	// a listener. PeerTrusted says whether the peer is a trusted proxy,
	// whose forwarding headers are passed on.
	ClientIP    string
	PeerTrusted bool
	// Consumer is the authenticated client's name, set by an
	// authentication policy (api_key, jwt); "" when none authenticated.
	Consumer string
	// Roles are the authenticated client's roles (read-only; shared with
	// the compiled policy, never modify).
	Roles []string
	// Claims are the verified claims of the request's token, set by the
	// jwt policy (nil without one); read-only, shared with the policy's
	// verified-token cache: never modify.
	Claims map[string]any
	// WAFRules are the ids of the rules a waf policy matched, for the
	// access log (nil when none did); WAFScore is the inbound anomaly
	// score it computed (0 without a match). Detect mode sets them too.
	WAFRules []int
	WAFScore int
	// Err is a failure a route handler gave up with, waiting for the
	// route's render (route.Fail sets it, route.Errors takes it).
	Err error
	// Unanswered, when not 0, is the status logged for a request the
	// gateway deliberately answered with nothing: 499 when the client went
	// away (nginx's code). It is never sent.
	Unanswered int
	// Params are the route's path captures ({id}, {*rest} of a template,
	// (?P<id>...) of a regex), percent-decoded, for the routes whose
	// settings use them (rewrite.path, aggregate, headers values,
	// hash_key param:NAME); nil for every other route.
	Params []Param
	// GRPCStatus is the gRPC status code of a gRPC call's answer as its
	// decimal text ("0" OK, "14" UNAVAILABLE): the upstream's grpc-status,
	// or the code of a gateway-made error. "" for other requests, and for
	// a gRPC call that ended without one.
	GRPCStatus string
	// TraceID and SpanID identify the request's SERVER span when tracing
	// is on and the request is sampled (all zero otherwise), for the access
	// log's trace_id and span_id. The tracing code sets them; they are
	// plain arrays so that this package stays a leaf and costs nothing
	// with tracing off.
	TraceID [16]byte
	SpanID  [8]byte
	// Trace is the request's SERVER span when tracing is on (nil
	// otherwise): each upstream attempt starts its CLIENT span from it.
	Trace Trace
	// RejectedBy is the name of the route policy (as the config names it)
	// that refused the request with a gateway-made error ("" when none
	// did), for the access log's rejected_by and the SERVER
	// span's attribute.
	RejectedBy string
	// Policy is the name of the route policy now running ("" outside the
	// policies), which compile's stages set; Error copies it to RejectedBy.
	Policy string
	// UpstreamDuration is the time spent in upstream attempts (from the
	// first attempt's start to the response head of the last), for the
	// access log's upstream_duration and the spans.
	UpstreamDuration time.Duration
	// Spool is the listener's request body spool, which a route's
	// request_buffering reads the body into (nil outside a listener: the
	// body streams).
	Spool *spool.Spool
}

// Trace is a traced request's SERVER span as the upstream calls see it
// (internal/telemetry/tracing implements it; an interface so that this
// package stays a leaf).
type Trace interface {
	// Attempt starts the CLIENT span of upstream attempt n (1 = the
	// first) of out, the attempt's own request, to ex's Upstream and
	// Target, and writes the span's traceparent (and tracestate) into
	// out.Header. end, called once, ends the span with the response
	// status (0: none) and the attempt's error (nil: none).
	Attempt(out *http.Request, ex *Exchange, n int) (end func(status int, err error))
}

// Param is one path capture of the matched route.
type Param struct {
	Name, Value string
	// Rest marks a {*name} capture, whose slashes separate segments
	// and stay slashes when substituted into a path.
	Rest bool
}

// Param returns the value of the capture name.
func (e *Exchange) Param(name string) (string, bool) {
	for _, p := range e.Params {
		if p.Name == name {
			return p.Value, true
		}
	}
	return "", false
}

// ErrBodyTooLarge is the error a request body over the listener's
// max_body_bytes fails its reads with.
var ErrBodyTooLarge = errors.New("request body too large")

// ErrMalformedBody is what a request body that a policy decodes on the
// fly fails its reads with when the client's encoding is broken (a
// gRPC-Web text body that is not base64). An upstream call that fails with
// it is the client's fault: 400 bad_request, no retry, and nothing counted
// against the target or its circuit breaker.
var ErrMalformedBody = errors.New("malformed request body")

// BodyTooLarge reports whether r's body ran over the listener's
// max_body_bytes while being read: whether its body is one that says so
// (the gateway's limited body).
func BodyTooLarge(r *http.Request) bool {
	b, ok := r.Body.(interface{ TooLarge() bool })
	return ok && b.TooLarge()
}

type ctxKey struct{}

// With returns ctx carrying e.
func With(ctx context.Context, e *Exchange) context.Context {
	return context.WithValue(ctx, ctxKey{}, e)
}

// Context is a request context that carries its Exchange: what With does,
// in one allocation shared with the Exchange itself (issue 6). It behaves
// exactly as context.WithValue(Parent, ..., &Exchange) would: deadline,
// cancellation and every other value come from Parent.
//
// Set Parent before first use and do not change it afterwards. A Context
// is not pooled: whatever still holds the request's context after the
// request (a transport goroutine, a log line) keeps it alive.
type Context struct {
	context.Context // the parent
	Exchange        Exchange
	// Forwarded is room for the values of the X-Forwarded-For, -Proto and
	// -Host headers the proxy adds, so that they need no allocation of
	// their own; the proxy takes it while Forwarded[1] (the protocol,
	// never empty once set) is "". It lives here, in the request's one
	// allocation, because the values must live as long as the request's
	// header map: without it every proxied request pays one allocation
	// more (BenchmarkGatewayOnly 5 -> 6 allocs/op).
	Forwarded [3]string
}

// Value returns the Exchange for this package's key and asks the parent
// for any other key.
func (c *Context) Value(key any) any {
	if _, ok := key.(ctxKey); ok {
		return &c.Exchange
	}
	return c.Context.Value(key)
}

// AfterFunc arranges for f to run after the parent is done, as
// context.AfterFunc does. It lets context.WithCancel, WithTimeout and
// AfterFunc bind to a request's context without a goroutine when the server's
// request context implements AfterFunc itself (h1server's does) rather than
// being one of the context package's own types.
//
// A parent that binds callbacks itself gets f directly: context.AfterFunc
// would wrap f in a cancelCtx of its own and ask the parent for its done
// channel (which h1server's request context makes on demand) before
// calling the parent's AfterFunc anyway.
func (c *Context) AfterFunc(f func()) (stop func() bool) {
	if a, ok := c.Context.(interface {
		AfterFunc(func()) func() bool
	}); ok {
		return a.AfterFunc(f)
	}
	return context.AfterFunc(c.Context, f)
}

// From returns the Exchange of ctx, or nil.
func From(ctx context.Context) *Exchange {
	if c, ok := ctx.(*Context); ok {
		return &c.Exchange
	}
	e, _ := ctx.Value(ctxKey{}).(*Exchange)
	return e
}

// Error writes a gateway-made error as the JSON body CONTRACT.md defines:
// {"error":{"status":S,"code":C,"message":M,"request_id":R}}. It records the
// code on the request's Exchange, if any, for logs and metrics. A gRPC call
// (IsGRPC) gets the error as a gRPC status instead (WriteGRPCError), since
// a gRPC client cannot read a JSON body (docs/grpc.md).
func Error(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	rid := ""
	if r != nil {
		if e := From(r.Context()); e != nil {
			e.Code = code
			rid = e.RequestID
			if e.Policy != "" && e.RejectedBy == "" {
				e.RejectedBy = e.Policy
			}
		}
	}
	if IsGRPC(r) {
		if e := From(r.Context()); e != nil {
			e.GRPCStatus = GRPCCodeName(GRPCCode(status, code))
		}
		WriteGRPCError(w, r.Header["Content-Type"][0], GRPCCode(status, code), code, msg)
		return
	}
	WriteError(w, status, code, msg, rid)
}

// WriteError writes the JSON error body with an explicit request ID.
func WriteError(w http.ResponseWriter, status int, code, msg, requestID string) {
	b := make([]byte, 0, 128+len(msg)+len(requestID))
	b = append(b, `{"error":{"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"code":`...)
	b = strconv.AppendQuote(b, code)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, msg)
	b = append(b, `,"request_id":`...)
	b = appendJSONString(b, requestID)
	b = append(b, "}}\n"...)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Encoding")
	h.Del("Trailer")
	w.WriteHeader(status)
	w.Write(b)
}

const hex = "0123456789abcdef"

// appendJSONString appends s as a JSON string, escaping what RFC 8259
// requires plus <, > and & so the body is safe to embed in HTML.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20 || c == '<' || c == '>' || c == '&' || c == 0x7f:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// IsGRPC reports whether r is a gRPC call: its content-type is
// application/grpc, application/grpc+FORMAT or application/grpc-web*
// (gRPC over HTTP/2, PROTOCOL-HTTP2.md). It reads the header map
// directly, so it costs one map look-up and no allocation.
func IsGRPC(r *http.Request) bool {
	if r == nil {
		return false
	}
	v := r.Header["Content-Type"]
	if len(v) == 0 {
		return false
	}
	ct := v[0]
	const p = "application/grpc"
	if len(ct) < len(p) || !equalFoldASCII(ct[:len(p)], p) {
		return false
	}
	if len(ct) == len(p) {
		return true
	}
	switch ct[len(p)] {
	case '+', ';', '-':
		return true
	}
	return false
}

// equalFoldASCII is strings.EqualFold for ASCII.
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		c, d := a[i], b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}
