package app

import (
	"testing"

	"github.com/rampart-gw/rampart/internal/listener/h2/h2test"
)

// BenchmarkGatewayH2 measures h2c requests (100 B answers) through the
// gateway to an HTTP/1.1 upstream, with the own HTTP/2 server and with
// net/http's (RAMPART_HTTP2_SERVER) side by side, at 1 and 10 streams in
// flight on one connection. The client is h2test.Bench, a raw framer that
// allocates nothing per request, so allocs/op are the gateway's (and the
// upstream stub's, which allocates nothing either).
func BenchmarkGatewayH2(b *testing.B) {
	backend := startRawBackend(b, 100)
	for _, server := range []struct{ name, env string }{{"rampart", "rampart"}, {"nethttp", "net/http"}} {
		for _, streams := range []int{1, 10} {
			b.Run(server.name+"/streams="+itoa(streams), func(b *testing.B) {
				b.Setenv("RAMPART_HTTP2_SERVER", server.env)
				h2test.Bench(b, startBenchGateway(b, backend), streams)
			})
		}
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
