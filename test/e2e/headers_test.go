package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// rawRequest sends a raw HTTP/1.1 request to addr and parses the response.
func rawRequest(t *testing.T, addr, request string) (*http.Response, []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, b
}

// TestHopByHopRequest checks that hop-by-hop request headers, including
// those named in Connection, never reach the upstream, and that
// "TE: trailers" does.
func TestHopByHopRequest(t *testing.T) {
	g := startGateway(t, listenerYAML("")+fmt.Sprintf(`
upstreams:
  echo: {targets: [{address: %q}]}
routes:
  - {name: all, match: {path: {prefix: /}}, upstream: echo}
`, echoUpstream(t, "echo")))
	tests := []struct {
		name    string
		headers string
		gone    []string
		want    map[string]string
	}{
		{
			name: "connection-named and standard hop-by-hop headers",
			headers: "Connection: X-Secret, keep-alive\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\n" +
				"Proxy-Authorization: Basic Zm9vOmJhcg==\r\nProxy-Connection: keep-alive\r\nTE: gzip\r\nX-Kept: yes\r\n",
			gone: []string{"X-Secret", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Te"},
			want: map[string]string{"X-Kept": "yes"},
		},
		{
			name:    "connection-named header with close",
			headers: "Connection: X-Secret, close\r\nX-Secret: 1\r\nX-Kept: yes\r\n",
			gone:    []string{"X-Secret"},
			want:    map[string]string{"X-Kept": "yes"},
		},
		{
			name:    "TE trailers is kept",
			headers: "TE: trailers\r\nConnection: TE\r\n",
			want:    map[string]string{"Te": "trailers"},
		},
		{
			name:    "TE trailers among other codings keeps only trailers",
			headers: "TE: gzip, trailers\r\n",
			want:    map[string]string{"Te": "trailers"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := rawRequest(t, g.Addr, "GET /h HTTP/1.1\r\nHost: gw.test\r\n"+tc.headers+"\r\n")
			s := decodeSeen(t, resp, body)
			for _, k := range tc.gone {
				if v, ok := s.Header[k]; ok {
					t.Errorf("upstream saw %s: %q", k, v)
				}
			}
			// The gateway may open its own Connection semantics upstream,
			// but it must never forward the client's tokens.
			if v := s.Header.Get("Connection"); strings.Contains(strings.ToLower(v), "x-secret") {
				t.Errorf("upstream saw Connection: %q", v)
			}
			for k, v := range tc.want {
				if got := s.Header.Get(k); got != v {
					t.Errorf("upstream saw %s: %q, want %q", k, got, v)
				}
			}
		})
	}
}

// rawUpstream serves every connection with the same raw HTTP/1.1 response
// and closes it; net/http would drop some of the headers we want to send.
func rawUpstream(t *testing.T, response string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				io.WriteString(c, response)
			}()
		}
	}()
	return ln.Addr().String()
}

// TestHopByHopResponse checks that hop-by-hop response headers, including
// those named in Connection, never reach the client.
func TestHopByHopResponse(t *testing.T) {
	const hop = "X-Internal: secret\r\nKeep-Alive: timeout=5, max=100\r\nProxy-Connection: keep-alive\r\n" +
		"Proxy-Authenticate: Basic\r\nX-Public: yes\r\nContent-Length: 2\r\n\r\nok"
	tests := []struct {
		name, connection string
	}{
		{"connection names a header", "X-Internal"},
		// net/http's Transport deletes the whole Connection header of a
		// response that contains "close"; the h1 upstream client keeps it,
		// so the tokens it names are removed too.
		{"connection names a header and close", "X-Internal, close"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := rawUpstream(t, "HTTP/1.1 200 OK\r\nConnection: "+tc.connection+"\r\n"+hop)
			g := startGateway(t, listenerYAML("")+fmt.Sprintf(`
upstreams:
  raw: {targets: [{address: %q}]}
routes:
  - {name: all, match: {path: {prefix: /}}, upstream: raw}
`, up))
			resp, body := rawRequest(t, g.Addr, "GET / HTTP/1.1\r\nHost: gw.test\r\n\r\n")
			if resp.StatusCode != 200 || string(body) != "ok" {
				t.Fatalf("got %d %q, want 200 ok", resp.StatusCode, body)
			}
			for _, k := range []string{"X-Internal", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate"} {
				if v, ok := resp.Header[k]; ok {
					t.Errorf("client saw %s: %q", k, v)
				}
			}
			if v := resp.Header.Get("Connection"); strings.Contains(strings.ToLower(v), "x-internal") {
				t.Errorf("client saw Connection: %q", v)
			}
			if resp.Header.Get("X-Public") != "yes" {
				t.Errorf("end-to-end header X-Public lost: %v", resp.Header)
			}
		})
	}
}

