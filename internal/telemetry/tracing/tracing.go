// Package tracing exports the gateway's OpenTelemetry spans over OTLP
// (observability.tracing, docs/operations.md "Tracing"): one SERVER span
// per request, started by the top-level handler, and one CLIENT span per
// upstream attempt, started by cluster.Upstream.Do through the request's
// exchange.Trace. W3C traceparent/tracestate is read and written, B3 is
// read; sampling is parent-based with a TraceIDRatioBased root; export is
// batched and never blocks a request, and every span lost is counted in
// rampart_tracing_spans_dropped_total.
//
// With tracing off there is no Tracer: the handler checks for nil and
// touches nothing else, so the request path costs what it did.
package tracing

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/credentials"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/exchange"
)

// DefaultFlushInterval is how often queued spans are exported when
// OTEL_BSP_SCHEDULE_DELAY (milliseconds, as the OTel SDKs read it) is not
// set.
const DefaultFlushInterval = time.Second

// Config configures a Tracer.
type Config struct {
	// Tracing is observability.tracing, validated, defaults applied.
	Tracing config.Tracing
	// Dropped counts the spans lost (NewDropped). Required.
	Dropped prometheus.Counter
	// Log receives export failures (once per outage). Default slog.Default().
	Log *slog.Logger
	// FlushInterval is how often queued spans are exported. Default
	// OTEL_BSP_SCHEDULE_DELAY, else DefaultFlushInterval.
	FlushInterval time.Duration
	// Version is the service.version resource attribute ("" for none).
	Version string
}

// NewDropped returns rampart_tracing_spans_dropped_total, to be registered
// once and shared by every Tracer the process builds.
func NewDropped() prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{
		Name: "rampart_tracing_spans_dropped_total",
		Help: "Spans not exported: the export queue was full or the export to the OTLP collector failed.",
	})
}

// Tracer is one tracing configuration at work: its provider, exporter and
// batch processor. A reload with the same observability.tracing keeps it;
// another builds a new one and shuts this one down.
type Tracer struct {
	cfg      config.Tracing
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
	w3c      propagation.TraceContext
}

// New builds a Tracer. It connects lazily: an unreachable collector makes
// exports fail (and count), never New.
func New(cfg Config) (*Tracer, error) {
	t := cfg.Tracing
	if cfg.Dropped == nil {
		return nil, errors.New("tracing: no dropped-span counter")
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	interval := cfg.FlushInterval
	if interval <= 0 {
		interval = DefaultFlushInterval
		if ms, err := strconv.Atoi(os.Getenv("OTEL_BSP_SCHEDULE_DELAY")); err == nil && ms > 0 {
			interval = time.Duration(ms) * time.Millisecond
		}
	}
	tlsCfg, err := clientTLS(t)
	if err != nil {
		return nil, err
	}
	exp, err := newExporter(t, tlsCfg)
	if err != nil {
		return nil, err
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", t.ServiceName)}
	if cfg.Version != "" {
		attrs = append(attrs, attribute.String("service.version", cfg.Version))
	}
	root := sdktrace.TraceIDRatioBased(t.SampleRatio)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(resource.NewSchemaless(attrs...)),
		sdktrace.WithSampler(sdktrace.ParentBased(root, sdktrace.WithRemoteParentNotSampled(deferred{root}))),
		sdktrace.WithSpanProcessor(newBatcher(exp, interval, cfg.Dropped, log)),
	)
	return &Tracer{cfg: t, provider: tp, tracer: tp.Tracer("github.com/rampart-gw/rampart")}, nil
}

// Same reports whether t was built from cfg, so that a reload keeps it.
func (t *Tracer) Same(cfg *config.Tracing) bool {
	return t != nil && cfg != nil && equal(&t.cfg, cfg)
}

func equal(a, b *config.Tracing) bool {
	if a.OTLPEndpoint != b.OTLPEndpoint || a.Protocol != b.Protocol || a.SampleRatio != b.SampleRatio ||
		a.ServiceName != b.ServiceName || a.Insecure != b.Insecure || len(a.Headers) != len(b.Headers) {
		return false
	}
	for k, v := range a.Headers {
		if w, ok := b.Headers[k]; !ok || w != v {
			return false
		}
	}
	if (a.TLS == nil) != (b.TLS == nil) {
		return false
	}
	return a.TLS == nil || *a.TLS == *b.TLS
}

// Shutdown exports what is queued within ctx and stops the exporter.
func (t *Tracer) Shutdown(ctx context.Context) error {
	return t.provider.Shutdown(ctx)
}

// ForceFlush exports what is queued.
func (t *Tracer) ForceFlush(ctx context.Context) error {
	return t.provider.ForceFlush(ctx)
}

// clientTLS returns the TLS settings towards the collector, or nil for
// plaintext: insecure, or a loopback endpoint without tls.
func clientTLS(t config.Tracing) (*tls.Config, error) {
	host, _, _ := net.SplitHostPort(t.OTLPEndpoint)
	if t.Insecure || (t.TLS == nil && loopback(host)) {
		return nil, nil
	}
	c := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if s := t.TLS; s != nil {
		if s.ServerName != "" {
			c.ServerName = s.ServerName
		}
		c.InsecureSkipVerify = s.InsecureSkipVerify
		if s.CAFile != "" {
			pem, err := os.ReadFile(s.CAFile)
			if err != nil {
				return nil, &KeyError{Key: "tls.ca_file", Err: err}
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, &KeyError{Key: "tls.ca_file", Err: fmt.Errorf("no PEM certificate in %s", s.CAFile)}
			}
			c.RootCAs = pool
		}
		if s.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
			if err != nil {
				return nil, &KeyError{Key: "tls.cert_file", Err: err}
			}
			c.Certificates = []tls.Certificate{cert}
		}
	}
	return c, nil
}

