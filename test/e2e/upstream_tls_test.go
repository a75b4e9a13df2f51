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
	"time"

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

// mtlsUpstream starts a TLS upstream that requires a client certificate
// issued by clients and answers with its common name.
func mtlsUpstream(t *testing.T, p, clients *pki) string {
	t.Helper()
	certFile, keyFile := p.issue("upstream-mtls", false, "backend.internal")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clients.pool}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

// TestUpstreamMTLS: upstreams.X.tls.cert_file/key_file present a client
// certificate to a target that requires one; without it the handshake
// fails as a connect-stage failure (502 upstream_unreachable); a rotated
// certificate file is presented on the next new connection, without a
// reload.
func TestUpstreamMTLS(t *testing.T) {
	p, clients := newPKI(t), newPKI(t)
	addr := mtlsUpstream(t, p, clients)
	c := newClient(t)
	t.Run("no client certificate", func(t *testing.T) {
		g := upstreamTLSGateway(t, addr, p.dir, "backend.internal")
		resp, body := get(t, c, g.URL+"/x")
		checkError(t, resp, body, http.StatusBadGateway, "upstream_unreachable")
	})
	t.Run("client certificate and rotation", func(t *testing.T) {
		certFile, keyFile := clients.issue("gw-client", true, "gateway-one")
		g := startGateway(t, listenerYAML("")+fmt.Sprintf(`upstreams:
  secure:
    targets: [{address: %q}]
    keepalive: {idle_timeout: 100ms}
    tls: {server_name: backend.internal, ca_file: %q, cert_file: %q, key_file: %q}
routes:
  - {name: all, match: {path: {prefix: /}}, upstream: secure}
`, addr, filepath.Join(p.dir, "ca.pem"), certFile, keyFile))
		resp, body := get(t, c, g.URL+"/x")
		if resp.StatusCode != 200 || string(body) != "gateway-one" {
			t.Fatalf("got %d %q, want 200 gateway-one", resp.StatusCode, body)
		}
		// Rotate: the same paths, a new certificate (renamed into place).
		time.Sleep(1100 * time.Millisecond) // a new mtime, and past the check interval
		clients.issue("gw-client", true, "gateway-two")
		gwtest.WaitFor(t, 10*time.Second, "the rotated client certificate", func() bool {
			_, body := get(t, c, g.URL+"/x")
			return string(body) == "gateway-two"
		})
	})
}
