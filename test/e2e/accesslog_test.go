package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// logLines returns the JSON lines of the access log at path (none when it
// does not exist yet); a line that is not JSON fails the test.
func logLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("access log line is not JSON: %v\n%s", err, sc.Bytes())
		}
		out = append(out, m)
	}
	return out
}

// waitLine waits for the access log line at path that match accepts.
func waitLine(t *testing.T, path, what string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	var line map[string]any
	gwtest.WaitFor(t, 5*time.Second, what, func() bool {
		for _, m := range logLines(t, path) {
			if match(m) {
				line = m
				return true
			}
		}
		return false
	})
	return line
}

func byRequestID(id string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["request_id"] == id }
}

// checkFields compares the fields of want with line's.
func checkFields(t *testing.T, line map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %v (%T), want %v (%T)\nline %v", k, line[k], line[k], v, v, line)
		}
	}
}

// TestAccessLogFields checks the access log lines of a proxied request, of
// gateway errors (no route, a dead upstream, a policy's refusal) and of a
// request the framing guard refuses, on a real gateway writing to a file;
// and that a request's ID is the same in the response header, the request
// the upstream received, the log line and the error body.
func TestAccessLogFields(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	up := echoUpstream(t, "echo")
	dead := gwtest.FreeAddr(t)
	g := startGateway(t, listenerYAML("")+fmt.Sprintf(`
upstreams:
  echo: {targets: [{address: %q}]}
  dead: {targets: [{address: %q}]}
routes:
  - {name: dead, match: {path: {prefix: /dead}}, upstream: dead}
  - {name: keyed, match: {path: {prefix: /keyed}}, upstream: echo, policies: [keys]}
  - {name: logged, match: {path: {prefix: /api}}, upstream: echo}
  - {name: guarded, match: {path: {prefix: /waf}}, upstream: echo, policies: [firewall]}
policies:
  keys: {type: api_key}
  firewall: {type: waf}
consumers:
  - {name: acme, api_keys: [acme-key]}
observability:
  access_log: {path: %q}
`, up, dead, path))
	c := newClient(t)

	t.Run("proxied", func(t *testing.T) {
		body := strings.Repeat("b", 1234)
		req := newRequest(t, http.MethodPost, g.URL+"/api/items?x=1", strings.NewReader(body))
		req.Header.Set("User-Agent", "fields-test/1.0")
		resp, rb := do(t, c, req)
		s := decodeSeen(t, resp, rb)
		id := resp.Header.Get("X-Request-Id")
		if id == "" || s.Header.Get("X-Request-Id") != id {
			t.Fatalf("request ID %q in the response, %q upstream", id, s.Header.Get("X-Request-Id"))
		}
		line := waitLine(t, path, "the proxied request's line", byRequestID(id))
		checkFields(t, line, map[string]any{
			"msg": "access", "client_ip": "127.0.0.1", "consumer": "", "method": "POST", "host": g.Addr, "path": "/api/items",
			"proto": "HTTP/1.1", "route": "logged", "upstream": "echo", "target": up, "status": float64(200), "code": "",
			"bytes_in": float64(len(body)), "bytes_out": float64(len(rb)), "attempts": float64(1), "user_agent": "fields-test/1.0",
		})
		if ra, _ := line["remote_addr"].(string); !strings.HasPrefix(ra, "127.0.0.1:") {
			t.Errorf("remote_addr %q", ra)
		}
		if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(line["time"])); err != nil {
			t.Errorf("time: %v", err)
		}
		d, _ := line["duration"].(float64)
		ud, _ := line["upstream_duration"].(float64)
		if d <= 0 || ud <= 0 || ud > d || d > 5 {
			t.Errorf("duration %v, upstream_duration %v: want 0 < upstream_duration <= duration (seconds)", line["duration"], line["upstream_duration"])
		}
		for _, k := range []string{"trace_id", "span_id", "refused_by", "reason", "rejected_by", "waf_rules", "tls_version", "sni", "grpc_status", "bytes", "duration_ms"} {
			if v, ok := line[k]; ok {
				t.Errorf("%s = %v in a plain request's line, want it left out", k, v)
			}
		}
	})

	t.Run("consumer", func(t *testing.T) {
		req := newRequest(t, http.MethodGet, g.URL+"/keyed/x", nil)
		req.Header.Set("X-API-Key", "acme-key")
		resp, rb := do(t, c, req)
		decodeSeen(t, resp, rb)
		line := waitLine(t, path, "the authenticated request's line", byRequestID(resp.Header.Get("X-Request-Id")))
		checkFields(t, line, map[string]any{"consumer": "acme", "route": "keyed", "status": float64(200)})
		if v, ok := line["rejected_by"]; ok {
			t.Errorf("rejected_by = %v for an accepted request", v)
		}
	})

	errorCases := []struct {
		name, path, route, code string
		status                  int
		upstream, rejectedBy    string
	}{
		{"no route", "/nowhere", "", "route_not_found", 404, "", ""},
		{"dead upstream", "/dead/x", "dead", "upstream_unreachable", 502, "dead", ""},
		{"no key", "/keyed/x", "keyed", "unauthenticated", 401, "", "keys"},
	}
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			id := "err-" + strings.ReplaceAll(tc.name, " ", "-")
			req := newRequest(t, http.MethodGet, g.URL+tc.path, nil)
			req.Header.Set("X-Request-ID", id)
			resp, rb := do(t, c, req)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, rb)
			}
			var eb errorBody
			if err := json.Unmarshal(rb, &eb); err != nil {
				t.Fatalf("error body %q: %v", rb, err)
			}
			if got := resp.Header.Get("X-Request-Id"); got != id || eb.Error.RequestID != id {
				t.Fatalf("request ID %q in the header, %q in the body; want %q", got, eb.Error.RequestID, id)
			}
			line := waitLine(t, path, "the error's line", byRequestID(id))
			checkFields(t, line, map[string]any{"status": float64(tc.status), "code": eb.Error.Code, "route": tc.route,
				"upstream": tc.upstream, "bytes_out": float64(len(rb)), "path": tc.path})
			if rb, ok := line["rejected_by"]; tc.rejectedBy != "" && rb != tc.rejectedBy || tc.rejectedBy == "" && ok {
				t.Errorf("rejected_by = %v, want %q", rb, tc.rejectedBy)
			}
			if eb.Error.Code != tc.code {
				t.Errorf("code %q, want %q", eb.Error.Code, tc.code)
			}
			if tc.upstream != "" {
				if line["target"] != dead || line["attempts"].(float64) < 1 {
					t.Errorf("target %v, attempts %v", line["target"], line["attempts"])
				}
			}
		})
	}

	t.Run("waf", func(t *testing.T) {
		req := newRequest(t, http.MethodGet, g.URL+"/waf/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E", nil)
		req.Header.Set("X-Request-ID", "waf-1")
		resp, rb := do(t, c, req)
		checkError(t, resp, rb, 403, "waf_blocked")
		line := waitLine(t, path, "the blocked request's line", byRequestID("waf-1"))
		checkFields(t, line, map[string]any{"rejected_by": "firewall", "code": "waf_blocked", "status": float64(403), "route": "guarded"})
		rules, _ := line["waf_rules"].([]any)
		score, _ := line["waf_score"].(float64)
		if len(rules) == 0 || score < 5 {
			t.Errorf("waf_rules %v, waf_score %v: want the matched rules and a blocking score", line["waf_rules"], line["waf_score"])
		}
		for _, r := range rules {
			if id, ok := r.(float64); !ok || id < 900000 {
				t.Errorf("waf rule %v is not a CRS rule id", r)
			}
		}
	})

	guardCases := []struct {
		name, request, method, path, code, reason string
		status                                    int
	}{
		{"two hosts", "GET /api/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "", "", "bad_request", "more than one Host header", 400},
		{"bad header name", "GET /api/x HTTP/1.1\r\nHost: a\r\nB(ad: x\r\n\r\n", "", "", "bad_request", "malformed header field name", 400},
		// A refused head's parts are not logged: only the connection's.
		{"TRACE", "TRACE /api/trace HTTP/1.1\r\nHost: a\r\nUser-Agent: tracer\r\n\r\n", "", "", "method_not_allowed", "TRACE is not supported", 405},
	}
	for _, tc := range guardCases {
		t.Run("guard "+tc.name, func(t *testing.T) {
			raw := rawExchange(t, g.Addr, tc.request)
			if st := statusOf(t, raw); st != tc.status {
				t.Fatalf("status %d, want %d:\n%s", st, tc.status, raw)
			}
			resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
			if err != nil {
				t.Fatal(err)
			}
			id := resp.Header.Get("X-Request-Id")
			var eb errorBody
			if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil || eb.Error.RequestID != id || id == "" {
				t.Fatalf("request ID %q in the header, %q in the body (%v)", id, eb.Error.RequestID, err)
			}
			line := waitLine(t, path, "the refusal's line", byRequestID(id))
			checkFields(t, line, map[string]any{"refused_by": "guard", "status": float64(tc.status), "code": tc.code,
				"reason": tc.reason, "client_ip": "127.0.0.1", "method": tc.method, "path": tc.path, "route": ""})
			if ra, _ := line["remote_addr"].(string); !strings.HasPrefix(ra, "127.0.0.1:") {
				t.Errorf("remote_addr %q", ra)
			}
			if line["user_agent"] != "" || line["host"] != "" {
				t.Errorf("user_agent %v, host %v of a refused head", line["user_agent"], line["host"])
			}
		})
	}

	t.Run("odd bytes", func(t *testing.T) {
		// Quotes, backslashes, percent-encoded control and invalid UTF-8
		// bytes in the path, and invalid UTF-8 and quotes in the
		// User-Agent: the line is still one valid JSON object.
		id := "odd-bytes-1"
		raw := rawExchange(t, g.Addr, "GET /api/q%22b%5Cs%01%FF%FE%0A HTTP/1.1\r\nHost: h\r\nX-Request-ID: "+id+
			"\r\nUser-Agent: a\"b\\c\xff\xfe\u2028 \t end\r\nConnection: close\r\n\r\n")
		// (pathnorm refuses the control bytes: a 400 of the gateway's,
		// logged with the path as decoded.)
		if st := statusOf(t, raw); st != 400 {
			t.Fatalf("status %d:\n%s", st, raw)
		}
		line := waitLine(t, path, "the odd request's line", byRequestID(id))
		if ua := line["user_agent"]; ua != "a\"b\\c\ufffd\ufffd\u2028 \t end" {
			t.Errorf("user_agent %q", ua)
		}
		if p := line["path"]; p != "/api/q\"b\\s\x01\ufffd\ufffd\n" {
			t.Errorf("path %q", p)
		}
	})
}

