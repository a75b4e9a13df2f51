package grpc

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// h2Upstream is the block of an upstream name speaking h2 (HTTP/2 over
// TLS) to targets whose certificates c signed for backend.internal; extra
// is more YAML at four spaces.
func h2Upstream(name string, c *certs, extra string, addrs ...string) string {
	s := fmt.Sprintf("  %s:\n    protocol: h2\n    tls: {ca_file: %q, server_name: backend.internal}\n%s    targets:\n", name, c.CAFile, extra)
	for _, a := range addrs {
		s += fmt.Sprintf("      - {address: %q}\n", a)
	}
	return s
}

// startTLSBackend starts the grpc-go test server with TLS (certificates
// for backend.internal).
func startTLSBackend(t testing.TB, c *certs, opts ...grpc.ServerOption) *backend {
	return startBackend(t, append(opts, grpc.Creds(credentials.NewServerTLSFromCert(&c.Cert)))...)
}

// TestH2Upstream: a grpc-go server over TLS behind protocol h2, with the
// four kinds of call, the gRPC health check over h2, and mTLS.
func TestH2Upstream(t *testing.T) {
	c := newCerts(t, "backend.internal")
	b := startTLSBackend(t, c)
	// mTLS: the server wants a client certificate that cc's CA signed.
	cc := newCerts(t, "rampart.internal")
	mtls := startBackend(t, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{c.Cert},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: cc.Pool})))
	ups := h2Upstream("echo", c, "    health_check: {active: {grpc: {}, interval: 50ms, unhealthy_threshold: 1}}\n", b.Addr) +
		fmt.Sprintf("  mtls:\n    protocol: h2\n    tls: {ca_file: %q, server_name: backend.internal, cert_file: %q, key_file: %q}\n    targets: [{address: %q}]\n",
			c.CAFile, cc.CertFile, cc.KeyFile, mtls.Addr) +
		h2Upstream("nocert", c, "", mtls.Addr)
	g := startGateway(t, ups, `routes:
  - {name: echo, match: {path: {prefix: /test.Echo/}}, upstream: echo}
  - {name: mtls, match: {path: {prefix: /mtls.Echo/}}, upstream: mtls, rewrite: {prefix: /test.Echo/}}
  - {name: nocert, match: {path: {prefix: /nocert.Echo/}}, upstream: nocert, rewrite: {prefix: /test.Echo/}}
`)
	conn := dial(t, g.Addr, nil, "")
	if out, err := unary(ctxTimeout(t, 5*time.Second), conn, "over h2"); err != nil || out != "echo:over h2" {
		t.Fatalf("unary over h2: %q, %v", out, err)
	}
	st, err := conn.NewStream(ctxTimeout(t, 5*time.Second), &grpc.StreamDesc{ServerStreams: true}, mServer)
	if err != nil {
		t.Fatal(err)
	}
	st.SendMsg(wrapperspb.String("3"))
	st.CloseSend()
	n := 0
	for st.RecvMsg(new(wrapperspb.StringValue)) == nil {
		n++
	}
	if n != 3 {
		t.Fatalf("server stream over h2: %d answers, want 3", n)
	}
	gwtest.WaitFor(t, 5*time.Second, "a gRPC health probe over h2", func() bool {
		h := targetHealth(t, g, "echo")[b.Addr]
		return h == "true"
	})
	out := new(wrapperspb.StringValue)
	if err := conn.Invoke(ctxTimeout(t, 5*time.Second), "/mtls.Echo/Unary", wrapperspb.String("mtls"), out); err != nil || out.GetValue() != "echo:mtls" {
		t.Fatalf("mTLS: %q, %v", out.GetValue(), err)
	}
	err = conn.Invoke(ctxTimeout(t, 5*time.Second), "/nocert.Echo/Unary", wrapperspb.String("x"), out)
	if err == nil || !strings.Contains(err.Error(), "Unavailable") {
		t.Fatalf("without a client certificate: %v, want Unavailable", err)
	}
}

