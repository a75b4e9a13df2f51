package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"
)

// clientCert issues a client certificate of p with a URI SAN and returns
// it with its SHA-256 fingerprint.
func clientCertWithURI(t *testing.T, p *pki, cn, uri string) (tls.Certificate, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn, Organization: []string{"Example"}},
		URIs: []*url.URL{u}, DNSNames: []string{cn + ".svc.internal"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, hex.EncodeToString(sum[:])
}

// TestClientCertIdentity: a listener with client_auth request forwards the
// verified certificate's identity upstream (subject, SHA-256, SANs) and
// never a client's own copies; the client_cert policy refuses requests
// without a certificate (401) or with names it does not allow (403), and
// identifies the consumer by fingerprint for require_role.
func TestClientCertIdentity(t *testing.T) {
	p := newPKI(t)
	other := newPKI(t) // a CA the listener does not trust
	billing, billingFP := clientCertWithURI(t, p, "billing", "spiffe://prod/billing")
	reports, _ := clientCertWithURI(t, p, "reports", "spiffe://prod/reports")
	dev, _ := clientCertWithURI(t, p, "dev", "spiffe://dev/tool")
	stranger, _ := clientCertWithURI(t, other, "stranger", "spiffe://prod/stranger")
	sc, sk := p.issue("api", false, "api.example.com")
	g := startGateway(t, fmt.Sprintf(`listeners:
  - name: public
    address: "127.0.0.1:0"
    tls:
      certificates: [{cert_file: %q, key_file: %q}]
      client_auth: {mode: request, ca_file: %q}
admin: {address: "127.0.0.1:0"}
upstreams:
  echo: {targets: [{address: %q}]}
policies:
  mtls: {type: client_cert, allow_sans: ["URI:spiffe://prod/*"]}
  admins: {type: require_role, any_of: [admin]}
consumers:
  - {name: billing, client_certs: ["sha256:%s"], roles: [admin]}
routes:
  - {name: admin, match: {path: {prefix: /admin}}, upstream: echo, policies: [mtls, admins]}
  - {name: mtls, match: {path: {prefix: /mtls}}, upstream: echo, policies: [mtls]}
  - {name: open, match: {path: {prefix: /}}, upstream: echo}
`, sc, sk, filepath.Join(p.dir, "ca.pem"), echoUpstream(t, "echo"), billingFP))

	spoof := map[string]string{"X-Client-Cert-Subject": "CN=admin", "X-Client-Cert-SHA256": "00", "X-Client-Cert-SANs": "URI:spiffe://prod/billing"}
	get := func(t *testing.T, path string, certs ...tls.Certificate) (*http.Response, seen) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "https://"+g.Addr+path, nil)
		for k, v := range spoof {
			req.Header.Set(k, v)
		}
		resp, body := do(t, tlsClient(t, p, "api.example.com", true, certs...), req)
		var s seen
		if resp.StatusCode == 200 {
			if err := json.Unmarshal(body, &s); err != nil {
				t.Fatalf("%s: %v: %s", path, err, body)
			}
		}
		return resp, s
	}

	t.Run("headers without a certificate", func(t *testing.T) {
		resp, s := get(t, "/open")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		for k := range spoof {
			if v := s.Header.Get(k); v != "" {
				t.Errorf("upstream got the client's %s: %q", k, v)
			}
		}
	})
	t.Run("headers with a certificate", func(t *testing.T) {
		_, s := get(t, "/open", billing)
		if got := s.Header.Get("X-Client-Cert-Subject"); got != "CN=billing,O=Example" {
			t.Errorf("subject %q", got)
		}
		if got := s.Header.Get("X-Client-Cert-SHA256"); got != billingFP {
			t.Errorf("sha256 %q, want %s", got, billingFP)
		}
		if got := s.Header.Get("X-Client-Cert-SANs"); got != "DNS:billing.svc.internal,URI:spiffe://prod/billing" {
			t.Errorf("sans %q", got)
		}
		if n := len(s.Header.Values("X-Client-Cert-Subject")); n != 1 {
			t.Errorf("%d subject values, want 1 (the client's copy replaced)", n)
		}
	})
	t.Run("untrusted CA refused in the handshake", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, "https://"+g.Addr+"/open", nil)
		if resp, err := tlsClient(t, p, "api.example.com", true, stranger).Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("a certificate of an unknown CA got %d", resp.StatusCode)
		}
	})
	for _, tc := range []struct {
		name, path string
		cert       []tls.Certificate
		status     int
	}{
		{"policy without a certificate", "/mtls", nil, 401},
		{"policy, allowed SAN", "/mtls", []tls.Certificate{reports}, 200},
		{"policy, SAN not allowed", "/mtls", []tls.Certificate{dev}, 403},
		{"consumer by fingerprint has the role", "/admin", []tls.Certificate{billing}, 200},
		{"certificate of no consumer has no role", "/admin", []tls.Certificate{reports}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := get(t, tc.path, tc.cert...)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
}