// TestForwardedHeaders checks X-Forwarded-For/Proto/Host: from a peer
// that is not a trusted proxy, client-sent forwarding headers are replaced
// (a spoofed X-Forwarded-For never reaches the upstream); from a trusted
// proxy, its X-Forwarded-For is extended and its -Proto and -Host kept.
func TestForwardedHeaders(t *testing.T) {
	echo := echoUpstream(t, "echo")
	routes := fmt.Sprintf(`
upstreams:
  echo: {targets: [{address: %q}]}
routes:
  - {name: all, match: {path: {prefix: /}}, upstream: echo}
`, echo)
	untrusted := startGateway(t, listenerYAML("")+routes)
	trusted := startGateway(t, strings.Replace(listenerYAML(""), "    address: \"127.0.0.1:0\"\n", "    address: \"127.0.0.1:0\"\n    trusted_proxies: [127.0.0.0/8, \"::1\"]\n", 1)+routes)
	c := newClient(t)
	tests := []struct {
		name      string
		g         *gwtest.Gateway
		host      string
		header    http.Header
		wantXFF   string
		wantProto string
		wantHost  string
	}{
		{"no prior", untrusted, "api.example.com", nil, "127.0.0.1", "http", "api.example.com"},
		{"untrusted: spoof replaced", untrusted, "api.example.com:8443", http.Header{"X-Forwarded-For": {"203.0.113.9"}}, "127.0.0.1", "http", "api.example.com:8443"},
		{"untrusted: chain replaced", untrusted, "x.test", http.Header{"X-Forwarded-For": {"203.0.113.9, 198.51.100.1"}}, "127.0.0.1", "http", "x.test"},
		{"untrusted: proto and host replaced", untrusted, "x.test", http.Header{"X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"evil.test"}}, "127.0.0.1", "http", "x.test"},
		{"trusted: appended to prior", trusted, "api.example.com:8443", http.Header{"X-Forwarded-For": {"203.0.113.9"}}, "203.0.113.9, 127.0.0.1", "http", "api.example.com:8443"},
		{"trusted: appended to a chain", trusted, "x.test", http.Header{"X-Forwarded-For": {"203.0.113.9, 198.51.100.1"}}, "203.0.113.9, 198.51.100.1, 127.0.0.1", "http", "x.test"},
		{"trusted: proto and host kept", trusted, "x.test", http.Header{"X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"api.example.com"}}, "127.0.0.1", "https", "api.example.com"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := newRequest(t, http.MethodGet, tc.g.URL+"/f", nil)
			req.Host = tc.host
			for k, vv := range tc.header {
				for _, v := range vv {
					req.Header.Add(k, v)
				}
			}
			req.Header.Set("Forwarded", "for=6.6.6.6")
			s := doSeen(t, c, req)
			if got := strings.Join(s.Header.Values("X-Forwarded-For"), ", "); got != tc.wantXFF {
				t.Errorf("X-Forwarded-For %q, want %q", got, tc.wantXFF)
			}
			if got := s.Header.Get("X-Forwarded-Proto"); got != tc.wantProto {
				t.Errorf("X-Forwarded-Proto %q, want %q", got, tc.wantProto)
			}
			if got := s.Header.Get("X-Forwarded-Host"); got != tc.wantHost {
				t.Errorf("X-Forwarded-Host %q, want %q", got, tc.wantHost)
			}
			if got := s.Header.Get("Forwarded"); (got != "") != (tc.g == trusted) {
				t.Errorf("Forwarded %q reached the upstream (trusted peer: %v)", got, tc.g == trusted)
			}
			if s.Host != tc.host {
				t.Errorf("upstream Host %q, want the client's %q", s.Host, tc.host)
			}
		})
	}
}

// TestTrustedProxiesClientIP: behind a trusted proxy, ip_filter, the
// rate_limit ip key and hash_key ip all see the client the proxy names;
// from an untrusted peer, the same header changes nothing.
func TestTrustedProxiesClientIP(t *testing.T) {
	var ups []string
	for i := 0; i < 4; i++ {
		ups = append(ups, fmt.Sprintf("{address: %q}", echoUpstream(t, fmt.Sprintf("t%d", i))))
	}
	doc := func(trust string) string {
		return fmt.Sprintf(`listeners:
  - name: public
    address: "127.0.0.1:0"%s
admin: {address: "127.0.0.1:0"}
policies:
  no-bad: {type: ip_filter, deny: [203.0.113.66]}
  per-ip: {type: rate_limit, rate: 1/m, burst: 2}
upstreams:
  echo: {targets: [%s], balancer: ring_hash, hash_key: ip}
routes:
  - {name: filtered, match: {path: {prefix: /f}}, upstream: echo, policies: [no-bad]}
  - {name: limited, match: {path: {prefix: /l}}, upstream: echo, policies: [per-ip]}
  - {name: hashed, match: {path: {prefix: /h}}, upstream: echo}
`, trust, strings.Join(ups, ", "))
	}
	trusted := startGateway(t, doc("\n    trusted_proxies: [127.0.0.1]"))
	untrusted := startGateway(t, doc(""))
	c := newClient(t)
	send := func(g *gwtest.Gateway, path, xff string) (*http.Response, []byte) {
		req := newRequest(t, http.MethodGet, g.URL+path, nil)
		req.Header.Set("X-Forwarded-For", xff)
		return do(t, c, req)
	}
	// ip_filter
	if resp, body := send(trusted, "/f", "203.0.113.66"); resp.StatusCode != 403 {
		t.Errorf("trusted: denied client admitted: %d %s", resp.StatusCode, body)
	}
	if resp, _ := send(trusted, "/f", "203.0.113.67"); resp.StatusCode != 200 {
		t.Errorf("trusted: other client refused: %d", resp.StatusCode)
	}
	if resp, _ := send(untrusted, "/f", "203.0.113.66"); resp.StatusCode != 200 {
		t.Errorf("untrusted: a spoofed header changed the client: %d", resp.StatusCode)
	}
	// rate_limit key ip: each named client has its own bucket of 2.
	for _, client := range []string{"198.51.100.1", "198.51.100.2"} {
		for i := 0; i < 2; i++ {
			if resp, _ := send(trusted, "/l", client); resp.StatusCode != 200 {
				t.Errorf("trusted: client %s request %d: %d, want 200", client, i, resp.StatusCode)
			}
		}
		if resp, _ := send(trusted, "/l", client); resp.StatusCode != 429 {
			t.Errorf("trusted: client %s third request: %d, want 429", client, resp.StatusCode)
		}
	}
	codes := map[int]int{}
	for i := 0; i < 4; i++ {
		resp, _ := send(untrusted, "/l", fmt.Sprintf("198.51.100.%d", i))
		codes[resp.StatusCode]++
	}
	if codes[200] != 2 || codes[429] != 2 {
		t.Errorf("untrusted: spoofed clients share the peer's bucket: want 2×200 and 2×429, got %v", codes)
	}
	// hash_key ip: clients named by the proxy spread over the targets.
	spread := func(g *gwtest.Gateway) int {
		seenTargets := map[string]bool{}
		for i := 0; i < 40; i++ {
			req := newRequest(t, http.MethodGet, g.URL+"/h", nil)
			req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.%d.%d", i, i*7%250))
			seenTargets[doSeen(t, c, req).Name] = true
		}
		return len(seenTargets)
	}
	if n := spread(trusted); n < 3 {
		t.Errorf("trusted: 40 clients reached %d of 4 targets, want at least 3", n)
	}
	if n := spread(untrusted); n != 1 {
		t.Errorf("untrusted: one peer reached %d targets, want 1", n)
	}
}

// TestRequestID checks that a sane X-Request-ID is kept and an insane one
// replaced, and that the ID the upstream saw is the one returned.
func TestRequestID(t *testing.T) {
	g := startGateway(t, listenerYAML("")+fmt.Sprintf(`
upstreams:
  echo: {targets: [{address: %q}]}
routes:
  - {name: all, match: {path: {prefix: /}}, upstream: echo}
`, echoUpstream(t, "echo")))
	c := newClient(t)
	tests := []struct {
		name string
		sent string // "" for none
		keep bool
	}{
		{"missing is generated", "", false},
		{"sane is kept", "req-2024.abc_DEF:1/2+3=@x", true},
		{"uuid is kept", "6f1c1c0e-8f7a-4b7e-9f1e-2b1c9d3e4f50", true},
		{"too long is replaced", strings.Repeat("a", 300), false},
		{"space is replaced", "has space", false},
		{"quote is replaced", `a"b`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := newRequest(t, http.MethodGet, g.URL+"/rid", nil)
			if tc.sent != "" {
				req.Header.Set("X-Request-ID", tc.sent)
			}
			resp, body := do(t, c, req)
			s := decodeSeen(t, resp, body)
			got := resp.Header.Get("X-Request-ID")
			if up := s.Header.Values("X-Request-Id"); len(up) != 1 || up[0] != got {
				t.Errorf("upstream saw X-Request-ID %q, client got %q", up, got)
			}
			if tc.keep {
				if got != tc.sent {
					t.Errorf("X-Request-ID %q, want the client's %q", got, tc.sent)
				}
				return
			}
			if got == "" || got == tc.sent || len(got) > 128 || strings.ContainsAny(got, " \"") {
				t.Errorf("X-Request-ID %q: want a new sane ID (sent %q)", got, tc.sent)
			}
		})
	}
	t.Run("generated IDs are unique", func(t *testing.T) {
		ids := map[string]bool{}
		for range 50 {
			resp, _ := get(t, c, g.URL+"/rid")
			ids[resp.Header.Get("X-Request-ID")] = true
		}
		if len(ids) != 50 {
			t.Errorf("%d distinct IDs in 50 requests", len(ids))
		}
	})
}

var traceparentRE = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$`)

// TestTraceparent checks W3C trace context propagation.
func TestTraceparent(t *testing.T) {
	g := startGateway(t, listenerYAML("")+fmt.Sprintf(`
upstreams:
  echo: {targets: [{address: %q}]}
routes:
  - {name: all, match: {path: {prefix: /}}, upstream: echo}
`, echoUpstream(t, "echo")))
	c := newClient(t)
	const (
		traceID  = "4bf92f3577b34da6a3ce929d0e0e4736"
		parentID = "00f067aa0ba902b7"
	)
	tests := []struct {
		name          string
		traceparent   string
		tracestate    string
		keepTrace     bool
		wantState     string
		wantFlagsFrom string
	}{
		{name: "valid keeps trace id", traceparent: "00-" + traceID + "-" + parentID + "-01", tracestate: "vendor=abc",
			keepTrace: true, wantState: "vendor=abc", wantFlagsFrom: "01"},
		{name: "invalid is replaced and tracestate dropped", traceparent: "00-" + traceID + "-zzzz-01", tracestate: "vendor=abc"},
		{name: "all-zero trace id is invalid", traceparent: "00-00000000000000000000000000000000-" + parentID + "-01", tracestate: "vendor=abc"},
		{name: "uppercase is invalid", traceparent: "00-" + strings.ToUpper(traceID) + "-" + parentID + "-01"},
		{name: "missing is generated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := newRequest(t, http.MethodGet, g.URL+"/t", nil)
			if tc.traceparent != "" {
				req.Header.Set("Traceparent", tc.traceparent)
			}
			if tc.tracestate != "" {
				req.Header.Set("Tracestate", tc.tracestate)
			}
			s := doSeen(t, c, req)
			tp := s.Header.Get("Traceparent")
			m := traceparentRE.FindStringSubmatch(tp)
			if m == nil {
				t.Fatalf("upstream traceparent %q is not a valid version-00 value", tp)
			}
			if m[2] == parentID || m[2] == strings.Repeat("0", 16) {
				t.Errorf("parent id %q: want a new, non-zero span id", m[2])
			}
			if tc.keepTrace {
				if m[1] != traceID {
					t.Errorf("trace id %q, want %q", m[1], traceID)
				}
				if m[3] != tc.wantFlagsFrom {
					t.Errorf("flags %q, want %q", m[3], tc.wantFlagsFrom)
				}
			} else if m[1] == traceID || m[1] == strings.ToLower(traceID) {
				t.Errorf("trace id %q kept from an invalid traceparent", m[1])
			}
			if got := s.Header.Get("Tracestate"); got != tc.wantState {
				t.Errorf("tracestate %q, want %q", got, tc.wantState)
			}
		})
	}
}

// jsonLines decodes newline-separated JSON objects.
func jsonLines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}
