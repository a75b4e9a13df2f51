package listener

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/telemetry"
)

// listenTLS starts a TLS listener with a certificate for api.test signed
// by ca, counting into m and logging into al, stopped when the test ends.
func listenTLS(t *testing.T, netHTTP bool, ca *testCA, tc config.ListenerTLS, lim config.Limits, m *telemetry.Metrics, al *telemetry.AccessLog) *Listener {
	t.Helper()
	dir := t.TempDir()
	cp, kp := ca.issue(t, dir, "api", false, "api.test")
	tc.Certificates = []config.Certificate{{CertFile: cp, KeyFile: kp}}
	l, err := Listen(Config{Name: "tls", Address: "127.0.0.1:0", TLS: &tc, NetHTTP: netHTTP, Limits: lim},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		Deps{Metrics: m, AccessLog: func() *telemetry.AccessLog { return al }})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		l.Shutdown(ctx)
		<-done
	})
	return l
}

// TestHandshakeErrorsByReason makes real TLS handshakes fail in each way a
// client can make them fail and checks each is counted once in
// rampart_tls_handshake_errors_total under its reason, on both HTTP/1.1
// servers.
func TestHandshakeErrorsByReason(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	otherRoots := x509.NewCertPool()
	otherRoots.AddCert(other.cert)
	clientDir := t.TempDir()
	caFile := filepath.Join(clientDir, "ca.pem")
	if err := os.WriteFile(caFile, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	tlsDial := func(client *tls.Config) func(addr string) error {
		return func(addr string) error {
			d := &net.Dialer{Timeout: ioTimeout}
			c, err := tls.DialWithDialer(d, "tcp", addr, client)
			if err != nil {
				return err
			}
			defer c.Close()
			// TLS 1.3 reports a refused client certificate after the
			// handshake, on the first read.
			c.SetDeadline(time.Now().Add(ioTimeout))
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: api.test\r\n\r\n")
			_, err = c.Read(make([]byte, 1))
			return err
		}
	}
	raw := func(send string, wait bool) func(addr string) error {
		return func(addr string) error {
			c, err := net.DialTimeout("tcp", addr, ioTimeout)
			if err != nil {
				return err
			}
			defer c.Close()
			io.WriteString(c, send)
			if wait {
				c.SetDeadline(time.Now().Add(ioTimeout))
				io.Copy(io.Discard, c) // until the server gives up
			}
			return nil
		}
	}
	// The first bytes of a ClientHello record, cut off.
	partialHello := "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
	cases := []struct {
		name    string
		tls     config.ListenerTLS
		dial    func(addr string) error
		reason  string
		refused bool // the client sees an error too
	}{
		{"unknown CA", config.ListenerTLS{}, tlsDial(&tls.Config{RootCAs: otherRoots, ServerName: "api.test"}), HandshakeClientAlert, true},
		{"no certificate for the SNI name", config.ListenerTLS{}, tlsDial(&tls.Config{RootCAs: roots, ServerName: "other.test"}), HandshakeClientAlert, true},
		{"version too old", config.ListenerTLS{MinVersion: "1.3"},
			tlsDial(&tls.Config{RootCAs: roots, ServerName: "api.test", MaxVersion: tls.VersionTLS12}), HandshakeVersion, true},
		{"no cipher in common", config.ListenerTLS{},
			tlsDial(&tls.Config{RootCAs: roots, ServerName: "api.test", MaxVersion: tls.VersionTLS12,
				CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}}), HandshakeCipher, true},
		{"no client certificate", config.ListenerTLS{ClientAuth: config.ClientAuth{Mode: "require", CAFile: caFile}},
			tlsDial(&tls.Config{RootCAs: roots, ServerName: "api.test"}), HandshakeClientCert, true},
		{"plain HTTP", config.ListenerTLS{}, raw("GET / HTTP/1.1\r\nHost: api.test\r\n\r\n", true), HandshakeNotTLS, false},
		{"closed mid-hello", config.ListenerTLS{}, raw(partialHello, false), HandshakeClosed, false},
		{"silent client", config.ListenerTLS{}, raw(partialHello, true), HandshakeTimeout, false},
	}
	for _, server := range []string{"fast", "net/http"} {
		for _, tc := range cases {
			t.Run(server+"/"+tc.name, func(t *testing.T) {
				m := telemetry.NewMetrics()
				l := listenTLS(t, server == "net/http", ca, tc.tls, config.Limits{ReadHeaderTimeout: config.Duration(300 * time.Millisecond)}, m, nil)
				err := tc.dial(l.Addr().String())
				if tc.refused && err == nil {
					t.Fatal("the handshake succeeded")
				}
				counter := m.TLSHandshakeErrors.WithLabelValues("tls", tc.reason)
				deadline := time.Now().Add(ioTimeout)
				for testutil.ToFloat64(counter) == 0 && time.Now().Before(deadline) {
					time.Sleep(5 * time.Millisecond)
				}
				time.Sleep(20 * time.Millisecond) // a second count would show now
				if n := testutil.CollectAndCount(m.TLSHandshakeErrors); n != 1 || testutil.ToFloat64(counter) != 1 {
					var b bytes.Buffer
					for _, r := range []string{HandshakeTimeout, HandshakeClosed, HandshakeNotTLS, HandshakeVersion, HandshakeCipher,
						HandshakeClientCert, HandshakeClientAlert, HandshakeOther} {
						if v := testutil.ToFloat64(m.TLSHandshakeErrors.WithLabelValues("tls", r)); v != 0 {
							fmt.Fprintf(&b, " %s=%v", r, v)
						}
					}
					t.Fatalf("counted%s; want %s=1 alone (client error: %v)", b.String(), tc.reason, err)
				}
			})
		}
	}
}

// TestRefusalLoggedWithTLS checks the access log line of a request the
// framing guard refuses on a TLS listener: refused_by guard, the reason,
// the request ID of the answer, the peer and the TLS version and SNI name.
func TestRefusalLoggedWithTLS(t *testing.T) {
	ca := newTestCA(t)
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	for _, server := range []string{"fast", "net/http"} {
		t.Run(server, func(t *testing.T) {
			var logs bytes.Buffer
			al := telemetry.NewAccessLog(&logs, nil)
			m := telemetry.NewMetrics()
			l := listenTLS(t, server == "net/http", ca, config.ListenerTLS{}, config.Limits{}, m, al)
			c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "api.test", NextProtos: []string{"http/1.1"}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(ioTimeout))
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 400 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if err := al.Close(); err != nil {
				t.Fatal(err)
			}
			var line map[string]any
			if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
				t.Fatalf("%v: %q", err, logs.String())
			}
			want := map[string]any{"refused_by": "guard", "status": float64(400), "code": "bad_request", "reason": "more than one Content-Length",
				"request_id": resp.Header.Get("X-Request-Id"), "client_ip": "127.0.0.1", "remote_addr": c.LocalAddr().String(),
				"tls_version": "TLS 1.3", "sni": "api.test", "method": "", "path": ""}
			for k, v := range want {
				if line[k] != v {
					t.Errorf("%s = %v, want %v", k, line[k], v)
				}
			}
			if got := testutil.ToFloat64(m.Refused.WithLabelValues("tls", "400", "bad_request")); got != 1 {
				t.Errorf("rampart_http_refused_total = %v, want 1", got)
			}
			if line["request_id"] == "" {
				t.Error("no request ID")
			}
		})
	}
}
