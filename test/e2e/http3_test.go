package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// h3Client is an HTTP/3 client (quic-go) trusting p's CA.
func h3Client(t *testing.T, p *pki) *http.Client {
	tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: p.pool, ServerName: "api.example.com"}}
	t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func http3Gateway(t *testing.T, p *pki) *gwtest.Gateway {
	t.Helper()
	cf, kf := p.issue("api", false, "api.example.com")
	return startGateway(t, fmt.Sprintf(`listeners:
  - name: public
    address: "127.0.0.1:0"
    http3: true
    tls:
      certificates: [{cert_file: %q, key_file: %q}]
admin: {address: "127.0.0.1:0"}
drain_timeout: 1s
upstreams:
  echo: {targets: [{address: %q}]}
policies:
  deny-all: {type: ip_filter, deny: ["0.0.0.0/0", "::/0"]}
  small: {type: headers, response: {set: {X-Policy: applied}}}
routes:
  - {name: denied, match: {path: {prefix: /denied}}, upstream: echo, policies: [deny-all]}
  - {name: all, match: {path: {prefix: /}}, upstream: echo, policies: [small]}
`, cf, kf, echoUpstream(t, "echo")))
}

// TestHTTP3: a listener with http3: true serves HTTP/3 on the UDP port of
// its TCP port with the same routes and policies, and advertises it with
// Alt-Svc on HTTP/1.1 and HTTP/2 answers; the gateway's errors are the same
// JSON; a drain closes HTTP/3 gracefully.
func TestHTTP3(t *testing.T) {
	p := newPKI(t)
	g := http3Gateway(t, p)
	url := "https://" + g.Addr
	port := g.Addr[strings.LastIndexByte(g.Addr, ':'):]
	for _, h2 := range []bool{false, true} {
		resp, err := tlsClient(t, p, "api.example.com", h2).Get(url + "/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got, want := resp.Header.Get("Alt-Svc"), `h3="`+port+`"; ma=86400`; got != want {
			t.Errorf("%s: Alt-Svc %q, want %q", resp.Proto, got, want)
		}
	}
	c := h3Client(t, p)
	resp, err := c.Get(url + "/hello?q=1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var s seen
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if resp.ProtoMajor != 3 || resp.StatusCode != 200 || s.Path != "/hello" || s.Query != "q=1" || resp.Header.Get("X-Policy") != "applied" {
		t.Fatalf("HTTP/3: %s %d, upstream saw %s?%s, X-Policy %q", resp.Proto, resp.StatusCode, s.Path, s.Query, resp.Header.Get("X-Policy"))
	}
	if s.Header.Get("X-Forwarded-Proto") != "https" {
		t.Errorf("X-Forwarded-Proto %q", s.Header.Get("X-Forwarded-Proto"))
	}
	// A POST body crosses too.
	resp, err = c.Post(url+"/post", "text/plain", strings.NewReader(strings.Repeat("b", 100000)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	json.Unmarshal(b, &s)
	if s.BodyLen != 100000 {
		t.Errorf("upstream got %d body bytes, want 100000", s.BodyLen)
	}
	resp, err = c.Get(url + "/denied")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	checkError(t, resp, b, http.StatusForbidden, "ip_denied")
	// Drain: the HTTP/3 server goes away; a new request fails (the
	// client falls back to TCP, which is closed too).
	g.Stop()
	if resp, err := h3Client(t, p).Get(url + "/after"); err == nil {
		resp.Body.Close()
		t.Fatalf("HTTP/3 answered %d after the drain", resp.StatusCode)
	}
}

// BenchmarkHTTP3VsHTTP2: one small GET through the gateway over HTTP/3
// and over HTTP/2 on TLS, the same listener, one connection each, client,
// gateway and upstream in this process (docs/performance.md).
func BenchmarkHTTP3VsHTTP2(b *testing.B) {
	p := newPKI(b)
	cf, kf := p.issue("api", false, "api.example.com")
	up := gwtest.Upstream(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	g := gwtest.Start(b, fmt.Sprintf(`listeners:
  - name: public
    address: "127.0.0.1:0"
    http3: true
    tls:
      certificates: [{cert_file: %q, key_file: %q}]
drain_timeout: 1s
upstreams:
  echo: {targets: [{address: %q}]}
routes:
  - {name: all, match: {path: {prefix: /}}, upstream: echo}
observability:
  access_log: {path: "off"}
`, cf, kf, up))
	h2tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.pool, ServerName: "api.example.com"}, ForceAttemptHTTP2: true}
	h3tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: p.pool, ServerName: "api.example.com"}}
	b.Cleanup(func() { h2tr.CloseIdleConnections(); h3tr.Close() })
	for _, c := range []struct {
		name  string
		rt    http.RoundTripper
		proto int
	}{{"h2", h2tr, 2}, {"h3", h3tr, 3}} {
		b.Run(c.name, func(b *testing.B) {
			cl := &http.Client{Transport: c.rt, Timeout: 10 * time.Second}
			get := func() {
				resp, err := cl.Get("https://" + g.Addr + "/x")
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.ProtoMajor != c.proto || resp.StatusCode != 200 {
					b.Fatalf("%s %d", resp.Proto, resp.StatusCode)
				}
			}
			get()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				get()
			}
		})
	}
}
