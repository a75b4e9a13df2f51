package listener

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
)

// testCA issues certificates for tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rampart test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue writes a leaf certificate and key for names into dir and returns
// their paths.
func (ca *testCA) issue(t testing.TB, dir, file string, client bool, names ...string) (string, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	cp, kp := filepath.Join(dir, file+".pem"), filepath.Join(dir, file+"-key.pem")
	os.WriteFile(cp, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(kp, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return cp, kp
}

// handshake dials a TLS server running cfg and returns the certificate it
// presented, or the handshake error.
func handshake(t *testing.T, cfg *tls.Config, client *tls.Config) (*x509.Certificate, error) {
	t.Helper()
	st, err := dialTLS(t, cfg, client)
	if err != nil {
		return nil, err
	}
	return st.PeerCertificates[0], nil
}

// dialTLS makes one TLS connection to a server running cfg, reads a byte
// (TLS 1.3 reports client-certificate refusals, and delivers session
// tickets, after the handshake) and returns the client's connection state.
func dialTLS(t testing.TB, cfg *tls.Config, client *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if err := c.(*tls.Conn).Handshake(); err == nil {
			c.Write([]byte("x"))
			c.Read(make([]byte, 1))
		}
	}()
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), client)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err != nil {
		return tls.ConnectionState{}, err
	}
	return conn.ConnectionState(), nil
}

func TestCertsSNIAndClientAuth(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	apiCert, apiKey := ca.issue(t, dir, "api", false, "api.example.com")
	wildCert, wildKey := ca.issue(t, dir, "wild", false, "*.example.org")
	clientCert, clientKey := ca.issue(t, dir, "client", true, "client-1")
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, ca.pem, 0o600)
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	goodClient, _ := tls.LoadX509KeyPair(clientCert, clientKey)

	tests := []struct {
		name       string
		mode       string
		sni        string
		clientCert bool
		wantCN     string
		wantErr    bool
	}{
		{"exact SNI", "none", "api.example.com", false, "api.example.com", false},
		{"wildcard SNI", "none", "x.example.org", false, "*.example.org", false},
		{"wildcard covers one label only", "none", "a.b.example.org", false, "api.example.com", true},
		{"unknown SNI gets the first certificate", "none", "other.test", false, "api.example.com", true},
		{"mTLS require with a client certificate", "require", "api.example.com", true, "api.example.com", false},
		{"mTLS require without a client certificate", "require", "api.example.com", false, "", true},
		{"mTLS request without a client certificate", "request", "api.example.com", false, "api.example.com", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.ListenerTLS{
				Certificates: []config.Certificate{{CertFile: apiCert, KeyFile: apiKey}, {CertFile: wildCert, KeyFile: wildKey}},
				ClientAuth:   config.ClientAuth{Mode: tc.mode},
			}
			if tc.mode != "none" {
				cfg.ClientAuth.CAFile = caFile
			}
			certs, err := LoadCerts(cfg)
			if err != nil {
				t.Fatal(err)
			}
			sc, err := certs.Config()
			if err != nil {
				t.Fatal(err)
			}
			cc := &tls.Config{ServerName: tc.sni, RootCAs: roots}
			if tc.clientCert {
				cc.Certificates = []tls.Certificate{goodClient}
			}
			got, err := handshake(t, sc, cc)
			if tc.wantErr {
				// A certificate that does not cover the name fails the
				// client's verification: proof of which one was served.
				if err == nil {
					t.Fatalf("handshake succeeded with %q, want failure", got.Subject.CommonName)
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			if got.Subject.CommonName != tc.wantCN {
				t.Fatalf("served %q, want %q", got.Subject.CommonName, tc.wantCN)
			}
		})
	}
}