// TestH2PlainServer: protocol h2 to a net/http HTTP/2 server over TLS (not
// gRPC): the server sees HTTP/2; a TLS server that offers only HTTP/1.1 by
// ALPN fails the connect with protocol h2 (502), and works with http1.
func TestH2PlainServer(t *testing.T) {
	c := newCerts(t, "backend.internal")
	start := func(h2 bool) string {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s %s", r.Proto, r.URL.Path)
		}))
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{c.Cert}}
		srv.EnableHTTP2 = h2
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv.Listener.Addr().String()
	}
	h2, h1 := start(true), start(false)
	ups := h2Upstream("h2", c, "", h2) + h2Upstream("h1only", c, "", h1) +
		fmt.Sprintf("  h1tls:\n    tls: {ca_file: %q, server_name: backend.internal}\n    targets: [{address: %q}]\n", c.CAFile, h1)
	g := gwtest.Start(t, gwtest.Head+"upstreams:\n"+ups+`routes:
  - {name: h2, match: {path: {prefix: /h2/}}, upstream: h2}
  - {name: h1only, match: {path: {prefix: /h1only/}}, upstream: h1only}
  - {name: h1tls, match: {path: {prefix: /h1tls/}}, upstream: h1tls}
`)
	client := gwtest.Client(t, 5*time.Second)
	for _, tc := range []struct {
		path   string
		status int
		body   string
	}{
		{"/h2/x", 200, "HTTP/2.0 /h2/x"},
		{"/h1only/x", 502, "upstream_unreachable"},
		{"/h1tls/x", 200, "HTTP/1.1 /h1tls/x"},
	} {
		resp, err := client.Get(g.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.body) {
			t.Errorf("%s: %d %q, want %d with %q", tc.path, resp.StatusCode, body, tc.status, tc.body)
		}
	}
}

// TestH2MaxConcurrentStreams: a target that allows 2 concurrent streams per
// connection gets 6 concurrent slow calls: the gateway opens more
// connections rather than queue them, so all end in about one call's time.
func TestH2MaxConcurrentStreams(t *testing.T) {
	c := newCerts(t, "backend.internal")
	for _, proto := range []string{"h2", "h2c"} {
		t.Run(proto, func(t *testing.T) {
			var b *backend
			var ups string
			if proto == "h2" {
				b = startTLSBackend(t, c, grpc.MaxConcurrentStreams(2))
				ups = h2Upstream("echo", c, "", b.Addr)
			} else {
				b = startBackend(t, grpc.MaxConcurrentStreams(2))
				ups = h2cUpstream("echo", b.Addr)
			}
			g := startGateway(t, ups, "")
			conn := dial(t, g.Addr, nil, "")
			// One call first: the gateway learns the target's limit on
			// its first connection.
			if _, err := unary(ctxTimeout(t, 5*time.Second), conn, "warm"); err != nil {
				t.Fatal(err)
			}
			const calls = 6
			start := time.Now()
			var wg sync.WaitGroup
			var failed atomic.Int64
			for range calls {
				wg.Go(func() {
					if _, err := unary(ctxTimeout(t, 5*time.Second), conn, "sleep:400ms"); err != nil {
						t.Log(err)
						failed.Add(1)
					}
				})
			}
			wg.Wait()
			took := time.Since(start)
			if failed.Load() != 0 {
				t.Fatalf("%d of %d calls failed", failed.Load(), calls)
			}
			if n := b.Conns.Load(); n < calls/2 {
				t.Errorf("the target accepted %d connections, want at least %d (2 streams each)", n, calls/2)
			}
			if took > 1100*time.Millisecond {
				t.Errorf("%d calls of 400ms took %v: queued behind the stream limit", calls, took)
			}
			t.Logf("%d concurrent calls over %d connections in %v", calls, b.Conns.Load(), took.Round(time.Millisecond))
		})
	}
}

