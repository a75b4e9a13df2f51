package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// tcpBase is a valid config with only a tcp listener: it needs no routes.
const tcpBase = `listeners:
  - {name: db, address: "127.0.0.1:5433", protocol: tcp, upstream: pg}
upstreams:
  pg:
    targets: [{address: "127.0.0.1:5432"}]
`

func TestTCPBaseIsValid(t *testing.T) {
	c, err := LoadBytes("t.yaml", []byte(tcpBase))
	if err != nil {
		t.Fatal(err)
	}
	// A tcp listener's idle connections rest longer than HTTP keep-alive.
	if got := c.Listeners[0].Limits.IdleTimeout.D(); got != time.Hour {
		t.Errorf("tcp listener idle_timeout default = %v, want 1h", got)
	}
	// An upstream that both a route and a tcp listener use may keep its
	// HTTP keys: the routes use them.
	shared := tcpBase + "    keepalive: {max_idle_per_target: 8}\n    balancer: ewma\nroutes:\n  - upstream: pg\n"
	if _, err := LoadBytes("t.yaml", []byte(shared)); err != nil {
		t.Errorf("upstream shared with a route: %v", err)
	}
	// With sni_routes, the listener's upstream is optional.
	sniOnly := strings.Replace(tcpBase, "protocol: tcp, upstream: pg}", "protocol: tcp, tls: {certificates: [{cert_file: c, key_file: k}], sni_routes: {\"*.example.com\": pg}}}", 1)
	if _, err := LoadBytes("t.yaml", []byte(sniOnly)); err != nil {
		t.Errorf("sni_routes without a listener upstream: %v", err)
	}
	// Active checks without a path are TCP checks, bare or send/expect.
	for _, hc := range []string{"{}", `{expect: "220 "}`, `{send: "PING\r\n", expect: "+PONG", interval: 1s}`} {
		if _, err := LoadBytes("t.yaml", []byte(tcpBase+"    health_check: {active: "+hc+"}\n")); err != nil {
			t.Errorf("active %s: %v", hc, err)
		}
	}
}

