package grpc

import (
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// closedAddr is a 127.0.0.1 address nothing listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

// TestGRPCGatewayErrors checks that every error the gateway makes reaches a
// real grpc-go client as a gRPC status (a trailers-only answer), never as
// "unexpected HTTP status code": each route below fails in one way.
func TestGRPCGatewayErrors(t *testing.T) { eachH2Server(t, testGRPCGatewayErrors) }

func testGRPCGatewayErrors(t *testing.T) {
	b := startBackend(t)
	ups := h2cUpstream("echo", b.Addr) + h2cUpstream("down", closedAddr(t))
	g := startGateway(t, ups, `routes:
  - {name: echo, match: {path: {prefix: /test.Echo/}}, upstream: echo}
  - {name: slow, match: {path: {prefix: /slow.Echo/}}, upstream: echo, timeout: 200ms, rewrite: {prefix: /test.Echo/}}
  - {name: down, match: {path: {prefix: /down.Svc/}}, upstream: down}
  - {name: auth, match: {path: {prefix: /auth.Svc/}}, upstream: echo, policies: [keys]}
  - {name: denied, match: {path: {prefix: /denied.Svc/}}, upstream: echo, policies: [nobody]}
  - {name: limited, match: {path: {prefix: /limited.Svc/}}, upstream: echo, policies: [once], rewrite: {prefix: /test.Echo/}}
policies:
  keys: {type: api_key, header: X-API-Key}
  nobody: {type: ip_filter, allow: [10.0.0.0/8]}
  once: {type: rate_limit, key: ip, rate: 1/h, burst: 1}
consumers:
  - {name: acme, api_keys: [secret]}
`)
	tests := []struct {
		name, method string
		in           string
		want         codes.Code
		errCode      string // the gateway's error code (rampart-error-code)
		msg          string // part of the grpc-message
	}{
		{"no route", "/nope.Svc/Call", "x", codes.Unimplemented, "route_not_found", "no route matches POST /nope.Svc/Call"},
		{"upstream down", "/down.Svc/Call", "x", codes.Unavailable, "upstream_unreachable", ""},
		{"unauthenticated", "/auth.Svc/Call", "x", codes.Unauthenticated, "unauthenticated", ""},
		{"ip denied", "/denied.Svc/Call", "x", codes.PermissionDenied, "ip_denied", ""},
		{"upstream timeout", "/slow.Echo/Unary", "sleep:3s", codes.DeadlineExceeded, "upstream_timeout", ""},
		{"rate limit: first call passes", "/limited.Svc/Unary", "x", codes.OK, "", ""},
		{"rate limited", "/limited.Svc/Unary", "x", codes.ResourceExhausted, "rate_limited", "rate limit exceeded"},
	}
	ccs := g.clients(t)
	for _, lname := range []string{"h2c", "tls"} {
		cc := ccs[lname]
		t.Run(lname, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					if tc.want == codes.OK && lname != "h2c" {
						t.Skip("the one allowed call was made over h2c")
					}
					var hdr, trl metadata.MD
					start := time.Now()
					err := cc.Invoke(ctxTimeout(t, 5*time.Second), tc.method, wrapperspb.String(tc.in), new(wrapperspb.StringValue),
						grpc.Header(&hdr), grpc.Trailer(&trl))
					s := status.Convert(err)
					if s.Code() != tc.want {
						t.Fatalf("status = %v (%v), want %v", s.Code(), err, tc.want)
					}
					if tc.want == codes.OK {
						return
					}
					if strings.Contains(s.Message(), "HTTP status") {
						t.Errorf("the client saw an HTTP error, not a gRPC status: %v", err)
					}
					if !strings.Contains(s.Message(), tc.msg) {
						t.Errorf("message %q does not contain %q", s.Message(), tc.msg)
					}
					// Trailers-only: the status came in the one HEADERS
					// frame, which grpc-go reports as trailers.
					md := metadata.Join(hdr, trl)
					if v := md.Get("rampart-error-code"); len(v) != 1 || v[0] != tc.errCode {
						t.Errorf("rampart-error-code = %v, want %s (metadata %v)", v, tc.errCode, md)
					}
					if len(md.Get("x-request-id")) != 1 {
						t.Errorf("no x-request-id in %v", md)
					}
					if tc.want == codes.DeadlineExceeded && time.Since(start) > 2*time.Second {
						t.Errorf("took %v, want about the route's 200ms", time.Since(start))
					}
				})
			}
		})
	}
	// The same gateway still answers JSON to a plain HTTP client.
	t.Run("plain HTTP keeps JSON", func(t *testing.T) {
		resp, err := gwClient().Post(g.URL+"/nope.Svc/Call", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Grpc-Status") != "" {
			t.Fatalf("got %d %q grpc-status %q", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Grpc-Status"))
		}
	})
}
