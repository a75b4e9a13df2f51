// Package grpc holds the gRPC end-to-end tests (issue 18): a real grpc-go
// server behind the in-process gateway, driven by real grpc-go clients over
// the gateway's h2c and TLS (h2 by ALPN) listeners.
//
// The test service, test.Echo, is described by a hand-written
// grpc.ServiceDesc whose messages are protobuf well-known types
// (google.protobuf.StringValue), so no protoc step and no generated code
// are needed. The server also serves the standard grpc.health.v1 health
// service and the reflection service.
package grpc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Method names of the test service.
const (
	mUnary  = "/test.Echo/Unary"
	mServer = "/test.Echo/ServerStream"
	mClient = "/test.Echo/ClientStream"
	mBidi   = "/test.Echo/Bidi"
)

// echo is the test service. Unary answers "echo:" + the request; a request
// "fail:CODE:MSG" answers that status instead; "sleep:DUR" waits DUR (or
// until the call's deadline) first; "deadline" answers with the deadline
// the server saw, in milliseconds ("none" without one); "once:CODE:KEY"
// fails with CODE the first time KEY is seen and answers "ok:KEY" after.
// Every call sets the trailer x-echo-trailer: done, and all but "fail:"
// and "once:" calls the header x-echo-header: yes, so their failures are
// trailers-only answers; "hdrfail:CODE:MSG" fails like "fail:" after the
// header, with the status in the trailers.
type echo struct {
	unary   atomic.Int64 // unary calls served
	streams atomic.Int64 // server-streaming calls served
	// lastDeadline is the deadline (ms left at arrival) of the last call
	// that had one, -1 for none.
	lastDeadline atomic.Int64
	mu           sync.Mutex
	seen         map[string]bool // keys of "once:" calls
}

type echoServer interface{}

func str(v *wrapperspb.StringValue) string { return v.GetValue() }

func (e *echo) answer(ctx context.Context, in string) (string, error) {
	if dl, ok := ctx.Deadline(); ok {
		e.lastDeadline.Store(time.Until(dl).Milliseconds())
	} else {
		e.lastDeadline.Store(-1)
	}
	switch {
	case strings.HasPrefix(in, "once:"):
		parts := strings.SplitN(in, ":", 3)
		n, _ := strconv.Atoi(parts[1])
		e.mu.Lock()
		first := !e.seen[parts[2]]
		if e.seen == nil {
			e.seen = map[string]bool{}
		}
		e.seen[parts[2]] = true
		e.mu.Unlock()
		if first {
			return "", status.Error(codes.Code(n), "first call fails")
		}
		return "ok:" + parts[2], nil
	case strings.HasPrefix(in, "fail:"):
		parts := strings.SplitN(in, ":", 3)
		n, _ := strconv.Atoi(parts[1])
		msg := ""
		if len(parts) == 3 {
			msg = parts[2]
		}
		return "", status.Error(codes.Code(n), msg)
	case strings.HasPrefix(in, "sleep:"):
		d, _ := time.ParseDuration(in[len("sleep:"):])
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return "", status.FromContextError(ctx.Err()).Err()
		}
	case in == "deadline":
		dl, ok := ctx.Deadline()
		if !ok {
			return "none", nil
		}
		return strconv.FormatInt(time.Until(dl).Milliseconds(), 10), nil
	case in == "metadata":
		md, _ := metadata.FromIncomingContext(ctx)
		return strings.Join(md.Get("grpc-timeout"), ","), nil
	}
	return "echo:" + in, nil
}

func (e *echo) handleUnary(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	e.unary.Add(1)
	in := new(wrapperspb.StringValue)
	if err := dec(in); err != nil {
		return nil, err
	}
	q := str(in)
	if !strings.HasPrefix(q, "fail:") && !strings.HasPrefix(q, "once:") {
		// An error without header metadata is a trailers-only answer;
		// "hdrfail:" fails after the header, in the trailers.
		q = strings.TrimPrefix(q, "hdr")
		grpc.SetHeader(ctx, metadata.Pairs("x-echo-header", "yes"))
	}
	grpc.SetTrailer(ctx, metadata.Pairs("x-echo-trailer", "done"))
	out, err := e.answer(ctx, q)
	if err != nil {
		return nil, err
	}
	return wrapperspb.String(out), nil
}

// serverStream sends N answers "i/N" for a request "N"; for "fail:CODE"
// it sends one answer, then ends with CODE (in the trailers).
func (e *echo) serverStream(srv any, ss grpc.ServerStream) error {
	e.streams.Add(1)
	in := new(wrapperspb.StringValue)
	if err := ss.RecvMsg(in); err != nil {
		return err
	}
	ss.SetTrailer(metadata.Pairs("x-echo-trailer", "done"))
	if c, ok := strings.CutPrefix(str(in), "fail:"); ok {
		n, _ := strconv.Atoi(c)
		if err := ss.SendMsg(wrapperspb.String("first")); err != nil {
			return err
		}
		return status.Error(codes.Code(n), "after one answer")
	}
	n, err := strconv.Atoi(str(in))
	if err != nil {
		return status.Error(codes.InvalidArgument, "want a count")
	}
	for i := 1; i <= n; i++ {
		if err := ss.SendMsg(wrapperspb.String(fmt.Sprintf("%d/%d", i, n))); err != nil {
			return err
		}
	}
	return nil
}

