package app

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
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

	gateway := startBenchGateway(b, ln.Addr().String())

	for _, tc := range []struct{ name, addr string }{
		{"direct", ln.Addr().String()},
		{"gateway", gateway},
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
