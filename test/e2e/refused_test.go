package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestRefusedRequestsAreCounted: requests the framing guard answers itself
// never reach the gateway handler, so they get their own counter.
func TestRefusedRequestsAreCounted(t *testing.T) {
	g := startGateway(t, listenerYAML("")+fmt.Sprintf(`
upstreams:
  echo: {targets: [{address: %q}]}
routes:
  - {name: all, match: {path: {prefix: /}}, upstream: echo}
`, echoUpstream(t, "echo")))
	raw := rawExchange(t, g.Addr, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	if got := statusOf(t, raw); got != 400 {
		t.Fatalf("status %d, want 400", got)
	}
	_, body := get(t, newClient(t), g.Admin+"/metrics")
	want := `rampart_http_refused_total{code="400",listener="public",reason="bad_request"} 1`
	if !strings.Contains(string(body), want) {
		var lines []string
		for _, l := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(l, "rampart_http_refused_total") {
				lines = append(lines, l)
			}
		}
		t.Fatalf("metrics lack %s; have %q", want, lines)
	}
}