// TestH2GoAway: a target that closes every connection after 100ms with a
// graceful GOAWAY (grpc-go's MaxConnectionAge), under load, with no
// retries configured: no call fails, the gateway moves to new connections.
func TestH2GoAway(t *testing.T) {
	c := newCerts(t, "backend.internal")
	b := startTLSBackend(t, c, grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionAge: 100 * time.Millisecond, MaxConnectionAgeGrace: 5 * time.Second}))
	g := startGateway(t, h2Upstream("echo", c, "", b.Addr), "routes:\n  - {name: grpc, match: {path: {prefix: /}}, upstream: echo, retry: {attempts: 1}}\n")
	conn := dial(t, g.Addr, nil, "")
	calls, failed := load(t, 4, 1500*time.Millisecond, 5000, func(i int) error {
		out, err := unary(ctxTimeout(t, 5*time.Second), conn, "sleep:5ms")
		if err == nil && out != "echo:sleep:5ms" {
			err = fmt.Errorf("answer %q", out)
		}
		return err
	})
	if failed != 0 || calls < 50 {
		t.Fatalf("%d of %d calls failed", failed, calls)
	}
	if n := b.Conns.Load(); n < 5 {
		t.Fatalf("the target accepted %d connections in 1.5s of 100ms each, want at least 5", n)
	}
	t.Logf("%d calls over %d connections, none failed", calls, b.Conns.Load())
}

// TestH2GracefulStop: two HTTP/2 TLS targets under a load of GET requests;
// one shuts down gracefully (GOAWAY, then its listener closes) mid-load.
// Requests it did not take are sent again on the other target: no client
// sees an error.
func TestH2GracefulStop(t *testing.T) {
	c := newCerts(t, "backend.internal")
	var served [2]atomic.Int64
	var srvs [2]*httptest.Server
	for i := range srvs {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			served[i].Add(1)
			time.Sleep(2 * time.Millisecond)
			io.WriteString(w, "ok")
		}))
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{c.Cert}}
		srv.EnableHTTP2 = true
		srv.StartTLS()
		t.Cleanup(srv.Close)
		srvs[i] = srv
	}
	a0, a1 := srvs[0].Listener.Addr().String(), srvs[1].Listener.Addr().String()
	g := gwtest.Start(t, gwtest.Head+"upstreams:\n"+h2Upstream("app", c, "", a0, a1)+
		"routes:\n  - {name: app, match: {path: {prefix: /}}, upstream: app, retry: {attempts: 3, backoff: {base: 1ms, max: 5ms}}}\n")
	client := gwtest.Client(t, 5*time.Second)
	get := func(int) error {
		resp, err := client.Get(g.URL + "/x")
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "ok" {
			return fmt.Errorf("%d %q", resp.StatusCode, body)
		}
		return nil
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		time.Sleep(300 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		srvs[0].Config.Shutdown(ctx)
	}()
	calls, failed := load(t, 8, 1200*time.Millisecond, 20000, get)
	<-stopped
	if failed != 0 {
		t.Fatalf("%d of %d requests failed", failed, calls)
	}
	before := served[0].Load()
	for i := range 20 {
		if err := get(i); err != nil {
			t.Fatal(err)
		}
	}
	if served[0].Load() != before || before == 0 {
		t.Fatalf("the stopped target served %d before and %d after", before, served[0].Load()-before)
	}
	t.Logf("%d requests, none failed; served %d and %d", calls, served[0].Load(), served[1].Load())
}

// load runs f from workers goroutines until d passed or max calls were
// made, and returns the calls made and those that failed (the first few
// errors are logged).
func load(t *testing.T, workers int, d time.Duration, max int64, f func(i int) error) (calls, failed int64) {
	t.Helper()
	var n, bad atomic.Int64
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for time.Now().Before(end) {
				i := n.Add(1)
				if i > max {
					return
				}
				if err := f(int(i)); err != nil {
					if bad.Add(1) <= 3 {
						t.Logf("call %d: %v", i, err)
					}
				}
			}
		})
	}
	wg.Wait()
	return min(n.Load(), max), bad.Load()
}
