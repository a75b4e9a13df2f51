package tracing

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/exchange"
	"github.com/rampart-gw/rampart/internal/telemetry/tracing/otlptest"
)

func newTracer(t *testing.T, addr string, ratio float64) *Tracer {
	t.Helper()
	tr, err := New(Config{Tracing: config.Tracing{OTLPEndpoint: addr, Protocol: "grpc", SampleRatio: ratio, ServiceName: "unit"},
		Dropped: NewDropped(), Log: quiet, FlushInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Shutdown(context.Background()) })
	return tr
}

// TestSpanTree: Start sets the exchange's ids and Trace and writes the
// SERVER span's traceparent; Attempt writes the CLIENT span's; End and
// the attempt's end export both, with the exchange's attributes and the
// gateway error as status.
func TestSpanTree(t *testing.T) {
	col := otlptest.StartGRPC(t)
	tr := newTracer(t, col.Addr, 1)
	r := httptest.NewRequest("GET", "http://api.example.com/x", nil)
	ex := &exchange.Exchange{RequestID: "rid", ClientIP: "10.0.0.1"}
	_, s := tr.Start(context.Background(), r, ex)
	if ex.Trace != s || ex.TraceID == ([16]byte{}) || ex.SpanID == ([8]byte{}) {
		t.Fatalf("exchange not set: Trace %v, ids %x %x", ex.Trace, ex.TraceID, ex.SpanID)
	}
	tid, sid := hex.EncodeToString(ex.TraceID[:]), hex.EncodeToString(ex.SpanID[:])
	if got, want := r.Header.Get("Traceparent"), "00-"+tid+"-"+sid+"-01"; got != want {
		t.Errorf("request traceparent %q, want the SERVER span's %q", got, want)
	}
	ex.Route, ex.Upstream, ex.Target, ex.Attempts = "users", "users-v1", "127.0.0.1:9001", 1
	out := &http.Request{Method: "GET", URL: &url.URL{Scheme: "http", Host: "127.0.0.1:9001", Path: "/x"}, Header: http.Header{"Tracestate": {"stale=1"}}}
	end := s.Attempt(out, ex, 1)
	tp := out.Header.Get("Traceparent")
	if !strings.HasPrefix(tp, "00-"+tid+"-") || strings.Contains(tp, sid) || out.Header.Get("Tracestate") != "" {
		t.Errorf("attempt headers %v: want a new span of trace %s and no stale tracestate", out.Header, tid)
	}
	end(0, errors.New("dial tcp 127.0.0.1:9001: connect: connection refused"))
	ex.Code, ex.RejectedBy = "upstream_unreachable", ""
	s.End(502, ex)

	spans := col.Wait(t, 5*time.Second, func(s []otlptest.Span) bool { return len(s) == 2 })
	srv, cl := otlptest.Kind(spans, tracepb.Span_SPAN_KIND_SERVER), otlptest.Kind(spans, tracepb.Span_SPAN_KIND_CLIENT)
	if len(srv) != 1 || len(cl) != 1 {
		t.Fatalf("spans %+v, want one SERVER and one CLIENT", spans)
	}
	if srv[0].SpanID != sid || srv[0].TraceID != tid || cl[0].ParentSpanID != sid || tp != "00-"+tid+"-"+cl[0].SpanID+"-01" {
		t.Errorf("tree: SERVER %s/%s, CLIENT parent %s, attempt traceparent %s", srv[0].TraceID, srv[0].SpanID, cl[0].ParentSpanID, tp)
	}
	if srv[0].Status != tracepb.Status_STATUS_CODE_ERROR || srv[0].StatusMessage != "upstream_unreachable" || srv[0].Int("http.response.status_code") != 502 {
		t.Errorf("SERVER status %v %q code %d", srv[0].Status, srv[0].StatusMessage, srv[0].Int("http.response.status_code"))
	}
	if cl[0].Status != tracepb.Status_STATUS_CODE_ERROR || cl[0].Int("http.response.status_code") != -1 || cl[0].Int("server.port") != 9001 {
		t.Errorf("CLIENT status %v, status_code %d, port %d", cl[0].Status, cl[0].Int("http.response.status_code"), cl[0].Int("server.port"))
	}
	if srv[0].Name != "GET users" || cl[0].Name != "GET users-v1" || srv[0].Service != "unit" || srv[0].Str("client.address") != "10.0.0.1" {
		t.Errorf("names %q %q, service %q, client %q", srv[0].Name, cl[0].Name, srv[0].Service, srv[0].Str("client.address"))
	}
}