// TestAccessLogRotate runs the real binary with a file access log,
// renames the file as logrotate does and sends SIGUSR1: the next lines go
// to a new file at the path, and SIGTERM flushes what is queued.
func TestAccessLogRotate(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "access.log")
	addr, adminAddr := gwtest.FreeAddr(t), gwtest.FreeAddr(t)
	up := echoUpstream(t, "echo")
	cfg := fmt.Sprintf(`listeners: [{name: public, address: %q}]
admin: {address: %q}
drain_timeout: 1s
upstreams:
  echo: {targets: [{address: %q}]}
routes:
  - {name: all, match: {path: {prefix: /}}, upstream: echo}
observability:
  access_log: {path: %q}
`, addr, adminAddr, up, logPath)
	cfgPath := filepath.Join(dir, "rampart.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := gwtest.StartProc(t, rampartBin, nil, "run", "-c", cfgPath)
	gwtest.WaitFor(t, 10*time.Second, "the gateway ready", func() bool { return readyzCode(adminAddr) == 200 })
	c := newClient(t)
	send := func(id string) {
		t.Helper()
		req := newRequest(t, http.MethodGet, "http://"+addr+"/x", nil)
		req.Header.Set("X-Request-ID", id)
		resp, b := do(t, c, req)
		decodeSeen(t, resp, b)
	}
	ids := func(path string) string {
		var out []string
		for _, m := range logLines(t, path) {
			out = append(out, fmt.Sprint(m["request_id"]))
		}
		return strings.Join(out, ",")
	}
	send("before")
	gwtest.WaitFor(t, 5*time.Second, "the first line", func() bool { return ids(logPath) == "before" })
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	send("renamed") // before SIGUSR1: still the renamed file
	gwtest.WaitFor(t, 5*time.Second, "the line in the renamed file", func() bool { return ids(logPath+".1") == "before,renamed" })
	p.Signal(t, syscall.SIGUSR1)
	gwtest.WaitFor(t, 5*time.Second, "a new file", func() bool { _, err := os.Stat(logPath); return err == nil })
	c.CloseIdleConnections()
	for i := range 20 {
		send(fmt.Sprintf("after-%d", i))
	}
	p.Signal(t, syscall.SIGTERM)
	if code := p.WaitExit(t, 10*time.Second); code != 0 {
		t.Fatalf("exit %d\n%s", code, p.Stderr())
	}
	want := make([]string, 20)
	for i := range want {
		want[i] = fmt.Sprintf("after-%d", i)
	}
	if got := ids(logPath); got != strings.Join(want, ",") {
		t.Errorf("new file has %s, want %s", got, strings.Join(want, ","))
	}
	if got := ids(logPath + ".1"); got != "before,renamed" {
		t.Errorf("rotated file has %s", got)
	}
	if !strings.Contains(p.Stderr(), "access log reopened") {
		t.Errorf("no \"access log reopened\" in the log:\n%s", p.Stderr())
	}
}

