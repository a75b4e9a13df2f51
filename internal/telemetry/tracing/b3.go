package tracing

import (
	"context"
	"strings"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// B3 reads Zipkin's B3 trace context on input, in both of its forms: the
// single "b3" header ({trace}-{span}[-{sampled}[-{parent}]]) and the
// X-B3-TraceId, X-B3-SpanId, X-B3-Sampled and X-B3-Flags headers
// (github.com/openzipkin/b3-propagation). The single header wins when both
// are present. A 64-bit trace id is widened to 128 bits with leading
// zeros. Sampled "1" or "true", or debug ("d", X-B3-Flags: 1), make a
// sampled parent; "0" or "false" an unsampled one; no decision leaves it
// to the gateway's sample_ratio (deferred). Inject writes nothing: the
// gateway sends W3C traceparent upstream.
type B3 struct{}

var _ propagation.TextMapPropagator = B3{}

// The B3 headers, in canonical form.
const (
	b3Single  = "b3"
	b3TraceID = "x-b3-traceid"
	b3SpanID  = "x-b3-spanid"
	b3Sampled = "x-b3-sampled"
	b3Flags   = "x-b3-flags"
)

// deferredKey marks a context whose B3 parent left sampling to the
// gateway (see sampler).
type deferredKey struct{}

// Inject writes nothing: B3 is accepted on input only.
func (B3) Inject(context.Context, propagation.TextMapCarrier) {}

// Fields returns the headers Extract reads.
func (B3) Fields() []string {
	return []string{b3Single, b3TraceID, b3SpanID, b3Sampled, b3Flags}
}

// Extract returns ctx with the remote span context of carrier's B3
// headers, or ctx unchanged when they are absent or malformed.
func (B3) Extract(ctx context.Context, carrier propagation.TextMapCarrier) context.Context {
	var sc trace.SpanContext
	var deferred, ok bool
	if v := carrier.Get(b3Single); v != "" {
		sc, deferred, ok = parseB3Single(v)
	} else if t := carrier.Get(b3TraceID); t != "" {
		sc, deferred, ok = parseB3Multi(t, carrier.Get(b3SpanID), carrier.Get(b3Sampled), carrier.Get(b3Flags))
	}
	if !ok {
		return ctx
	}
	if deferred {
		ctx = context.WithValue(ctx, deferredKey{}, true)
	}
	return trace.ContextWithRemoteSpanContext(ctx, sc)
}

// parseB3Single parses the single b3 header. A header with only a
// sampling state ("0", "1", "d") carries no ids and so no parent.
func parseB3Single(v string) (sc trace.SpanContext, deferred, ok bool) {
	tid, rest, found := strings.Cut(v, "-")
	if !found {
		return sc, false, false
	}
	sid, rest, more := strings.Cut(rest, "-")
	sampled := ""
	if more {
		sampled, rest, more = strings.Cut(rest, "-")
		if more && (len(rest) != 16 || !isHex(rest)) {
			return sc, false, false // the parent span id, when present, must be valid
		}
		if sampled == "" {
			return sc, false, false
		}
	}
	flags, deferred, ok := b3Decision(sampled, "")
	if !ok {
		return sc, false, false
	}
	return b3Context(tid, sid, flags, deferred)
}

// parseB3Multi parses the X-B3-* headers.
func parseB3Multi(tid, sid, sampled, debug string) (sc trace.SpanContext, deferred, ok bool) {
	flags, deferred, ok := b3Decision(sampled, debug)
	if !ok {
		return sc, false, false
	}
	return b3Context(tid, sid, flags, deferred)
}

// b3Decision reads a sampling state (single-header letters or the
// X-B3-Sampled values) and X-B3-Flags.
func b3Decision(sampled, debug string) (flags trace.TraceFlags, deferred, ok bool) {
	switch debug {
	case "":
	case "1":
		return trace.FlagsSampled, false, true // debug implies sampled
	default:
		return 0, false, false
	}
	switch sampled {
	case "":
		return 0, true, true
	case "1", "d", "true", "True":
		return trace.FlagsSampled, false, true
	case "0", "false", "False":
		return 0, false, true
	}
	return 0, false, false
}

func b3Context(tid, sid string, flags trace.TraceFlags, deferred bool) (trace.SpanContext, bool, bool) {
	var sc trace.SpanContext
	if len(tid) == 16 {
		tid = "0000000000000000" + tid
	}
	if len(tid) != 32 || len(sid) != 16 || !isHex(tid) || !isHex(sid) {
		return sc, false, false
	}
	traceID, err := trace.TraceIDFromHex(tid)
	if err != nil {
		return sc, false, false
	}
	spanID, err := trace.SpanIDFromHex(sid)
	if err != nil {
		return sc, false, false
	}
	sc = trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceFlags: flags, Remote: true})
	if !sc.IsValid() {
		return trace.SpanContext{}, false, false
	}
	return sc, deferred, true
}

// isHex reports whether s is lower-case hex, as B3 ids are.
func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