// TestUnsampled: at ratio 0 a new trace is not sampled: the exchange's
// ids stay zero, the traceparent still goes out with flags 00, nothing is
// exported.
func TestUnsampled(t *testing.T) {
	col := otlptest.StartGRPC(t)
	tr := newTracer(t, col.Addr, 0)
	r := httptest.NewRequest("GET", "/", nil)
	ex := &exchange.Exchange{}
	_, s := tr.Start(context.Background(), r, ex)
	if ex.TraceID != ([16]byte{}) {
		t.Errorf("unsampled request has trace id %x", ex.TraceID)
	}
	out := &http.Request{Method: "GET", URL: &url.URL{Host: "127.0.0.1:1"}}
	s.Attempt(out, ex, 1)(200, nil)
	s.End(200, ex)
	if tp := out.Header.Get("Traceparent"); len(tp) != 55 || !strings.HasSuffix(tp, "-00") {
		t.Errorf("attempt traceparent %q, want one with flags 00", tp)
	}
	tr.ForceFlush(context.Background())
	if n := col.Count(); n != 0 {
		t.Errorf("%d spans exported", n)
	}
}

func TestSame(t *testing.T) {
	base := config.Tracing{OTLPEndpoint: "127.0.0.1:4317", Protocol: "grpc", SampleRatio: 1, ServiceName: "rampart", Headers: map[string]string{"A": "1"}}
	tr := &Tracer{cfg: base}
	for _, tc := range []struct {
		name string
		edit func(*config.Tracing)
		same bool
	}{
		{"unchanged", func(*config.Tracing) {}, true},
		{"endpoint", func(c *config.Tracing) { c.OTLPEndpoint = "127.0.0.1:4318" }, false},
		{"protocol", func(c *config.Tracing) { c.Protocol = "http" }, false},
		{"ratio", func(c *config.Tracing) { c.SampleRatio = 0.5 }, false},
		{"header value", func(c *config.Tracing) { c.Headers = map[string]string{"A": "2"} }, false},
		{"header added", func(c *config.Tracing) { c.Headers = map[string]string{"A": "1", "B": "1"} }, false},
		{"tls", func(c *config.Tracing) { c.TLS = &config.TracingTLS{CAFile: "x"} }, false},
		{"insecure", func(c *config.Tracing) { c.Insecure = true }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			c.Headers = map[string]string{"A": "1"}
			tc.edit(&c)
			if got := tr.Same(&c); got != tc.same {
				t.Errorf("Same = %v, want %v", got, tc.same)
			}
		})
	}
	if (*Tracer)(nil).Same(&base) || tr.Same(nil) {
		t.Error("a nil tracer or config is never the same")
	}
}

func TestClientTLS(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("not a certificate"), 0o600)
	for _, tc := range []struct {
		name      string
		cfg       config.Tracing
		plaintext bool
		err       string
	}{
		{"loopback v4", config.Tracing{OTLPEndpoint: "127.0.0.1:4317"}, true, ""},
		{"loopback v6", config.Tracing{OTLPEndpoint: "[::1]:4317"}, true, ""},
		{"localhost", config.Tracing{OTLPEndpoint: "localhost:4317"}, true, ""},
		{"remote", config.Tracing{OTLPEndpoint: "collector.internal:4317"}, false, ""},
		{"remote insecure", config.Tracing{OTLPEndpoint: "collector.internal:4317", Insecure: true}, true, ""},
		{"loopback with tls", config.Tracing{OTLPEndpoint: "127.0.0.1:4317", TLS: &config.TracingTLS{ServerName: "c"}}, false, ""},
		{"missing ca", config.Tracing{OTLPEndpoint: "c:1", TLS: &config.TracingTLS{CAFile: filepath.Join(dir, "none.pem")}}, false, "tls.ca_file"},
		{"junk ca", config.Tracing{OTLPEndpoint: "c:1", TLS: &config.TracingTLS{CAFile: junk}}, false, "no PEM certificate"},
		{"bad cert", config.Tracing{OTLPEndpoint: "c:1", TLS: &config.TracingTLS{CertFile: junk, KeyFile: junk}}, false, "tls.cert_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := clientTLS(tc.cfg)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (c == nil) != tc.plaintext {
				t.Errorf("TLS config %v, want plaintext %v", c, tc.plaintext)
			}
		})
	}
}