// TestAccessLogRetryAndTLS checks the fields of a retried request (the
// attempts, and an upstream_duration that spans the first answer's delay,
// the backoff and the second attempt) and the TLS fields of requests on a
// TLS listener over HTTP/1.1 and HTTP/2.
func TestAccessLogRetryAndTLS(t *testing.T) {
	p := newPKI(t)
	certFile, keyFile := p.issue("api", false, "api.example.com")
	var calls atomic.Int64
	flaky := gwtest.Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1)%2 == 1 {
			time.Sleep(50 * time.Millisecond)
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		echoHandler("flaky").ServeHTTP(w, r)
	}))
	path := filepath.Join(t.TempDir(), "access.log")
	g := startGateway(t, fmt.Sprintf(`listeners:
  - name: public
    address: "127.0.0.1:0"
    tls:
      certificates: [{cert_file: %q, key_file: %q}]
admin: {address: "127.0.0.1:0"}
upstreams:
  flaky: {targets: [{address: %q}]}
routes:
  - {name: retried, match: {path: {prefix: /}}, upstream: flaky, retry: {attempts: 2, on: [503], backoff: {base: 20ms, max: 20ms}}}
observability:
  access_log: {path: %q}
`, certFile, keyFile, flaky, path))
	for _, tc := range []struct {
		name  string
		h2    bool
		proto string
	}{{"HTTP/1.1", false, "HTTP/1.1"}, {"HTTP/2", true, "HTTP/2.0"}} {
		t.Run(tc.name, func(t *testing.T) {
			c := tlsClient(t, p, "api.example.com", tc.h2)
			resp, err := c.Get("https://" + g.Addr + "/r")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			s := decodeSeen(t, resp, body)
			id := resp.Header.Get("X-Request-Id")
			if s.Header.Get("X-Request-Id") != id {
				t.Fatalf("request ID %q upstream, %q in the response", s.Header.Get("X-Request-Id"), id)
			}
			line := waitLine(t, path, "the retried request's line", byRequestID(id))
			checkFields(t, line, map[string]any{"attempts": float64(2), "status": float64(200), "proto": tc.proto,
				"tls_version": "TLS 1.3", "sni": "api.example.com", "route": "retried", "target": flaky})
			d, _ := line["duration"].(float64)
			ud, _ := line["upstream_duration"].(float64)
			if ud < 0.050 || ud > d {
				t.Errorf("upstream_duration %v, duration %v: want 0.05s (the first answer's delay) <= upstream_duration <= duration", ud, d)
			}
		})
	}
}

