package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/telemetry/tracing/otlptest"
)

// BenchmarkGatewayOnly measures what the gateway alone costs per proxied
// keep-alive GET: the client and the backend are raw sockets that allocate
// nothing per request (a canned request, a canned 100-byte response), so
// allocs/op and B/op are the gateway's own (BenchmarkProxyRoundTrip
// includes net/http's client and server as well). The "net/http" case
// serves HTTP/1.1 with net/http behind the guard instead of the fast path
// (RAMPART_HTTP1_SERVER=net/http), for comparison.
func BenchmarkGatewayOnly(b *testing.B) {
	backend := startRawBackend(b, 100)
	for _, tc := range []struct {
		name    string
		netHTTP bool
	}{{"fast", false}, {"net/http", true}} {
		b.Run(tc.name, func(b *testing.B) {
			if tc.netHTTP {
				b.Setenv("RAMPART_HTTP1_SERVER", "net/http")
			}
			benchRoundTrips(b, startBenchGateway(b, backend))
		})
	}
}

// benchRoundTrips measures keep-alive GETs through the gateway at addr
// from a raw socket client that allocates nothing per request.
func benchRoundTrips(b *testing.B, addr string) {
	var c net.Conn
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	req := []byte("GET /bench HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\n\r\n")
	buf := make([]byte, 4096)
	roundTrip := func() {
		if c == nil {
			var err error
			if c, err = net.Dial("tcp", addr); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		closing, err := readRawResponse(c, buf)
		if err != nil {
			b.Fatal(err)
		}
		if closing { // max_requests_per_connection reached
			c.Close()
			c = nil
		}
	}
	roundTrip() // connections warm on both sides
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		roundTrip()
	}
}

// BenchmarkGatewayTracing is BenchmarkGatewayOnly's fast case with
// tracing off, on at sample_ratio 0 (spans made, none sampled or
// exported) and on at ratio 1 (every request's SERVER and CLIENT spans
// exported to an in-process OTLP/gRPC collector, which decodes and
// counts them: its own work is in the figures too) and at ratio 1 with a
// dead collector, side by side for the cost figures in
// docs/operations.md.
func BenchmarkGatewayTracing(b *testing.B) {
	backend := startRawBackend(b, 100)
	col := otlptest.StartGRPC(b)
	col.Discard()
	dead := deadAddr(b)
	for _, tc := range []struct{ name, tracing string }{
		{"off", ""},
		{"ratio0", fmt.Sprintf(", tracing: {otlp_endpoint: %q, sample_ratio: 0}", col.Addr)},
		{"ratio1", fmt.Sprintf(", tracing: {otlp_endpoint: %q, sample_ratio: 1}", col.Addr)},
		// Spans made and queued, exports failing: what a dead collector
		// costs (the spans are counted dropped).
		{"ratio1-dead-collector", fmt.Sprintf(", tracing: {otlp_endpoint: %q, sample_ratio: 1}", dead)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			benchRoundTrips(b, startBenchGatewayObs(b, backend, `{access_log: {path: "off"}`+tc.tracing+`}`))
		})
	}
}

// BenchmarkGatewayAccessLog is BenchmarkGatewayOnly's fast case with the
// access log off and on, side by side: "file" writes every line to a file
// through the real writer goroutine, "discard" to /dev/null (the cost of
// the log without the disk's). A line dropped for a full buffer is reported
// as dropped/op.
func BenchmarkGatewayAccessLog(b *testing.B) {
	backend := startRawBackend(b, 100)
	for _, tc := range []struct{ name, path string }{
		{"off", "off"},
		{"file", filepath.Join(b.TempDir(), "access.log")},
		{"discard", os.DevNull},
	} {
		b.Run(tc.name, func(b *testing.B) {
			addr, a := startBenchGatewayApp(b, backend, fmt.Sprintf(`{access_log: {path: %q}}`, tc.path))
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer func() { c.Close() }()
			req := []byte("GET /bench HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\n\r\n")
			buf := make([]byte, 4096)
			roundTrip := func() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				closing, err := readRawResponse(c, buf)
				if err != nil {
					b.Fatal(err)
				}
				if closing {
					c.Close()
					if c, err = net.Dial("tcp", addr); err != nil {
						b.Fatal(err)
					}
				}
			}
			roundTrip()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				roundTrip()
			}
			b.StopTimer()
			if al := a.access.Load(); al != nil {
				al.Flush()
				b.ReportMetric(float64(al.Dropped())/float64(b.N), "dropped/op")
			}
		})
	}
}

