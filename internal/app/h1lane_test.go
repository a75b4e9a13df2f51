package app

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
)

// TestH1LaneDifferential sends a table of HTTP/1.1 requests (odd casing,
// repeated fields, Connection-listed fields, Te, Upgrade, underscores,
// heads over the 256 bytes newRequest keeps inline, bodies, queries)
// through the whole gateway twice, once with the fast HTTP/1.1 server
// and once with net/http behind the guard (RAMPART_HTTP1_SERVER), to a
// raw TCP upstream that records the bytes of every request head it gets
// and answers with a head full of hop-by-hop and odd fields. What the
// upstream receives and what the client receives must be the same for
// both servers, field order aside (both lanes write fields in map
// order), and must hold the forwarding rules on their own: no hop-by-hop
// or Connection-listed field, no underscore field, the gateway's own
// X-Forwarded-*. It is the harness a flat header lane (a head written
// from the request's raw bytes instead of its http.Header) must pass:
// see docs/performance.md.
func TestH1LaneDifferential(t *testing.T) {
	long := strings.Repeat("c", 300)
	cases := []struct {
		name string
		req  string
		// want and absent are checked on the upstream's head (canonical
		// names, "Name: value"; absent by name).
		want   []string
		absent []string
	}{
		{name: "plain", req: "GET /a HTTP/1.1\r\nHost: svc\r\nUser-Agent: t\r\n\r\n",
			want: []string{"Host: svc", "User-Agent: t", "X-Forwarded-For: 127.0.0.1", "X-Forwarded-Proto: http", "X-Forwarded-Host: svc"}},
		{name: "odd-casing", req: "GET /a HTTP/1.1\r\nhOsT: svc\r\nx-CUSTOM-header: A\r\nACCEPT: */*\r\ncontent-TYPE: text/plain\r\n\r\n",
			want: []string{"Host: svc", "X-Custom-Header: A", "Accept: */*", "Content-Type: text/plain"}},
		{name: "repeated", req: "GET /a HTTP/1.1\r\nHost: svc\r\nX-Multi: a\r\nX-Multi: b\r\nx-multi: c\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n",
			want: []string{"X-Multi: a", "X-Multi: b", "X-Multi: c", "Cookie: a=1", "Cookie: b=2"}},
		{name: "connection-listed", req: "GET /a HTTP/1.1\r\nHost: svc\r\nConnection: keep-alive, X-Foo, x-bar\r\nX-Foo: secret\r\nX-Bar: secret\r\nX-Baz: kept\r\nKeep-Alive: timeout=5\r\n\r\n",
			want: []string{"X-Baz: kept"}, absent: []string{"Connection", "X-Foo", "X-Bar", "Keep-Alive"}},
		{name: "te-trailers", req: "GET /a HTTP/1.1\r\nHost: svc\r\nTE: gzip, trailers\r\n\r\n",
			want: []string{"Te: trailers"}},
		{name: "te-other", req: "GET /a HTTP/1.1\r\nHost: svc\r\nTe: gzip\r\n\r\n",
			absent: []string{"Te"}},
		{name: "upgrade-h2c", req: "GET /a HTTP/1.1\r\nHost: svc\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
			absent: []string{"Connection", "Upgrade", "Http2-Settings"}},
		{name: "proxy-hop", req: "GET /a HTTP/1.1\r\nHost: svc\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic eA==\r\nTrailer: X-T\r\n\r\n",
			absent: []string{"Proxy-Connection", "Proxy-Authorization", "Trailer"}},
		{name: "underscores", req: "GET /a HTTP/1.1\r\nHost: svc\r\nX_Under: 1\r\nX-Over: 2\r\n\r\n",
			want: []string{"X-Over: 2"}, absent: []string{"X_under", "X_Under"}},
		{name: "spoofed-forwarding", req: "GET /a HTTP/1.1\r\nHost: svc\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\nForwarded: for=6.6.6.6\r\n\r\n",
			want: []string{"X-Forwarded-For: 127.0.0.1", "X-Forwarded-Proto: http", "X-Forwarded-Host: svc"}, absent: []string{"Forwarded"}},
		{name: "whitespace", req: "GET /a HTTP/1.1\r\nHost: svc\r\nX-Ws: \t padded value \t\r\nX-Empty:\r\n\r\n",
			want: []string{"X-Ws: padded value", "X-Empty: "}},
		{name: "long-head", req: "GET /a HTTP/1.1\r\nHost: svc\r\nCookie: " + long + "\r\nX-Long: " + long + "\r\n\r\n",
			want: []string{"Cookie: " + long, "X-Long: " + long}},
		{name: "query-escaped", req: "GET /a/b%20c?x=1&y=%2F HTTP/1.1\r\nHost: svc\r\n\r\n"},
		{name: "post-body", req: "POST /a HTTP/1.1\r\nHost: svc\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
			want: []string{"Content-Length: 7"}},
		{name: "expect", req: "POST /a HTTP/1.1\r\nHost: svc\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
			absent: []string{"Expect"}},
		{name: "close", req: "GET /a HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n"},
	}

	got := map[string][]result{} // lane → per case
	for _, lane := range []string{"fast", "net/http"} {
		t.Run(strings.ReplaceAll(lane, "/", "-"), func(t *testing.T) {
			t.Setenv("RAMPART_HTTP1_SERVER", lane)
			up := startRecordingUpstream(t)
			addr := startLaneGateway(t, up.addr)
			for _, tc := range cases {
				resp, err := rawExchange(addr, tc.req)
				if err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				head := up.take(t)
				got[lane] = append(got[lane], result{up: normalizeHead(head), client: normalizeHead(resp)})
				fields := fieldSet(head)
				for _, w := range tc.want {
					if !fields[w] {
						t.Errorf("%s: upstream head lacks %q:\n%s", tc.name, w, head)
					}
				}
				for _, a := range tc.absent {
					for f := range fields {
						if strings.HasPrefix(strings.ToLower(f), strings.ToLower(a)+":") {
							t.Errorf("%s: upstream head has %q:\n%s", tc.name, f, head)
						}
					}
				}
				// The upstream's answer loses its hop-by-hop fields on the
				// way back.
				cf := fieldSet(resp)
				for f := range cf {
					for _, a := range []string{"x-resp-hop:", "keep-alive:", "upgrade:", "proxy-connection:"} {
						if strings.HasPrefix(strings.ToLower(f), a) {
							t.Errorf("%s: client got %q:\n%s", tc.name, f, resp)
						}
					}
				}
				if !cf["X-Resp-Kept: yes"] || !cf["Set-Cookie: a=1"] || !cf["Set-Cookie: b=2"] {
					t.Errorf("%s: client response lacks the upstream's end-to-end fields:\n%s", tc.name, resp)
				}
			}
		})
	}
	if t.Failed() {
		return
	}
	for i, tc := range cases {
		f, n := got["fast"][i], got["net/http"][i]
		if f.up != n.up {
			t.Errorf("%s: upstream heads differ\nfast:\n%s\nnet/http:\n%s", tc.name, f.up, n.up)
		}
		if f.client != n.client {
			t.Errorf("%s: client heads differ\nfast:\n%s\nnet/http:\n%s", tc.name, f.client, n.client)
		}
	}
}