// TestAccessLogReload changes observability.access_log.path by reloads:
// another file takes the next lines, off stops them, and a reload that
// keeps the path keeps writing to the same file.
func TestAccessLogReload(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	up := echoUpstream(t, "echo")
	doc := func(path string) string {
		return listenerYAML("") + fmt.Sprintf(`
upstreams:
  echo: {targets: [{address: %q}]}
routes:
  - {name: all, match: {path: {prefix: /}}, upstream: echo}
observability:
  access_log: {path: %q}
`, up, path)
	}
	g := startGateway(t, doc(a))
	c := newClient(t)
	send := func(id string) {
		t.Helper()
		req := newRequest(t, http.MethodGet, g.URL+"/x", nil)
		req.Header.Set("X-Request-ID", id)
		resp, body := do(t, c, req)
		decodeSeen(t, resp, body)
	}
	ids := func(path string) string {
		var out []string
		for _, m := range logLines(t, path) {
			out = append(out, fmt.Sprint(m["request_id"]))
		}
		return strings.Join(out, ",")
	}
	send("1")
	g.Reload(t, doc(a)+"\n# the same path\n")
	send("2")
	g.Reload(t, doc(b))
	send("3")
	g.Reload(t, doc("off"))
	send("4")
	g.Reload(t, doc(b))
	send("5")
	gwtest.WaitFor(t, 5*time.Second, "the lines", func() bool { return ids(a) == "1,2" && ids(b) == "3,5" })
	g.Stop()
	if ids(a) != "1,2" || ids(b) != "3,5" {
		t.Fatalf("a.log has %s, b.log %s; want 1,2 and 3,5", ids(a), ids(b))
	}
}

