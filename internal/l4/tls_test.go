package l4_test

import (
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
	"net"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a certificate for names and its key to files and
// returns their paths and a pool that trusts it.
func selfSigned(t *testing.T, names ...string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = writeFile(t, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyFile = writeFile(t, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})))
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certFile, keyFile, pool
}

// TLS is terminated in front of plain TCP targets, and the SNI name picks
// the upstream: exact names, then wildcards, else the listener's upstream.
func TestTLSTermination(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t, "db.example.com", "*.cache.example.com", "*.b.cache.example.com", "other.example.com")
	db, cache := newTargetWith(t, "db\n", nil), newTargetWith(t, "cache\n", nil)
	tlsKey := fmt.Sprintf("tls:\n  certificates: [{cert_file: %q, key_file: %q}]\n  sni_routes: {db.example.com: pg, \"*.cache.example.com\": cache}\nlimits: {read_header_timeout: 300ms}", certFile, keyFile)
	doc := tcpConfig([]string{db.addr()}, tlsKey, "") + fmt.Sprintf("  cache:\n    targets: [{address: %q}]\n", cache.addr())
	g := startGateway(t, doc)
	addr := g.addr("db")

	tests := []struct {
		sni, want string
	}{
		{"db.example.com", "db\n"},
		{"DB.Example.com", "db\n"},
		{"a.cache.example.com", "cache\n"},
		{"a.b.cache.example.com", "cache\n"},
		{"other.example.com", "db\n"}, // no route: the listener's upstream
	}
	for _, tt := range tests {
		t.Run(tt.sni, func(t *testing.T) {
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: ioTimeout}, "tcp", addr,
				&tls.Config{ServerName: tt.sni, RootCAs: pool, NextProtos: []string{"h2", "http/1.1"}})
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(ioTimeout))
			if p := c.ConnectionState().NegotiatedProtocol; p != "" {
				t.Errorf("ALPN negotiated %q; a tcp listener must not claim a protocol", p)
			}
			banner := make([]byte, len(tt.want))
			if _, err := io.ReadFull(c, banner); err != nil || string(banner) != tt.want {
				t.Fatalf("reached %q, %v; want the target that says %q", banner, err, tt.want)
			}
			// The target reads plaintext and echoes it back over TLS.
			if got, err := roundTrip(c, "over tls"); err != nil || got != "over tls" {
				t.Fatalf("echo: %q, %v", got, err)
			}
			// A close_notify reaches the target as EOF, which closes.
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
				t.Fatalf("after close_notify: %q, %v; want EOF", rest, err)
			}
		})
	}
	t.Run("not TLS", func(t *testing.T) {
		c := dial(t, addr)
		io.WriteString(c, "PING\r\n")
		if err := closed(c, ioTimeout); err != nil {
			t.Fatalf("plaintext to a TLS listener: %v", err)
		}
		c2 := dial(t, addr) // and one that sends nothing: read_header_timeout
		if err := closed(c2, ioTimeout); err != nil {
			t.Fatalf("silent client on a TLS listener: %v", err)
		}
		waitFor(t, "two tls_handshake results", func() bool {
			return g.metric("rampart_tcp_connections_total", `listener="db",upstream="pg",result="tls_handshake"`) == 2
		})
	})
}

// Without a listener upstream, a name that no sni_routes entry matches is
// closed after the handshake and counted as no_route.
func TestSNINoRoute(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t, "db.example.com", "stray.example.com")
	db := newTargetWith(t, "db\n", nil)
	doc := strings.Replace(tcpConfig([]string{db.addr()}, fmt.Sprintf("tls:\n  certificates: [{cert_file: %q, key_file: %q}]\n  sni_routes: {db.example.com: pg}", certFile, keyFile), ""),
		"    upstream: pg\n", "", 1)
	g := startGateway(t, doc)
	for _, sni := range []string{"stray.example.com", ""} {
		cfg := &tls.Config{ServerName: sni, RootCAs: pool}
		if sni == "" {
			cfg = &tls.Config{InsecureSkipVerify: true} // an IP address: no SNI
		}
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: ioTimeout}, "tcp", g.addr("db"), cfg)
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		if err := closed(c, ioTimeout); err != nil {
			t.Errorf("SNI %q without a route: %v", sni, err)
		}
		c.Close()
	}
	waitFor(t, "two no_route results", func() bool {
		return g.metric("rampart_tcp_connections_total", `listener="db",upstream="",result="no_route"`) == 2
	})
	if n := db.accepted.Load(); n != 0 {
		t.Errorf("the target got %d connections, want none", n)
	}
}

// An upstream with tls gets TLS from the proxy: the client speaks plain
// TCP, the target TLS.
func TestTLSToTarget(t *testing.T) {
	certFile, keyFile, _ := selfSigned(t, "target.internal")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(ioTimeout))
				io.Copy(c, c)
			}()
		}
	}()
	g := startGateway(t, tcpConfig([]string{ln.Addr().String()}, "", fmt.Sprintf("tls: {server_name: target.internal, ca_file: %q}", certFile)))
	c := dial(t, g.addr("db"))
	if got, err := roundTrip(c, "plain here, TLS there"); err != nil {
		t.Fatalf("echo over upstream TLS: %q, %v", got, err)
	}
}