// KeyError is a setting of observability.tracing that New could not use:
// Key is its path below observability.tracing (tls.ca_file).
type KeyError struct {
	Key string
	Err error
}

func (e *KeyError) Error() string { return e.Key + ": " + e.Err.Error() }
func (e *KeyError) Unwrap() error { return e.Err }

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// retry bounds the exporter's own retries of a failed export, so that a
// dead collector holds a batch for seconds, not the exporters' default
// minute; the queue meanwhile absorbs new spans or counts them dropped.
var retry = struct {
	initial, max, elapsed time.Duration
}{100 * time.Millisecond, 500 * time.Millisecond, 2 * time.Second}

func newExporter(t config.Tracing, tlsCfg *tls.Config) (sdktrace.SpanExporter, error) {
	switch t.Protocol {
	case "http":
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(t.OTLPEndpoint), otlptracehttp.WithTimeout(exportTimeout),
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: true, InitialInterval: retry.initial, MaxInterval: retry.max, MaxElapsedTime: retry.elapsed})}
		if tlsCfg == nil {
			opts = append(opts, otlptracehttp.WithInsecure())
		} else {
			opts = append(opts, otlptracehttp.WithTLSClientConfig(tlsCfg))
		}
		if len(t.Headers) > 0 {
			opts = append(opts, otlptracehttp.WithHeaders(t.Headers))
		}
		return otlptrace.New(context.Background(), otlptracehttp.NewClient(opts...))
	case "grpc", "":
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(t.OTLPEndpoint), otlptracegrpc.WithTimeout(exportTimeout),
			otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: true, InitialInterval: retry.initial, MaxInterval: retry.max, MaxElapsedTime: retry.elapsed})}
		if tlsCfg == nil {
			opts = append(opts, otlptracegrpc.WithInsecure())
		} else {
			opts = append(opts, otlptracegrpc.WithTLSCredentials(credentials.NewTLS(tlsCfg)))
		}
		if len(t.Headers) > 0 {
			opts = append(opts, otlptracegrpc.WithHeaders(t.Headers))
		}
		return otlptrace.New(context.Background(), otlptracegrpc.NewClient(opts...))
	}
	return nil, fmt.Errorf("tracing: unknown protocol %q", t.Protocol)
}

// deferred samples a remote parent that was not sampled: a B3 parent that
// left the decision to the gateway goes to the root (ratio) sampler; any
// other stays unsampled, as its caller decided.
type deferred struct{ root sdktrace.Sampler }

