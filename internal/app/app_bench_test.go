package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/rampart-gw/rampart/internal/config"
)

// BenchmarkProxyRoundTrip measures one keep-alive GET through the gateway
// against the same GET sent straight to the backend, in one process, so the
// difference between the two sub-benchmarks is what the gateway adds (both
// include the client's and the backend's own costs and allocations).
func BenchmarkProxyRoundTrip(b *testing.B) {
	body := strings.Repeat("x", 100)
	backend := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, body)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go backend.Serve(ln)
	defer backend.Close()

	cfg, err := config.Parse("bench.yaml", []byte(fmt.Sprintf(`
listeners: [{name: public, address: "127.0.0.1:0"}]
admin: {address: "off"}
upstreams:
  backend: {targets: [{address: %q}]}
routes:
  - {name: all, match: {path: {prefix: /}}, upstream: backend}
observability: {access_log: {path: "off"}}
`, ln.Addr())))
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
	defer func() { cancel(); <-done }()

	for _, tc := range []struct{ name, addr string }{
		{"direct", ln.Addr().String()},
		{"gateway", a.ListenerAddr("public")},
	} {
		b.Run(tc.name, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4}}
			defer client.CloseIdleConnections()
			url := "http://" + tc.addr + "/bench"
			buf := make([]byte, 512)
			b.ReportAllocs()
			for b.Loop() {
				resp, err := client.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				for {
					if _, err := resp.Body.Read(buf); err != nil {
						break
					}
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
}
