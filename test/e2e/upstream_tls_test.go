package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// tlsUpstream starts an echo upstream serving TLS with a certificate that p
// issues for dns, over HTTP/2 too when h2. It returns its address.
func tlsUpstream(t *testing.T, p *pki, h2 bool, dns ...string) string {
	t.Helper()
	certFile, keyFile := p.issue("upstream-"+dns[0], false, dns...)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewUnstartedServer(echoHandler("tls"))
	s.EnableHTTP2 = h2
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

// upstreamTLSGateway runs a gateway whose one upstream is addr over TLS,
// verified against the CA in caDir with serverName.
func upstreamTLSGateway(t *testing.T, addr, caDir, serverName string) *gwtest.Gateway {
	t.Helper()
	return startGateway(t, listenerYAML("")+fmt.Sprintf(`upstreams:
  secure:
    targets: [{address: %q}]
    tls: {server_name: %q, ca_file: %q}
routes:
  - {name: all, match: {path: {prefix: /}}, upstream: secure}
`, addr, serverName, filepath.Join(caDir, "ca.pem")))
}

// TestUpstreamTLS covers TLS to targets: a verified exchange, HTTP/2 by
// ALPN, and verification failures (unknown CA, wrong server name), which
// are connect-stage failures (issue 15 bug 5): 502 upstream_unreachable
// naming the verification error, not bad_upstream_response.
func TestUpstreamTLS(t *testing.T) {
	p := newPKI(t)
	c := newClient(t)
	t.Run("verified", func(t *testing.T) {
		g := upstreamTLSGateway(t, tlsUpstream(t, p, false, "backend.internal"), p.dir, "backend.internal")
		s := doSeen(t, c, newRequest(t, http.MethodGet, g.URL+"/hello", nil))
		if s.Name != "tls" || s.Path != "/hello" || s.Proto != "HTTP/1.1" {
			t.Fatalf("upstream saw %+v", s)
		}
	})
	t.Run("h2 over TLS", func(t *testing.T) {
		g := upstreamTLSGateway(t, tlsUpstream(t, p, true, "backend.internal"), p.dir, "backend.internal")
		s := doSeen(t, c, newRequest(t, http.MethodGet, g.URL+"/h2", nil))
		if s.Proto != "HTTP/2.0" {
			t.Fatalf("upstream saw %s, want HTTP/2.0 (ALPN)", s.Proto)
		}
	})
	for _, tc := range []struct {
		name, serverName string
		issuer           *pki
		want             string
	}{
		{"unknown CA", "backend.internal", newPKI(t), "certificate signed by unknown authority"},
		{"wrong server name", "other.internal", p, "certificate is valid for backend.internal, not other.internal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := upstreamTLSGateway(t, tlsUpstream(t, tc.issuer, false, "backend.internal"), p.dir, tc.serverName)
			for range 2 {
				resp, body := get(t, c, g.URL+"/x")
				checkError(t, resp, body, http.StatusBadGateway, "upstream_unreachable")
				var e errorBody
				json.Unmarshal(body, &e)
				if !strings.Contains(e.Error.Message, "TLS verification") || !strings.Contains(e.Error.Message, tc.want) {
					t.Fatalf("message %q, want the TLS verification error (%q)", e.Error.Message, tc.want)
				}
			}
		})
	}
}