func startBenchGateway(b *testing.B, backend string) string {
	b.Helper()
	return startBenchGatewayObs(b, backend, `{access_log: {path: "off"}}`)
}

// deadAddr returns a 127.0.0.1 address nothing listens on.
func deadAddr(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startBenchGatewayObs starts the benchmark gateway with observability obs.
func startBenchGatewayObs(b *testing.B, backend, obs string) string {
	b.Helper()
	addr, _ := startBenchGatewayApp(b, backend, obs)
	return addr
}

// startBenchGatewayApp is startBenchGatewayObs, returning the App too.
func startBenchGatewayApp(b *testing.B, backend, obs string) (string, *App) {
	b.Helper()
	cfg, err := config.Parse("bench.yaml", []byte(fmt.Sprintf(`
listeners: [{name: public, address: "127.0.0.1:0"}]
admin: {address: "off"}
upstreams:
  backend: {targets: [{address: %q}]}
routes:
  - {name: all, match: {path: {prefix: /}}, upstream: backend}
observability: %s
`, backend, obs)))
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		b.Fatal(err)
	}
	a, err := New(Options{Config: cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx, nil); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	return a.ListenerAddr("public"), a
}

// startRawBackend serves a canned response of size bytes to every request
// head it reads, without allocating per request.
func startRawBackend(b *testing.B, size int) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + strconv.Itoa(size) + "\r\n\r\n" + string(bytes.Repeat([]byte("x"), size)))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				buf := make([]byte, 4096)
				n := 0
				for {
					m, err := c.Read(buf[n:])
					if err != nil {
						return
					}
					n += m
					for {
						i := bytes.Index(buf[:n], []byte("\r\n\r\n"))
						if i < 0 {
							break
						}
						n = copy(buf, buf[i+4:n])
						if _, err := c.Write(resp); err != nil {
							return
						}
					}
					if n == len(buf) {
						return // a head this big is not a benchmark request
					}
				}
			}()
		}
	}()
	b.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// readRawResponse reads one response with a Content-Length body into buf;
// closing: it carried Connection: close.
func readRawResponse(c net.Conn, buf []byte) (closing bool, err error) {
	n := 0
	for {
		m, err := c.Read(buf[n:])
		if err != nil {
			return false, err
		}
		n += m
		i := bytes.Index(buf[:n], []byte("\r\n\r\n"))
		if i < 0 {
			if n == len(buf) {
				return false, fmt.Errorf("response head too large")
			}
			continue
		}
		if !bytes.HasPrefix(buf, []byte("HTTP/1.1 200 ")) {
			return false, fmt.Errorf("unexpected response %q", buf[:min(n, 64)])
		}
		const key = "\r\nContent-Length: "
		k := bytes.Index(buf[:i+2], []byte(key))
		if k < 0 {
			return false, fmt.Errorf("no Content-Length in %q", buf[:i])
		}
		end := bytes.IndexByte(buf[k+len(key):], '\r')
		size, err := strconv.Atoi(string(buf[k+len(key) : k+len(key)+end]))
		if err != nil {
			return false, err
		}
		for n < i+4+size {
			m, err := c.Read(buf[n:])
			if err != nil {
				return false, err
			}
			n += m
		}
		return bytes.Contains(buf[:i+2], []byte("\r\nConnection: close\r\n")), nil
	}
}
