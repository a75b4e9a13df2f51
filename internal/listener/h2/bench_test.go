package h2

import (
	"bytes"
	"net"
	"net/http"
	"strconv"
	"testing"

	"github.com/rampart-gw/rampart/internal/listener/h2/h2test"
)

// BenchmarkH2 measures the HTTP/2 server alone: h2c requests answered with
// 100 bytes by a handler that does nothing else, on this server and on
// net/http's (http.Server with unencrypted HTTP/2), at 1 and 10 streams in
// flight on one connection. The client is h2test.Bench, a raw framer that
// allocates nothing per request. The gateway's whole path is
// internal/app.BenchmarkGatewayH2.
func BenchmarkH2(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 100)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"text/plain"}
		w.Write(body)
	})
	for _, server := range []string{"rampart", "nethttp"} {
		for _, streams := range []int{1, 10} {
			b.Run(server+"/streams="+strconv.Itoa(streams), func(b *testing.B) {
				var addr string
				if server == "rampart" {
					addr = serve(b, &Server{Handler: h})
				} else {
					addr = serveNetHTTP(b, h)
				}
				h2test.Bench(b, addr, streams)
			})
		}
	}
}

func serveNetHTTP(b *testing.B, h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: &protos, HTTP2: &http.HTTP2Config{
		MaxConcurrentStreams: 100, MaxReceiveBufferPerConnection: 1 << 20, MaxReceiveBufferPerStream: 64 << 10, MaxReadFrameSize: 1 << 14,
	}}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}
