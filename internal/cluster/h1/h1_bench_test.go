package h1

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/rampart-gw/rampart/internal/exchange"
)

// BenchmarkRoundTrip compares one keep-alive GET with a 100-byte response
// through Client and through net/http.Transport against the same backend,
// in one run. Both include the backend's own cost.
func BenchmarkRoundTrip(b *testing.B) {
	body := strings.Repeat("x", 100)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, body)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/bench?q=1"

	for _, tc := range []struct {
		name string
		rt   interface {
			http.RoundTripper
			CloseIdleConnections()
		}
	}{
		{"h1", New(Config{})},
		{"net-http", &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64, DisableCompression: true}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			defer tc.rt.CloseIdleConnections()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			req.Header = http.Header{"User-Agent": {"bench"}, "Accept": {"*/*"}, "X-Forwarded-For": {"10.0.0.1"}}
			buf := make([]byte, 512)
			b.ReportAllocs()
			for b.Loop() {
				resp, err := tc.rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				for {
					if _, err := resp.Body.Read(buf); err != nil {
						break
					}
				}
				resp.Body.Close()
			}
		})
	}
}

// BenchmarkCancelBinding measures what binding one exchange to its
// request's context costs, on a fresh per-request context as net/http
// makes one: context.AfterFunc (the former binding) against the watcher.
// Both include making and cancelling the context.
func BenchmarkCancelBinding(b *testing.B) {
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	cn := &conn{nc: c1, shard: newShard()}
	cn.abortF = cn.abort
	parent, cancelParent := context.WithCancel(context.Background())
	defer cancelParent()
	b.Run("afterfunc", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx, cancel := context.WithCancel(parent)
			stop := context.AfterFunc(ctx, cn.abortF)
			if !stop() {
				b.Fatal("stop failed")
			}
			cancel()
		}
	})
	b.Run("watch", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx, cancel := context.WithCancel(parent)
			cn.watch(ctx)
			if !cn.unwatch() {
				b.Fatal("unwatch failed")
			}
			cancel()
		}
	})
}

// BenchmarkHead measures writing a proxied request head and parsing a
// typical response head, without I/O.
func BenchmarkHead(b *testing.B) {
	req, _ := http.NewRequest(http.MethodGet, "http://10.0.0.1:8080/api/users/42?x=1", nil)
	req.Host = "api.example.com"
	req.Header = http.Header{
		"User-Agent":        {"Go-http-client/1.1"},
		"Accept-Encoding":   {"gzip"},
		"X-Forwarded-For":   {"10.0.0.1"},
		"X-Forwarded-Proto": {"http"},
		"X-Forwarded-Host":  {"api.example.com"},
		"X-Request-Id":      {"4bf92f3577b34da6a3ce929d0e0e4736"},
		"Traceparent":       {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
	}
	const head = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: application/json\r\n" +
		"Date: Wed, 02 Dec 2026 04:17:28 GMT\r\nCache-Control: no-cache\r\nVary: Accept-Encoding\r\n" +
		"X-Upstream: a\r\n\r\n"
	b.Run("write", func(b *testing.B) {
		buf := make([]byte, 0, 4096)
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := appendHead(buf[:0], req, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parse", func(b *testing.B) {
		var resp http.Response
		resp.Header = make(http.Header, 8)
		b.ReportAllocs()
		for b.Loop() {
			clear(resp.Header)
			if err := parseHead(head, &resp, 100, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPromote measures handing a long exchange over from the watcher
// to its context (watchPromote), on a request context that binds callbacks
// itself wrapped in an exchange.Context, as the gateway's requests are:
// context.AfterFunc against afterFunc.
func BenchmarkPromote(b *testing.B) {
	f := func() {}
	for _, bc := range []struct {
		name string
		bind func(context.Context, func()) func() bool
	}{{"context.AfterFunc", context.AfterFunc}, {"afterFunc", afterFunc}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ctx := &exchange.Context{Context: &reqCtx{}}
				stop := bc.bind(ctx, f)
				if !stop() {
					b.Fatal("stop failed")
				}
			}
		})
	}
}