// TestAccessLogTraceIDs checks that with tracing on the line carries the
// SERVER span's ids: the caller's trace id continued, and a span id of the
// gateway's own. The collector is dead, which costs the request nothing.
func TestAccessLogTraceIDs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	up := echoUpstream(t, "echo")
	g := startGateway(t, listenerYAML("")+fmt.Sprintf(`
upstreams:
  echo: {targets: [{address: %q}]}
routes:
  - {name: all, match: {path: {prefix: /}}, upstream: echo}
observability:
  access_log: {path: %q}
  tracing: {otlp_endpoint: %q, sample_ratio: 1}
`, up, path, gwtest.FreeAddr(t)))
	req := newRequest(t, http.MethodGet, g.URL+"/traced", nil)
	req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	req.Header.Set("X-Request-ID", "traced-1")
	resp, body := do(t, newClient(t), req)
	s := decodeSeen(t, resp, body)
	line := waitLine(t, path, "the traced request's line", byRequestID("traced-1"))
	if line["trace_id"] != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("trace_id %v, want the caller's", line["trace_id"])
	}
	span, _ := line["span_id"].(string)
	if len(span) != 16 || span == "00f067aa0ba902b7" || span == "0000000000000000" {
		t.Errorf("span_id %q, want the gateway's SERVER span", span)
	}
	if tp := s.Header.Get("Traceparent"); !strings.HasPrefix(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-") {
		t.Errorf("traceparent upstream %q", tp)
	}
}