// clientStream joins every request with "+". A first request
// "once:CODE:KEY" fails the call with CODE, at once, the first time KEY is
// seen.
func (e *echo) clientStream(srv any, ss grpc.ServerStream) error {
	e.streams.Add(1)
	var got []string
	for {
		in := new(wrapperspb.StringValue)
		err := ss.RecvMsg(in)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if len(got) == 0 && strings.HasPrefix(str(in), "once:") {
			if _, err := e.answer(ss.Context(), str(in)); err != nil {
				return err
			}
		}
		got = append(got, str(in))
	}
	ss.SetTrailer(metadata.Pairs("x-echo-trailer", strconv.Itoa(len(got))))
	return ss.SendMsg(wrapperspb.String(strings.Join(got, "+")))
}

// bidi answers each request as it arrives.
func (e *echo) bidi(srv any, ss grpc.ServerStream) error {
	ss.SetTrailer(metadata.Pairs("x-echo-trailer", "done"))
	for {
		in := new(wrapperspb.StringValue)
		err := ss.RecvMsg(in)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := ss.SendMsg(wrapperspb.String("re:" + str(in))); err != nil {
			return err
		}
	}
}

func (e *echo) desc() *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: "test.Echo",
		HandlerType: (*echoServer)(nil),
		Methods:     []grpc.MethodDesc{{MethodName: "Unary", Handler: e.handleUnary}},
		Streams: []grpc.StreamDesc{
			{StreamName: "ServerStream", Handler: e.serverStream, ServerStreams: true},
			{StreamName: "ClientStream", Handler: e.clientStream, ClientStreams: true},
			{StreamName: "Bidi", Handler: e.bidi, ServerStreams: true, ClientStreams: true},
		},
		Metadata: "test/echo.proto",
	}
}

// backend is a running grpc-go server.
type backend struct {
	Addr   string
	Echo   *echo
	Health *health.Server
	// Conns counts the connections the server accepted.
	Conns *atomic.Int64
	srv   *grpc.Server
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// startBackend starts a plaintext (h2c) grpc-go server on 127.0.0.1 with
// the echo, health and reflection services (TLS with grpc.Creds in opts).
func startBackend(t testing.TB, opts ...grpc.ServerOption) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	b := &backend{Addr: ln.Addr().String(), Echo: &echo{}, Health: health.NewServer(), Conns: &cl.n}
	ln = cl
	b.srv = grpc.NewServer(opts...)
	b.srv.RegisterService(b.Echo.desc(), nil)
	healthpb.RegisterHealthServer(b.srv, b.Health)
	reflection.Register(b.srv)
	go b.srv.Serve(ln)
	t.Cleanup(b.srv.Stop)
	return b
}

// dial returns a client connection to target (the gateway's listener) in
// plain text (h2c prior knowledge), or over TLS trusting pool.
func dial(t testing.TB, target string, pool *x509.CertPool, serverName string) *grpc.ClientConn {
	t.Helper()
	creds := insecure.NewCredentials()
	if pool != nil {
		creds = credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: serverName})
	}
	cc, err := grpc.NewClient("passthrough:///"+target, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// unary makes one unary call of the echo service.
func unary(ctx context.Context, cc *grpc.ClientConn, in string, opts ...grpc.CallOption) (string, error) {
	out := new(wrapperspb.StringValue)
	err := cc.Invoke(ctx, mUnary, wrapperspb.String(in), out, opts...)
	return out.GetValue(), err
}

// certs is a throw-away CA and a server certificate for names.
type certs struct {
	Pool              *x509.CertPool
	CertFile, KeyFile string
	CAFile            string
	Cert              tls.Certificate
}

func newCerts(t testing.TB, names ...string) *certs {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "grpc test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	c := &certs{Pool: x509.NewCertPool(), CertFile: filepath.Join(dir, "cert.pem"),
		KeyFile: filepath.Join(dir, "key.pem"), CAFile: filepath.Join(dir, "ca.pem")}
	c.Pool.AddCert(ca)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	os.WriteFile(c.CertFile, certPEM, 0o600)
	os.WriteFile(c.KeyFile, keyPEM, 0o600)
	os.WriteFile(c.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600)
	if c.Cert, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	return c
}

// gwClient is a plain HTTP/1.1 client.
func gwClient() *http.Client { return &http.Client{Timeout: 5 * time.Second} }

// eachH2Server runs fn once with each client-facing HTTP/2 server
// (RAMPART_HTTP2_SERVER): net/http's and internal/listener/h2.
func eachH2Server(t *testing.T, fn func(t *testing.T)) {
	for _, tc := range []struct{ name, env string }{{"nethttp", "net/http"}, {"rampart", "rampart"}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("RAMPART_HTTP2_SERVER", tc.env)
			fn(t)
		})
	}
}
