package tracing

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/rampart-gw/rampart/internal/telemetry/tracing/otlptest"
	"github.com/rampart-gw/rampart/test/gwtest"
)

// TestGRPCCall: a gRPC call through the gateway (h2c both ways) is traced
// like any request: the caller's traceparent metadata is continued, the
// backend gets the CLIENT span's, and the SERVER span carries the call's
// gRPC status (0, or 5 NOT_FOUND from the backend).
func TestGRPCCall(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string // the traceparent of each call the backend got
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		mu.Lock()
		seen = append(seen, first(md["traceparent"]))
		mu.Unlock()
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)

	col := otlptest.StartGRPC(t)
	g := gwtest.Start(t, fmt.Sprintf(gwtest.Head+`  tracing: {otlp_endpoint: %q}
upstreams:
  backend:
    protocol: h2c
    targets: [{address: %q}]
routes:
  - {name: grpc, match: {path: {prefix: /}}, upstream: backend}
`, col.Addr, ln.Addr().String()))
	cc, err := grpc.NewClient(g.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	hc := healthpb.NewHealthClient(cc)

	tests := []struct {
		name, service, traceID string
		code                   codes.Code
	}{
		{"ok", "", "c0000000000000000000000000000001", codes.OK},
		{"not found", "no.such.Service", "c0000000000000000000000000000002", codes.NotFound},
	}
	// And a call the gateway cannot deliver: UNAVAILABLE, an error span.
	defer func() {
		if t.Failed() {
			return
		}
		srv.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		const id = "c0000000000000000000000000000003"
		ctx = metadata.AppendToOutgoingContext(ctx, "traceparent", "00-"+id+"-00f067aa0ba902b7-01")
		if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); status.Code(err) != codes.Unavailable {
			t.Fatalf("Check with the backend down: %v, want UNAVAILABLE", err)
		}
		s, _ := tree(t, col, id, 1)
		if s.Int("rpc.grpc.status_code") != int64(codes.Unavailable) || s.Status != tracepb.Status_STATUS_CODE_ERROR {
			t.Errorf("SERVER span %d %v, want 14 and error", s.Int("rpc.grpc.status_code"), s.Status)
		}
	}()
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			ctx = metadata.AppendToOutgoingContext(ctx, "traceparent", "00-"+tc.traceID+"-00f067aa0ba902b7-01")
			_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: tc.service})
			if status.Code(err) != tc.code {
				t.Fatalf("Check: %v, want %v", err, tc.code)
			}
			srvSpan, clients := tree(t, col, tc.traceID, 1)
			if srvSpan.ParentSpanID != "00f067aa0ba902b7" || clients[0].ParentSpanID != srvSpan.SpanID {
				t.Errorf("tree: SERVER parent %q, CLIENT parent %q (SERVER %q)", srvSpan.ParentSpanID, clients[0].ParentSpanID, srvSpan.SpanID)
			}
			if got := srvSpan.Int("rpc.grpc.status_code"); got != int64(tc.code) {
				t.Errorf("rpc.grpc.status_code = %d, want %d", got, tc.code)
			}
			if srvSpan.Status != tracepb.Status_STATUS_CODE_UNSET {
				t.Errorf("SERVER status %v, want unset (NOT_FOUND is the client's problem)", srvSpan.Status)
			}
			if got := srvSpan.Str("url.path"); got != "/grpc.health.v1.Health/Check" {
				t.Errorf("url.path = %q", got)
			}
			mu.Lock()
			tp := seen[i]
			mu.Unlock()
			if want := "00-" + tc.traceID + "-" + clients[0].SpanID + "-01"; tp != want {
				t.Errorf("backend traceparent %q, want the CLIENT span's %q", tp, want)
			}
			if clients[0].Kind != tracepb.Span_SPAN_KIND_CLIENT {
				t.Errorf("kind %v", clients[0].Kind)
			}
		})
	}
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}