func (d deferred) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	if p.ParentContext != nil && p.ParentContext.Value(deferredKey{}) != nil {
		return d.root.ShouldSample(p)
	}
	psc := trace.SpanContextFromContext(p.ParentContext)
	return sdktrace.SamplingResult{Decision: sdktrace.Drop, Tracestate: psc.TraceState()}
}

func (d deferred) Description() string { return "B3DeferredOr{" + d.root.Description() + "}" }

// Span is one traced request: its SERVER span, and the exchange.Trace its
// upstream attempts start their CLIENT spans from.
type Span struct {
	t    *Tracer
	ctx  context.Context // carries the SERVER span: the CLIENT spans' parent
	span trace.Span
}

var _ exchange.Trace = (*Span)(nil)

// Start begins the SERVER span of r: a child of the caller's W3C
// traceparent (with its tracestate), else of its B3 headers, else a new
// trace. It sets ex.Trace, and ex.TraceID and SpanID when the span is
// sampled, and writes the span's traceparent into r.Header (an upstream
// attempt replaces it with its CLIENT span's). The returned context carries
// the span and has parent as its parent.
func (t *Tracer) Start(parent context.Context, r *http.Request, ex *exchange.Exchange) (context.Context, *Span) {
	carrier := propagation.HeaderCarrier(r.Header)
	ctx := t.w3c.Extract(parent, carrier)
	if !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = B3{}.Extract(parent, carrier)
	}
	ctx, span := t.tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer))
	if sc := span.SpanContext(); sc.IsSampled() {
		ex.TraceID, ex.SpanID = sc.TraceID(), sc.SpanID()
	}
	delete(r.Header, "Tracestate")
	t.w3c.Inject(ctx, carrier)
	s := &Span{t: t, ctx: ctx, span: span}
	ex.Trace = s
	if !span.IsRecording() {
		return ctx, s // not sampled: no attributes to pay for
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	attrs := []attribute.KeyValue{
		attribute.String("http.request.method", r.Method),
		attribute.String("url.path", r.URL.Path),
		attribute.String("url.scheme", scheme),
		attribute.String("server.address", r.Host),
		attribute.String("client.address", ex.ClientIP),
		attribute.String("network.peer.address", hostOf(r.RemoteAddr)),
		attribute.String("network.protocol.version", protoVersion(r)),
		attribute.String("rampart.request_id", ex.RequestID),
	}
	if ua := r.UserAgent(); ua != "" {
		attrs = append(attrs, attribute.String("user_agent.original", ua))
	}
	span.SetAttributes(attrs...)
	return ctx, s
}

// End ends the SERVER span with what the request came to: the route,
// upstream, target, status, attempts and refusing policy, and an error
// status for a gateway-made error (its code) or a 5xx.
func (s *Span) End(status int, ex *exchange.Exchange) {
	span := s.span
	if !span.IsRecording() {
		span.End()
		return
	}
	if ex.Route != "" {
		span.SetName(spanName(s.methodOf(), ex.Route))
	}
	attrs := make([]attribute.KeyValue, 0, 8)
	attrs = append(attrs, attribute.Int("http.response.status_code", status))
	if ex.Route != "" {
		attrs = append(attrs, attribute.String("http.route", ex.Route), attribute.String("rampart.route", ex.Route))
	}
	if ex.Upstream != "" {
		attrs = append(attrs, attribute.String("rampart.upstream", ex.Upstream))
	}
	if ex.Target != "" {
		attrs = append(attrs, attribute.String("rampart.target", ex.Target))
	}
	if ex.Attempts > 0 {
		attrs = append(attrs, attribute.Int("rampart.attempts", ex.Attempts))
	}
	if ex.RejectedBy != "" {
		attrs = append(attrs, attribute.String("rampart.rejected_by", ex.RejectedBy))
	}
	if ex.Consumer != "" {
		attrs = append(attrs, attribute.String("rampart.consumer", ex.Consumer))
	}
	grpcFailed := false
	if g, err := strconv.Atoi(ex.GRPCStatus); err == nil {
		attrs = append(attrs, attribute.Int("rpc.grpc.status_code", g))
		grpcFailed = grpcServerError(g)
	}
	switch {
	case ex.Code != "":
		attrs = append(attrs, attribute.String("rampart.error_code", ex.Code), attribute.String("error.type", ex.Code))
		span.SetStatus(codes.Error, ex.Code)
	case status >= 500:
		attrs = append(attrs, attribute.String("error.type", strconv.Itoa(status)))
		span.SetStatus(codes.Error, "")
	case grpcFailed:
		attrs = append(attrs, attribute.String("error.type", ex.GRPCStatus))
		span.SetStatus(codes.Error, "grpc-status "+ex.GRPCStatus)
	}
	span.SetAttributes(attrs...)
	span.End()
}

