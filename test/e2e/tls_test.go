package e2e

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// pki issues test certificates signed by one CA.
type pki struct {
	t    testing.TB
	dir  string
	ca   *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newPKI(t testing.TB) *pki {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &pki{t: t, dir: t.TempDir(), ca: ca, key: key, pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	os.WriteFile(filepath.Join(p.dir, "ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	return p
}

// issue writes NAME.pem and NAME-key.pem for the DNS names and returns the
// paths.
func (p *pki) issue(name string, client bool, dns ...string) (string, string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: dns[0]}, DNSNames: dns,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.key)
	if err != nil {
		p.t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	cp, kp := filepath.Join(p.dir, name+".pem"), filepath.Join(p.dir, name+"-key.pem")
	// Write to temporary names and rename, as certificate tools do.
	os.WriteFile(cp+".tmp", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(kp+".tmp", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	os.Rename(kp+".tmp", kp)
	os.Rename(cp+".tmp", cp)
	return cp, kp
}

func tlsGateway(t *testing.T, p *pki, clientAuth string) *gwtest.Gateway {
	t.Helper()
	apiC, apiK := p.issue("api", false, "api.example.com")
	wC, wK := p.issue("wild", false, "*.example.org")
	auth := ""
	if clientAuth != "" {
		auth = fmt.Sprintf("\n      client_auth: {mode: %s, ca_file: %q}", clientAuth, filepath.Join(p.dir, "ca.pem"))
	}
	return startGateway(t, fmt.Sprintf(`listeners:
  - name: public
    address: "127.0.0.1:0"
    tls:
      certificates:
        - {cert_file: %q, key_file: %q}
        - {cert_file: %q, key_file: %q}%s
admin: {address: "127.0.0.1:0"}
upstreams:
  echo: {targets: [{address: %q}]}
routes:
  - {name: all, match: {path: {prefix: /}}, upstream: echo}
`, apiC, apiK, wC, wK, auth, echoUpstream(t, "echo")))
}

func tlsClient(t *testing.T, p *pki, sni string, h2 bool, certs ...tls.Certificate) *http.Client {
	tr := &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: p.pool, ServerName: sni, Certificates: certs},
		ForceAttemptHTTP2: h2}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// TestTLSTermination covers HTTPS over HTTP/1.1 and HTTP/2 (ALPN), SNI
// certificate choice and the forwarded protocol.
func TestTLSTermination(t *testing.T) {
	p := newPKI(t)
	g := tlsGateway(t, p, "")
	url := "https://" + g.Addr + "/hello"
	tests := []struct {
		name      string
		sni       string
		h2        bool
		wantProto int
	}{
		{"HTTP/1.1 exact SNI", "api.example.com", false, 1},
		{"HTTP/2 via ALPN", "api.example.com", true, 2},
		{"wildcard SNI", "x.example.org", true, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tlsClient(t, p, tc.sni, tc.h2)
			resp, err := c.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			s := decodeSeen(t, resp, body)
			if resp.ProtoMajor != tc.wantProto {
				t.Fatalf("proto %s, want major %d", resp.Proto, tc.wantProto)
			}
			if got := s.Header.Get("X-Forwarded-Proto"); got != "https" {
				t.Fatalf("X-Forwarded-Proto %q, want https", got)
			}
			if cn := resp.TLS.PeerCertificates[0].Subject.CommonName; !strings.HasSuffix(tc.sni, strings.TrimPrefix(cn, "*")) {
				t.Fatalf("served certificate %q for SNI %q", cn, tc.sni)
			}
		})
	}
	t.Run("unknown SNI gets the first certificate and fails verification", func(t *testing.T) {
		if _, err := tlsClient(t, p, "nope.test", false).Get(url); err == nil {
			t.Fatal("request with an uncovered SNI succeeded")
		}
	})
}

// TestTLSGuard checks that TLS connections pass the HTTP/1.1 framing guard:
// a smuggling attempt over TLS is refused and the connection closed.
func TestTLSGuard(t *testing.T) {
	p := newPKI(t)
	g := tlsGateway(t, p, "")
	conn, err := tls.Dial("tcp", g.Addr, &tls.Config{RootCAs: p.pool, ServerName: "api.example.com", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "POST / HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	if resp.StatusCode != 400 {
		t.Fatalf("status %d, want 400", resp.StatusCode)
	}
	if _, err := http.ReadResponse(br, nil); err == nil {
		t.Fatal("a second response followed: the smuggled request was served")
	}
}

// TestMutualTLS checks client_auth require: no certificate, no request.
func TestMutualTLS(t *testing.T) {
	p := newPKI(t)
	g := tlsGateway(t, p, "require")
	cc, ck := p.issue("client", true, "client-1")
	clientCert, err := tls.LoadX509KeyPair(cc, ck)
	if err != nil {
		t.Fatal(err)
	}
	url := "https://" + g.Addr + "/"
	if resp, err := tlsClient(t, p, "api.example.com", false).Get(url); err == nil {
		resp.Body.Close()
		t.Fatalf("request without a client certificate got %d", resp.StatusCode)
	}
	resp, err := tlsClient(t, p, "api.example.com", true, clientCert).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d with a client certificate", resp.StatusCode)
	}
}

// TestCertificateRotation replaces the certificate files and reloads: new
// handshakes get the new certificate, an open connection keeps working.
func TestCertificateRotation(t *testing.T) {
	p := newPKI(t)
	g := tlsGateway(t, p, "")
	old := tlsClient(t, p, "api.example.com", false)
	resp, err := old.Get("https://" + g.Addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	serial := resp.TLS.PeerCertificates[0].SerialNumber

	p.issue("api", false, "api.example.com") // same files, new certificate
	if err := g.App.Reload(); err == nil {
		t.Log("reload without a config file applied") // in-process config: only certificates change
	}
	// The reload above may be refused (no config file); the file poll
	// picks the change up within its interval either way.
	gwtest.WaitFor(t, 15*time.Second, "new certificate served", func() bool {
		c := tlsClient(t, p, "api.example.com", false)
		r, err := c.Get("https://" + g.Addr + "/")
		if err != nil {
			return false
		}
		io.ReadAll(r.Body)
		r.Body.Close()
		return r.TLS.PeerCertificates[0].SerialNumber.Cmp(serial) != 0
	})
	// The connection opened before the rotation still serves requests.
	resp, err = old.Get("https://" + g.Addr + "/again")
	if err != nil {
		t.Fatalf("old connection broke: %v", err)
	}
	resp.Body.Close()
	if resp.TLS.PeerCertificates[0].SerialNumber.Cmp(serial) != 0 {
		t.Fatal("the old client reconnected instead of reusing its connection")
	}
}
