package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// TestRequestSizeCountsBytesRead: rampart_http_request_size_bytes and the
// access log's bytes_in count the body bytes read from the client, for a
// chunked body (no Content-Length) as for a declared one.
func TestRequestSizeCountsBytesRead(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "access.log")
	up := echoUpstream(t, "echo")
	g := startGateway(t, listenerYAML("")+fmt.Sprintf(`
upstreams:
  echo: {targets: [{address: %q}]}
routes:
  - {name: chunked, match: {path: {prefix: /c}}, upstream: echo}
  - {name: sized, match: {path: {prefix: /s}}, upstream: echo}
observability:
  access_log: {path: %q}
`, up, logPath))

	chunk := strings.Repeat("a", 1000)
	var chunked strings.Builder
	chunked.WriteString("POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
	for range 3 {
		fmt.Fprintf(&chunked, "%x\r\n%s\r\n", len(chunk), chunk)
	}
	chunked.WriteString("7\r\nabcdefg\r\n0\r\n\r\n")
	if raw := rawExchange(t, g.Addr, chunked.String()); statusOf(t, raw) != 200 || !strings.Contains(raw, `"body_len":3007`) {
		t.Fatalf("chunked POST: %q", raw)
	}
	sized := "POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\nConnection: close\r\n\r\n" + strings.Repeat("b", 500)
	if raw := rawExchange(t, g.Addr, sized); statusOf(t, raw) != 200 || !strings.Contains(raw, `"body_len":500`) {
		t.Fatalf("sized POST: %q", raw)
	}

	_, body := get(t, newClient(t), g.Admin+"/metrics")
	for _, want := range []string{
		`rampart_http_request_size_bytes_sum{route="chunked"} 3007`,
		`rampart_http_request_size_bytes_count{route="chunked"} 1`,
		`rampart_http_request_size_bytes_sum{route="sized"} 500`,
		`rampart_http_request_size_bytes_count{route="sized"} 1`,
	} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(want) + `$`).Match(body) {
			var have []string
			for _, l := range strings.Split(string(body), "\n") {
				if strings.HasPrefix(l, "rampart_http_request_size_bytes_") && !strings.Contains(l, "_bucket") {
					have = append(have, l)
				}
			}
			t.Errorf("metrics lack %s; have %q", want, have)
		}
	}

	in := map[string]int64{}
	// Lines are written within access_log's flush interval (100ms).
	gwtest.WaitFor(t, 5*time.Second, "the access log lines", func() bool {
		data, err := os.ReadFile(logPath)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			if line == "" {
				continue
			}
			var e struct {
				Route   string `json:"route"`
				BytesIn int64  `json:"bytes_in"`
			}
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("access log line %q: %v", line, err)
			}
			in[e.Route] = e.BytesIn
		}
		return len(in) >= 2
	})
	if in["chunked"] != 3007 || in["sized"] != 500 {
		t.Errorf("access log bytes_in = %v, want chunked 3007 and sized 500", in)
	}
}