// grpcServerError reports whether a gRPC status is a server-side failure,
// which OTel's gRPC conventions mark Error on a SERVER span: UNKNOWN,
// DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS.
func grpcServerError(code int) bool {
	switch code {
	case 2, 4, 12, 13, 14, 15:
		return true
	}
	return false
}

// methodOf returns the request method the span started with (its name).
func (s *Span) methodOf() string {
	if ro, ok := s.span.(sdktrace.ReadOnlySpan); ok {
		return ro.Name()
	}
	return ""
}

func spanName(method, route string) string {
	if method == "" {
		return route
	}
	return method + " " + route
}

// Attempt starts the CLIENT span of upstream attempt n of out, a child of
// the SERVER span, and writes its traceparent and tracestate into
// out.Header (exchange.Trace).
func (s *Span) Attempt(out *http.Request, ex *exchange.Exchange, n int) func(status int, err error) {
	ctx, span := s.t.tracer.Start(s.ctx, out.Method, trace.WithSpanKind(trace.SpanKindClient))
	if out.Header == nil {
		out.Header = make(http.Header)
	}
	delete(out.Header, "Tracestate")
	s.t.w3c.Inject(ctx, propagation.HeaderCarrier(out.Header))
	if !span.IsRecording() {
		return noEnd // not sampled: the traceparent is all it is for
	}
	host, port := out.URL.Host, ""
	if h, p, err := net.SplitHostPort(host); err == nil {
		host, port = h, p
	}
	attrs := make([]attribute.KeyValue, 0, 12)
	attrs = append(attrs,
		attribute.String("http.request.method", out.Method),
		attribute.String("url.path", out.URL.Path),
		attribute.String("url.scheme", out.URL.Scheme),
		attribute.String("server.address", host),
		attribute.String("network.peer.address", host),
		attribute.String("rampart.upstream", ex.Upstream),
		attribute.String("rampart.target", ex.Target),
		attribute.Int("rampart.attempt", n),
	)
	if p, err := strconv.Atoi(port); err == nil {
		attrs = append(attrs, attribute.Int("server.port", p), attribute.Int("network.peer.port", p))
	}
	if ex.Route != "" {
		attrs = append(attrs, attribute.String("rampart.route", ex.Route))
	}
	if n > 1 {
		attrs = append(attrs, attribute.Int("http.request.resend_count", n-1))
	}
	span.SetName(spanName(out.Method, ex.Upstream))
	span.SetAttributes(attrs...)
	return func(status int, err error) {
		if status > 0 {
			span.SetAttributes(attribute.Int("http.response.status_code", status))
		}
		switch {
		case err != nil:
			span.SetAttributes(attribute.String("error.type", errorType(err)))
			span.SetStatus(codes.Error, err.Error())
		case status >= 400:
			span.SetAttributes(attribute.String("error.type", strconv.Itoa(status)))
			span.SetStatus(codes.Error, "")
		}
		span.End()
	}
}

func noEnd(int, error) {}

// errorType names an attempt's failure for error.type.
func errorType(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return "connect_failure"
	}
	return "reset"
}

func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

func protoVersion(r *http.Request) string {
	switch r.ProtoMajor {
	case 2:
		return "2"
	case 3:
		return "3"
	}
	if r.ProtoMinor == 0 {
		return "1.0"
	}
	return "1.1"
}
