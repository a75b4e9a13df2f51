// Package otlptest is an in-process OTLP trace receiver for tests: a real
// gRPC server (opentelemetry.proto.collector.trace.v1.TraceService) or a
// real HTTP server (POST /v1/traces, protobuf) on 127.0.0.1 that keeps the
// spans it receives.
package otlptest

import (
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	collectortracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// Span is one received span, flattened.
type Span struct {
	TraceID, SpanID, ParentSpanID string // hex; ParentSpanID "" for a root
	Name                          string
	Kind                          tracepb.Span_SpanKind
	Attrs                         map[string]any // string, int64, float64 or bool
	Status                        tracepb.Status_StatusCode
	StatusMessage                 string
	Service                       string // the resource's service.name
}

// Str returns the string attribute key ("" when absent).
func (s Span) Str(key string) string { v, _ := s.Attrs[key].(string); return v }

// Int returns the integer attribute key (-1 when absent).
func (s Span) Int(key string) int64 {
	if v, ok := s.Attrs[key].(int64); ok {
		return v
	}
	return -1
}

// Collector receives spans.
type Collector struct {
	// Addr is the host:port to export to.
	Addr string

	discard atomic.Bool
	count   atomic.Int64

	mu      sync.Mutex
	spans   []Span
	headers []map[string]string // per export: the request's headers (lower-case names)
	changed chan struct{}
}

type grpcServer struct {
	collectortracepb.UnimplementedTraceServiceServer
	c *Collector
}

func (g grpcServer) Export(ctx context.Context, req *collectortracepb.ExportTraceServiceRequest) (*collectortracepb.ExportTraceServiceResponse, error) {
	h := map[string]string{}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		for k, vv := range md {
			if len(vv) > 0 {
				h[k] = vv[0]
			}
		}
	}
	g.c.add(req, h)
	return &collectortracepb.ExportTraceServiceResponse{}, nil
}

// StartGRPC starts an OTLP/gRPC receiver, stopped when t ends.
func StartGRPC(t testing.TB) *Collector {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &Collector{Addr: ln.Addr().String(), changed: make(chan struct{})}
	srv := grpc.NewServer()
	collectortracepb.RegisterTraceServiceServer(srv, grpcServer{c: c})
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return c
}

// StartHTTP starts an OTLP/HTTP receiver (POST /v1/traces, protobuf),
// stopped when t ends.
func StartHTTP(t testing.TB) *Collector {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &Collector{Addr: ln.Addr().String(), changed: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, r *http.Request) {
		if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
			http.Error(w, "want application/x-protobuf, got "+ct, http.StatusUnsupportedMediaType)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req collectortracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h := map[string]string{}
		for k, vv := range r.Header {
			h[lower(k)] = vv[0]
		}
		c.add(&req, h)
		out, _ := proto.Marshal(&collectortracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return c
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// Discard makes c count the spans it receives (Count) and keep none, for
// benchmarks.
func (c *Collector) Discard() { c.discard.Store(true) }

// Count returns how many spans c received.
func (c *Collector) Count() int64 { return c.count.Load() }

func (c *Collector) add(req *collectortracepb.ExportTraceServiceRequest, h map[string]string) {
	if c.discard.Load() {
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				c.count.Add(int64(len(ss.GetSpans())))
			}
		}
		return
	}
	var got []Span
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				sp := Span{
					TraceID: hex.EncodeToString(s.GetTraceId()), SpanID: hex.EncodeToString(s.GetSpanId()),
					Name: s.GetName(), Kind: s.GetKind(), Attrs: map[string]any{},
					Status: s.GetStatus().GetCode(), StatusMessage: s.GetStatus().GetMessage(), Service: service,
				}
				if p := s.GetParentSpanId(); len(p) > 0 {
					sp.ParentSpanID = hex.EncodeToString(p)
				}
				for _, kv := range s.GetAttributes() {
					sp.Attrs[kv.GetKey()] = value(kv.GetValue())
				}
				got = append(got, sp)
			}
		}
	}
	c.count.Add(int64(len(got)))
	c.mu.Lock()
	c.spans = append(c.spans, got...)
	c.headers = append(c.headers, h)
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

func value(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		return x.DoubleValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	}
	return v.String()
}

// Spans returns the spans received so far.
func (c *Collector) Spans() []Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Span(nil), c.spans...)
}

// Headers returns the headers of each export received (lower-case names).
func (c *Collector) Headers() []map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]map[string]string(nil), c.headers...)
}

// Wait returns the spans received once done(spans) holds, or fails t
// after timeout with what arrived.
func (c *Collector) Wait(t testing.TB, timeout time.Duration, done func([]Span) bool) []Span {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		spans := append([]Span(nil), c.spans...)
		ch := c.changed
		c.mu.Unlock()
		if done(spans) {
			return spans
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("otlptest: condition not met after %v; %d spans received: %+v", timeout, len(spans), spans)
			return nil
		}
	}
}

// Trace returns the spans of trace id (hex).
func Trace(spans []Span, id string) []Span {
	var out []Span
	for _, s := range spans {
		if s.TraceID == id {
			out = append(out, s)
		}
	}
	return out
}

// Kind returns the spans of kind k.
func Kind(spans []Span, k tracepb.Span_SpanKind) []Span {
	var out []Span
	for _, s := range spans {
		if s.Kind == k {
			out = append(out, s)
		}
	}
	return out
}