type result struct{ up, client string }

// normalizeHead is a head (and what follows it) with its field lines
// sorted, the values the gateway makes per request (Date,
// X-Request-Id, Traceparent) masked to their length, and the body kept.
func normalizeHead(b string) string {
	head, body, _ := strings.Cut(b, "\r\n\r\n")
	lines := strings.Split(head, "\r\n")
	fields := lines[1:]
	for i, f := range fields {
		// Values the gateway makes per request: their presence and shape
		// count, not their bytes.
		for _, k := range []string{"Date: ", "X-Request-Id: ", "Traceparent: "} {
			if strings.HasPrefix(f, k) {
				fields[i] = k + strings.Repeat("-", len(f)-len(k))
			}
		}
	}
	slices.Sort(fields)
	return lines[0] + "\n" + strings.Join(fields, "\n") + "\n\n" + body
}

// fieldSet is the set of a head's field lines.
func fieldSet(b string) map[string]bool {
	head, _, _ := strings.Cut(b, "\r\n\r\n")
	m := map[string]bool{}
	for _, f := range strings.Split(head, "\r\n")[1:] {
		m[f] = true
	}
	return m
}

// rawExchange sends req on a new connection to addr and returns the
// response's head and body (read by Content-Length).
func rawExchange(addr, req string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if strings.Contains(req, "Expect: 100-continue") {
		head, body, _ := strings.Cut(req, "\r\n\r\n")
		if _, err := io.WriteString(c, head+"\r\n\r\n"); err != nil {
			return "", err
		}
		br := bufio.NewReader(c)
		line, err := br.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
			return "", fmt.Errorf("no 100 Continue: %q %v", line, err)
		}
		if _, err := br.ReadString('\n'); err != nil {
			return "", err
		}
		if _, err := io.WriteString(c, body); err != nil {
			return "", err
		}
		return readHeadBody(br)
	}
	if _, err := io.WriteString(c, req); err != nil {
		return "", err
	}
	return readHeadBody(bufio.NewReader(c))
}

