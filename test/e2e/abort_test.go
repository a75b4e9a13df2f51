package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// TestAbortedResponseIsLoggedAndReset: an upstream that breaks off in the
// middle of a body makes the gateway reset the client (no silently short
// 200), and the request still gets its access-log line and metrics.
func TestAbortedResponseIsLoggedAndReset(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				http.ReadRequest(bufio.NewReader(c))
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly-a-few-bytes")
			}()
		}
	}()
	path := filepath.Join(t.TempDir(), "access.log")
	g := startGateway(t, listenerYAML("")+fmt.Sprintf(`
upstreams:
  short: {targets: [{address: %q}]}
routes:
  - {name: short, match: {path: {prefix: /}}, upstream: short}
observability:
  access_log: {path: %q}
`, ln.Addr().String(), path))
	req := newRequest(t, http.MethodGet, g.URL+"/", nil)
	req.Header.Set("X-Request-ID", "aborted-1")
	resp, err := newClient(t).Do(req)
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Fatal("client read a complete response from a truncated upstream body")
	}
	var line map[string]any
	gwtest.WaitFor(t, 5*time.Second, "the access log line", func() bool {
		b, _ := os.ReadFile(path)
		for _, m := range jsonLines(t, b) {
			if m["request_id"] == "aborted-1" {
				line = m
				return true
			}
		}
		return false
	})
	if line["code"] != "response_aborted" || line["status"] != float64(200) {
		t.Fatalf("access log line %v, want status 200 (sent) and code response_aborted", line)
	}
}