func TestCertsReload(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	cp, kp := ca.issue(t, dir, "srv", false, "one.example.com")
	certs, err := LoadCerts(config.ListenerTLS{Certificates: []config.Certificate{{CertFile: cp, KeyFile: kp}}})
	if err != nil {
		t.Fatal(err)
	}
	sc, _ := certs.Config()
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	if _, err := handshake(t, sc, &tls.Config{ServerName: "one.example.com", RootCAs: roots}); err != nil {
		t.Fatal(err)
	}
	// Rotate the files in place to a certificate for another name.
	ca.issue(t, dir, "srv", false, "two.example.com")
	if err := certs.Reload(); err != nil {
		t.Fatal(err)
	}
	got, err := handshake(t, sc, &tls.Config{ServerName: "two.example.com", RootCAs: roots})
	if err != nil || got.Subject.CommonName != "two.example.com" {
		t.Fatalf("after reload got %v, %v", got, err)
	}
	// A broken file keeps the current set.
	os.WriteFile(cp, []byte("garbage"), 0o600)
	if err := certs.Reload(); err == nil {
		t.Fatal("reload of a broken certificate succeeded")
	}
	if _, err := handshake(t, sc, &tls.Config{ServerName: "two.example.com", RootCAs: roots}); err != nil {
		t.Fatalf("broken reload replaced the working set: %v", err)
	}
}

// panicOnce is a slog handler that records what it handles and panics the
// first time it handles a record whose message is msg.
type panicOnce struct {
	msg      string
	mu       sync.Mutex
	panicked bool
	records  []slog.Record
}

func (h *panicOnce) Enabled(context.Context, slog.Level) bool { return true }
func (h *panicOnce) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *panicOnce) WithGroup(string) slog.Handler            { return h }
func (h *panicOnce) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r)
	if r.Message == h.msg && !h.panicked {
		h.panicked = true
		panic("boom")
	}
	return nil
}

// find returns the first record with message msg.
func (h *panicOnce) find(msg string) (slog.Record, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.records {
		if r.Message == msg {
			return r, true
		}
	}
	return slog.Record{}, false
}

// count returns how many records have message msg.
func (h *panicOnce) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.records {
		if r.Message == msg {
			n++
		}
	}
	return n
}

// TestCertWatchRecoversPanic checks that a panic during a certificate
// reload is logged at Error with the panic value and that the watcher keeps
// going: the next rotation is still picked up.
func TestCertWatchRecoversPanic(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	cp, kp := ca.issue(t, dir, "srv", false, "one.example.com")
	certs, err := LoadCerts(config.ListenerTLS{Certificates: []config.Certificate{{CertFile: cp, KeyFile: kp}}})
	if err != nil {
		t.Fatal(err)
	}
	h := &panicOnce{msg: "certificates reloaded"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); certs.Watch(ctx, 10*time.Millisecond, slog.New(h)) }()
	defer func() { cancel(); <-done }()
	served := func() string { return certs.set.Load().certs[0].Leaf.Subject.CommonName }
	wait := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}

	// The first reload's log line panics.
	ca.issue(t, dir, "srv", false, "two.example.com")
	issued := time.Now()
	wait("the panic to be logged", func() bool {
		_, ok := h.find("certificate reload panicked; the current certificates stay in use")
		if !ok && time.Since(issued) > 200*time.Millisecond {
			// The watcher took its first stamp after the files changed
			// (its goroutine started late): change them again.
			ca.issue(t, dir, "srv", false, "two.example.com")
			issued = time.Now()
		}
		return ok
	})
	r, _ := h.find("certificate reload panicked; the current certificates stay in use")
	var val string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "panic" {
			val = a.Value.String()
		}
		return true
	})
	if r.Level != slog.LevelError || val != "boom" {
		t.Errorf("logged at %v with panic %q, want ERROR with \"boom\"", r.Level, val)
	}

	// The watcher survived: the next rotation is served.
	ca.issue(t, dir, "srv", false, "three.example.com")
	wait("the next rotation", func() bool {
		return served() == "three.example.com" && h.count("certificates reloaded") == 2
	})
	sc, _ := certs.Config()
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	if got, err := handshake(t, sc, &tls.Config{ServerName: "three.example.com", RootCAs: roots}); err != nil || got.Subject.CommonName != "three.example.com" {
		t.Fatalf("after the recovered panic got %v, %v", got, err)
	}
}