// readHeadBody reads one message with a Content-Length (or none) body.
func readHeadBody(br *bufio.Reader) (string, error) {
	var sb strings.Builder
	n := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return sb.String(), err
		}
		sb.WriteString(line)
		if line == "\r\n" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Content-Length") {
			n, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return sb.String(), err
	}
	sb.Write(body)
	return sb.String(), nil
}

// recordingUpstream is a raw HTTP/1.1 upstream that records every request
// (head and Content-Length body) and answers with a fixed head that
// carries hop-by-hop fields the gateway must drop.
type recordingUpstream struct {
	addr string
	got  chan string
}

const laneUpstreamResponse = "HTTP/1.1 200 OK\r\n" +
	"Content-Type: text/plain\r\n" +
	"connection: keep-alive, X-Resp-Hop\r\n" +
	"X-Resp-Hop: dropped\r\n" +
	"Keep-Alive: timeout=5\r\n" +
	"Proxy-Connection: keep-alive\r\n" +
	"x-resp-KEPT: yes\r\n" +
	"Set-Cookie: a=1\r\n" +
	"Set-Cookie: b=2\r\n" +
	"Content-Length: 5\r\n\r\nhello"

func startRecordingUpstream(t *testing.T) *recordingUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &recordingUpstream{addr: ln.Addr().String(), got: make(chan string, 64)}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					msg, err := readHeadBody(br)
					if err != nil {
						return
					}
					u.got <- msg
					if _, err := io.WriteString(c, laneUpstreamResponse); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return u
}

// take returns the next request the upstream recorded.
func (u *recordingUpstream) take(t *testing.T) string {
	t.Helper()
	select {
	case m := <-u.got:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream got no request")
		return ""
	}
}

// startLaneGateway starts a gateway with one route to upstream.
func startLaneGateway(t *testing.T, upstream string) string {
	t.Helper()
	cfg, err := config.Parse("lane.yaml", []byte(fmt.Sprintf(`
listeners: [{name: public, address: "127.0.0.1:0"}]
admin: {address: "off"}
upstreams:
  backend: {targets: [{address: %q}]}
routes:
  - {name: all, match: {path: {prefix: /}}, upstream: backend}
observability: {access_log: {path: "off"}}
`, upstream)))
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Config: cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx, nil); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return a.ListenerAddr("public")
}
