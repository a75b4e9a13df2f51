package grpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// startGateway runs a gateway with an h2c listener ("public") and a TLS
// one ("secure", h2 by ALPN). upstreams is the YAML under "upstreams:" (at
// two spaces); rest is appended (routes, policies), by default one
// catch-all route to the upstream "echo".
type gateway struct {
	*gwtest.Gateway
	Secure string // the TLS listener's address
	Certs  *certs
}

func startGateway(t testing.TB, upstreams, rest string) *gateway {
	t.Helper()
	c := newCerts(t, "grpc.example.com")
	if rest == "" {
		rest = "routes:\n  - {name: grpc, match: {path: {prefix: /}}, upstream: echo}\n"
	}
	doc := fmt.Sprintf(`listeners:
  - name: public
    address: "127.0.0.1:0"
  - name: secure
    address: "127.0.0.1:0"
    tls:
      certificates: [{cert_file: %q, key_file: %q}]
admin:
  address: "127.0.0.1:0"
drain_timeout: 5s
observability:
  access_log: {path: "off"}
upstreams:
%s
%s`, c.CertFile, c.KeyFile, upstreams, rest)
	g := gwtest.Start(t, doc)
	return &gateway{Gateway: g, Secure: g.App.ListenerAddr("secure"), Certs: c}
}

// h2cUpstream is the block of an upstream name with plaintext HTTP/2
// targets.
func h2cUpstream(name string, addrs ...string) string {
	s := "  " + name + ":\n    protocol: h2c\n    targets:\n"
	for _, a := range addrs {
		s += fmt.Sprintf("      - {address: %q}\n", a)
	}
	return s
}

// clients are the two ways a client reaches the gateway.
func (g *gateway) clients(t *testing.T) map[string]*grpc.ClientConn {
	return map[string]*grpc.ClientConn{
		"h2c": dial(t, g.Addr, nil, ""),
		"tls": dial(t, g.Secure, g.Certs.Pool, "grpc.example.com"),
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestGRPCCalls drives the four kinds of call through the gateway, over
// both listeners, and checks headers and trailers pass through.
func TestGRPCCalls(t *testing.T) { eachH2Server(t, testGRPCCalls) }

func testGRPCCalls(t *testing.T) {
	b := startBackend(t)
	g := startGateway(t, h2cUpstream("echo", b.Addr), "")
	ccs := g.clients(t)
	for _, name := range []string{"h2c", "tls"} {
		cc := ccs[name]
		t.Run(name, func(t *testing.T) {
			t.Run("unary", func(t *testing.T) {
				var hdr, trl metadata.MD
				out, err := unary(ctxTimeout(t, 5*time.Second), cc, "hi", grpc.Header(&hdr), grpc.Trailer(&trl))
				if err != nil || out != "echo:hi" {
					t.Fatalf("unary = %q, %v", out, err)
				}
				if v := hdr.Get("x-echo-header"); len(v) != 1 || v[0] != "yes" {
					t.Errorf("header x-echo-header = %v", v)
				}
				if v := trl.Get("x-echo-trailer"); len(v) != 1 || v[0] != "done" {
					t.Errorf("trailer x-echo-trailer = %v (trailers %v)", v, trl)
				}
			})
			t.Run("unary status and trailer", func(t *testing.T) {
				var trl metadata.MD
				_, err := unary(ctxTimeout(t, 5*time.Second), cc, "fail:9:not now", grpc.Trailer(&trl))
				if s := status.Convert(err); s.Code() != codes.FailedPrecondition || s.Message() != "not now" {
					t.Fatalf("status = %v, want FailedPrecondition \"not now\"", err)
				}
				if v := trl.Get("x-echo-trailer"); len(v) != 1 || v[0] != "done" {
					t.Errorf("trailer x-echo-trailer = %v", v)
				}
			})
			t.Run("server streaming", func(t *testing.T) {
				st, err := cc.NewStream(ctxTimeout(t, 5*time.Second), &grpc.StreamDesc{ServerStreams: true}, mServer)
				if err != nil {
					t.Fatal(err)
				}
				if err := st.SendMsg(wrapperspb.String("5")); err != nil {
					t.Fatal(err)
				}
				st.CloseSend()
				var got []string
				for {
					m := new(wrapperspb.StringValue)
					err := st.RecvMsg(m)
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, m.GetValue())
				}
				if fmt.Sprint(got) != "[1/5 2/5 3/5 4/5 5/5]" {
					t.Errorf("stream = %v", got)
				}
				if v := st.Trailer().Get("x-echo-trailer"); len(v) != 1 || v[0] != "done" {
					t.Errorf("trailer = %v", st.Trailer())
				}
			})
			t.Run("client streaming", func(t *testing.T) {
				st, err := cc.NewStream(ctxTimeout(t, 5*time.Second), &grpc.StreamDesc{ClientStreams: true}, mClient)
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range []string{"a", "b", "c"} {
					if err := st.SendMsg(wrapperspb.String(s)); err != nil {
						t.Fatal(err)
					}
				}
				st.CloseSend()
				m := new(wrapperspb.StringValue)
				if err := st.RecvMsg(m); err != nil || m.GetValue() != "a+b+c" {
					t.Fatalf("client stream = %q, %v", m.GetValue(), err)
				}
				if err := st.RecvMsg(m); !errors.Is(err, io.EOF) {
					t.Fatalf("after the answer: %v, want EOF", err)
				}
				if v := st.Trailer().Get("x-echo-trailer"); len(v) != 1 || v[0] != "3" {
					t.Errorf("trailer = %v", st.Trailer())
				}
			})
			t.Run("bidi", func(t *testing.T) {
				st, err := cc.NewStream(ctxTimeout(t, 5*time.Second), &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, mBidi)
				if err != nil {
					t.Fatal(err)
				}
				// Each answer arrives before the next request is sent:
				// the gateway streams both ways, it buffers neither.
				for i := range 3 {
					if err := st.SendMsg(wrapperspb.String(fmt.Sprint(i))); err != nil {
						t.Fatal(err)
					}
					m := new(wrapperspb.StringValue)
					if err := st.RecvMsg(m); err != nil || m.GetValue() != fmt.Sprintf("re:%d", i) {
						t.Fatalf("bidi %d = %q, %v", i, m.GetValue(), err)
					}
				}
				st.CloseSend()
				if err := st.RecvMsg(new(wrapperspb.StringValue)); !errors.Is(err, io.EOF) {
					t.Fatalf("end: %v", err)
				}
				if v := st.Trailer().Get("x-echo-trailer"); len(v) != 1 || v[0] != "done" {
					t.Errorf("trailer = %v", st.Trailer())
				}
			})
			t.Run("health through the gateway", func(t *testing.T) {
				r, err := healthpb.NewHealthClient(cc).Check(ctxTimeout(t, 5*time.Second), &healthpb.HealthCheckRequest{})
				if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
					t.Fatalf("health = %v, %v", r, err)
				}
			})
		})
	}
}