// Problems particular to tcp listeners and their upstreams are refused at
// their position.
func TestTCPRefused(t *testing.T) {
	listener := func(extra string) string {
		return strings.Replace(tcpBase, "upstream: pg}", "upstream: pg, "+extra+"}", 1)
	}
	upstream := func(extra string) string { return tcpBase + "    " + extra + "\n" }
	// sni gives the listener TLS with these sni_routes and no upstream.
	sni := func(routes string) string {
		return strings.Replace(tcpBase, "  - {name: db, address: \"127.0.0.1:5433\", protocol: tcp, upstream: pg}",
			"  - name: db\n    address: \"127.0.0.1:5433\"\n    protocol: tcp\n    tls: {certificates: [{cert_file: c, key_file: k}], sni_routes: "+routes+"}", 1)
	}
	tests := []struct {
		name, doc, want string
	}{
		{"max_body_bytes", listener("limits: {max_body_bytes: 10}"), `2:97: listeners[0].limits.max_body_bytes: max_body_bytes is for http listeners; a tcp listener carries bytes, not requests`},
		{"max_header_bytes", listener("limits: {max_header_bytes: 10}"), `2:99: listeners[0].limits.max_header_bytes: max_header_bytes is for http listeners; a tcp listener carries bytes, not requests`},
		{"buffer_dir", listener("limits: {buffer_dir: /tmp}"), `2:93: listeners[0].limits.buffer_dir: buffer_dir is for http listeners; a tcp listener carries bytes, not requests`},
		{"explain", listener("explain: true"), `2:81: listeners[0].explain: explain is for http listeners; a tcp listener sees no HTTP request to explain`},
		{"unknown upstream", strings.Replace(tcpBase, "upstream: pg}", "upstream: pq}", 1), `2:68: listeners[0].upstream: unknown upstream "pq" (did you mean "pg"?)`},
		{"ewma", upstream("balancer: ewma"), `6:15: upstreams.pg.balancer: balancer ewma needs HTTP latencies; the upstream is used only by tcp listeners (listeners[0]): use least_request`},
		{"hash on a header", upstream("balancer: maglev\n    hash_key: header:X-User"), `7:15: upstreams.pg.hash_key: hash_key "header:X-User" needs HTTP requests; the upstream is used only by tcp listeners (listeners[0]): use ip`},
		{"keepalive", upstream("keepalive: {max_idle_per_target: 4}"), `6:16: upstreams.pg.keepalive: keepalive has no effect on an upstream only tcp listeners use (listeners[0]): the L4 proxy opens one upstream connection per client connection and pools none`},
		{"protocol", upstream("protocol: h2c"), `6:15: upstreams.pg.protocol: protocol has no effect on an upstream only tcp listeners use (listeners[0]): the L4 proxy carries bytes; it speaks no HTTP version`},
		{"max_requests", upstream("circuit_breaker: {max_connections: 10, max_requests: 5}"), `6:58: upstreams.pg.circuit_breaker.max_requests: circuit_breaker.max_requests has no effect on an upstream only tcp listeners use (listeners[0]): the L4 proxy has no requests; circuit_breaker.max_connections bounds its connections`},
		{"through failover", upstream("failover: spare") + "  spare:\n    targets: [{address: \"127.0.0.1:5434\"}]\n    keepalive: {idle_timeout: 1s}\n",
			`9:16: upstreams.spare.keepalive: keepalive has no effect on an upstream only tcp listeners use (listeners[0]): the L4 proxy opens one upstream connection per client connection and pools none`},
		{"send without expect", upstream(`health_check: {active: {send: "PING\r\n"}}`), `6:35: upstreams.pg.health_check.active.send: send needs expect: what a healthy target answers`},
		{"send with a path", upstream(`health_check: {active: {path: /h, send: "PING", expect: "PONG"}}`), `6:45: upstreams.pg.health_check.active.send: send is for TCP checks, which have no path; an HTTP check (path) judges the status`},
		{"expect with a path", upstream(`health_check: {active: {path: /h, expect: "PONG"}}`), `6:47: upstreams.pg.health_check.active.expect: expect is for TCP checks, which have no path; an HTTP check (path) judges the status`},
		{"expect too long", upstream(`health_check: {active: {expect: "` + strings.Repeat("x", 4097) + `"}}`), `6:37: upstreams.pg.health_check.active.expect: 4097 bytes; at most 4096`},
		{"proxy_protocol version", upstream("proxy_protocol: v3"), `6:21: upstreams.pg.proxy_protocol: invalid proxy_protocol "v3" (want v1 or v2) (did you mean "v1"?)`},
		{"proxy_protocol on an http upstream", upstream("proxy_protocol: v1") + "routes:\n  - upstream: pg\n", `6:21: upstreams.pg.proxy_protocol: proxy_protocol is sent by tcp listeners only, and routes[0] uses this upstream for HTTP`},
		{"trusted proxy", listener(`trusted_proxies: [10.0.0.0/8, "10.1.2.3/33"]`), `2:102: listeners[0].trusted_proxies[1]: invalid address or prefix "10.1.2.3/33" (want e.g. 10.0.0.0/8, 192.0.2.1 or 2001:db8::/32)`},
		{"sni_routes on http", strings.Replace(base, `- address: "127.0.0.1:8080"`, "- address: \"127.0.0.1:8080\"\n    tls: {certificates: [{cert_file: c, key_file: k}], sni_routes: {a.example.com: app}}", 1), `3:68: listeners[0].tls.sni_routes: sni_routes is for tcp listeners; an http listener routes by host with routes[].match.hosts`},
		{"sni host", sni(`{"a..example.com": pg}`), `5:69: listeners[0].tls.sni_routes.a..example.com: invalid host "a..example.com": not a DNS name`},
		{"sni upstream", sni(`{a.example.com: pq}`), `5:69: listeners[0].tls.sni_routes.a.example.com: unknown upstream "pq" (did you mean "pg"?)`},
		{"sni duplicate", sni(`{a.example.com: pg, A.Example.com: pg}`), `5:69: listeners[0].tls.sni_routes.a.example.com: host "a.example.com" is also routed as "A.Example.com"`},
		{"http listener still needs routes", strings.Replace(tcpBase, "listeners:\n", "listeners:\n  - {name: web, address: \"127.0.0.1:8080\"}\n", 1), `1:1: routes: at least one route is required`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadBytes("t.yaml", []byte(tt.doc))
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("LoadBytes = %v, want Errors with %q", err, tt.want)
			}
			want := "t.yaml:" + tt.want
			for _, e := range errs {
				if e.Error() == want {
					return
				}
			}
			t.Errorf("missing error line\nwant: %s\ngot:\n%v", want, err)
		})
	}
}
