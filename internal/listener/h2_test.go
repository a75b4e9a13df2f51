package listener

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/rampart-gw/rampart/internal/config"
)

// TestH2ServerRuns checks that the server a listener reports
// (HTTP2Server) is the one that runs: internal/listener/h2 for
// HTTP2Rampart on the fast path, net/http's otherwise (TestHTTP2ServerChoice
// covers the names).
func TestH2ServerRuns(t *testing.T) {
	for _, tc := range []struct {
		name    string
		field   string
		netHTTP bool
		want    string
	}{
		{name: "default", want: DefaultHTTP2Server},
		{name: "rampart", field: HTTP2Rampart, want: HTTP2Rampart},
		{name: "nethttp", field: HTTP2NetHTTP, want: HTTP2NetHTTP},
		{name: "no-fast-path", field: HTTP2Rampart, netHTTP: true, want: HTTP2NetHTTP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("RAMPART_HTTP2_SERVER", "")
			l, err := Listen(Config{Address: "127.0.0.1:0", HTTP2Server: tc.field, NetHTTP: tc.netHTTP}, http.NotFoundHandler(), Deps{})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if got := l.HTTP2Server(); got != tc.want {
				t.Errorf("HTTP2Server %q, want %q", got, tc.want)
			}
			if own := l.h2 != nil; own != (tc.want == HTTP2Rampart) {
				t.Errorf("own HTTP/2 server running %v, want %v", own, tc.want == HTTP2Rampart)
			}
		})
	}
}

// TestH2Servers serves h2c (prior knowledge) and h2 over TLS (ALPN) with
// each HTTP/2 server: the handler sees HTTP/2 with the TLS state, request
// bodies and streamed answers pass, and a shutdown lets the request in
// flight finish.
func TestH2Servers(t *testing.T) {
	noLeaks(t)
	ca := newTestCA(t)
	cert, key := ca.issue(t, t.TempDir(), "server", false, "localhost")
	tlsCfg := &config.ListenerTLS{Certificates: []config.Certificate{{CertFile: cert, KeyFile: key}}}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tlsSeen := r.TLS != nil || TLSState(r.Context()) != nil
		w.Header().Set("X-Proto", r.Proto)
		w.Header().Set("X-TLS", map[bool]string{true: "yes", false: "no"}[tlsSeen])
		switch r.URL.Path {
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			w.Write(b)
		case "/stream":
			for i := range 3 {
				io.WriteString(w, strings.Repeat(string(rune('a'+i)), 10))
				http.NewResponseController(w).Flush()
			}
		case "/slow":
			time.Sleep(300 * time.Millisecond)
			io.WriteString(w, "slow")
		default:
			io.WriteString(w, r.Method+" "+r.URL.Path)
		}
	})
	for _, server := range []string{HTTP2NetHTTP, HTTP2Rampart} {
		for _, useTLS := range []bool{false, true} {
			name := map[string]string{HTTP2NetHTTP: "nethttp", HTTP2Rampart: "rampart"}[server]
			if useTLS {
				name += "/tls"
			} else {
				name += "/h2c"
			}
			t.Run(name, func(t *testing.T) {
				cfg := Config{HTTP2Server: server}
				if useTLS {
					cfg.TLS = tlsCfg
				}
				l, err := Listen(cfg.withAddr(), h, Deps{})
				if err != nil {
					t.Fatal(err)
				}
				if (l.h2 != nil) != (server == HTTP2Rampart) {
					t.Fatalf("HTTP2Server=%s: own server %v", server, l.h2 != nil)
				}
				served := make(chan error, 1)
				go func() { served <- l.Serve() }()
				tr := &http2.Transport{}
				if useTLS {
					tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}
				} else {
					tr.AllowHTTP = true
					tr.DialTLSContext = func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
						var d net.Dialer
						return d.DialContext(ctx, network, addr)
					}
				}
				defer tr.CloseIdleConnections()
				client := &http.Client{Transport: tr, Timeout: ioTimeout}
				scheme := "http"
				if useTLS {
					scheme = "https"
				}
				base := scheme + "://" + l.Addr().String()
				do := func(method, path, body string) (*http.Response, string) {
					t.Helper()
					req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
					resp, err := client.Do(req)
					if err != nil {
						t.Fatalf("%s %s: %v", method, path, err)
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					return resp, string(b)
				}
				resp, body := do("GET", "/x", "")
				wantTLS := map[bool]string{true: "yes", false: "no"}[useTLS]
				if resp.ProtoMajor != 2 || resp.Header.Get("X-Proto") != "HTTP/2.0" || resp.Header.Get("X-TLS") != wantTLS || body != "GET /x" {
					t.Errorf("GET: %s %v %q", resp.Proto, resp.Header, body)
				}
				big := strings.Repeat("0123456789", 30000)
				if _, body := do("POST", "/echo", big); body != big {
					t.Errorf("echo: %d bytes back of %d", len(body), len(big))
				}
				if _, body := do("GET", "/stream", ""); body != strings.Repeat("a", 10)+strings.Repeat("b", 10)+strings.Repeat("c", 10) {
					t.Errorf("stream: %q", body)
				}
				// A request in flight finishes across a shutdown.
				slow := make(chan string, 1)
				go func() {
					resp, err := client.Get(base + "/slow")
					if err != nil {
						slow <- err.Error()
						return
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					slow <- string(b)
				}()
				time.Sleep(100 * time.Millisecond)
				ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
				defer cancel()
				if err := l.Shutdown(ctx); err != nil {
					t.Errorf("shutdown: %v", err)
				}
				if got := <-slow; got != "slow" {
					t.Errorf("in flight across shutdown: %q", got)
				}
				if err := <-served; err != nil {
					t.Errorf("serve: %v", err)
				}
			})
		}
	}
}

func (c Config) withAddr() Config {
	c.Address, c.Name = "127.0.0.1:0", "test"
	return c
}
