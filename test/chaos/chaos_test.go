package chaos

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// toxi runs toxiproxy's server in-process behind its HTTP API on a free
// port and returns a client for it.
func toxi(t *testing.T) *toxiclient.Client {
	t.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	r := mux.NewRouter()
	r.HandleFunc("/reset", srv.ResetState).Methods("POST")
	r.HandleFunc("/proxies", srv.ProxyIndex).Methods("GET")
	r.HandleFunc("/proxies", srv.ProxyCreate).Methods("POST")
	r.HandleFunc("/proxies/{proxy}", srv.ProxyShow).Methods("GET")
	r.HandleFunc("/proxies/{proxy}", srv.ProxyUpdate).Methods("POST")
	r.HandleFunc("/proxies/{proxy}", srv.ProxyDelete).Methods("DELETE")
	r.HandleFunc("/proxies/{proxy}/toxics", srv.ToxicIndex).Methods("GET")
	r.HandleFunc("/proxies/{proxy}/toxics", srv.ToxicCreate).Methods("POST")
	r.HandleFunc("/proxies/{proxy}/toxics/{toxic}", srv.ToxicShow).Methods("GET")
	r.HandleFunc("/proxies/{proxy}/toxics/{toxic}", srv.ToxicUpdate).Methods("POST")
	r.HandleFunc("/proxies/{proxy}/toxics/{toxic}", srv.ToxicDelete).Methods("DELETE")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() {
		hs.Close()
		for _, p := range srv.Collection.Proxies() {
			p.Stop()
		}
	})
	return toxiclient.NewClient("http://" + ln.Addr().String())
}

// upstream serves /ok, /big (256 KiB with Content-Length) and /stream
// (256 KiB chunked, flushed in pieces).
func upstream(t *testing.T) string {
	t.Helper()
	big := strings.Repeat("x", 256<<10)
	mx := http.NewServeMux()
	mx.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mx.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(big)))
		io.WriteString(w, big)
	})
	mx.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < len(big); i += 16 << 10 {
			io.WriteString(w, big[i:i+16<<10])
			http.NewResponseController(w).Flush()
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: mx, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return ln.Addr().String()
}

// gateway runs the gateway in-process with one route to target.
func gateway(t *testing.T, target string) string {
	t.Helper()
	y := fmt.Sprintf(`listeners:
  - name: public
    address: "127.0.0.1:0"
admin:
  address: "off"
drain_timeout: 1s
upstreams:
  up:
    targets: [{address: %q}]
    connect_timeout: 500ms
routes:
  - name: all
    match: {path: {prefix: /}}
    upstream: up
    timeout: 1s
observability:
  access_log: {path: "off"}
`, target)
	return gwtest.Start(t, y).URL
}

type result struct {
	status int
	body   int
	err    error // from the request or the body read
	took   time.Duration
}

// fetch makes one request with a hard client bound, so a hung gateway fails
// the test instead of hanging it.
func fetch(t *testing.T, url string) result {
	t.Helper()
	c := &http.Client{Timeout: 8 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	begin := time.Now()
	resp, err := c.Get(url)
	if err != nil {
		return result{err: err, took: time.Since(begin)}
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	return result{status: resp.StatusCode, body: int(n), err: err, took: time.Since(begin)}
}

func setup(t *testing.T) (*toxiclient.Proxy, string) {
	tc := toxi(t)
	p, err := tc.CreateProxy("up", "127.0.0.1:0", upstream(t))
	if err != nil {
		t.Fatal(err)
	}
	return p, gateway(t, p.Listen)
}

func TestLatency(t *testing.T) {
	p, gw := setup(t)
	if _, err := p.AddToxic("lat", "latency", "downstream", 1, toxiclient.Attributes{"latency": 300}); err != nil {
		t.Fatal(err)
	}
	r := fetch(t, gw+"/ok")
	if r.err != nil || r.status != 200 || r.took < 300*time.Millisecond {
		t.Fatalf("got %+v; want 200 after at least 300ms", r)
	}
}

func TestRouteTimeoutHonoured(t *testing.T) {
	p, gw := setup(t)
	if _, err := p.AddToxic("lat", "latency", "downstream", 1, toxiclient.Attributes{"latency": 3000}); err != nil {
		t.Fatal(err)
	}
	r := fetch(t, gw+"/ok")
	if r.status != http.StatusGatewayTimeout || r.took > 2500*time.Millisecond {
		t.Fatalf("got %+v; want 504 within the 1s route timeout (plus slack)", r)
	}
}

func TestBandwidth(t *testing.T) {
	p, gw := setup(t)
	// 256 KiB at 512 KB/s: about half a second, after the headers came.
	if _, err := p.AddToxic("bw", "bandwidth", "downstream", 1, toxiclient.Attributes{"rate": 512}); err != nil {
		t.Fatal(err)
	}
	r := fetch(t, gw+"/big")
	if r.err != nil || r.status != 200 || r.body != 256<<10 {
		t.Fatalf("got %+v; want the whole body", r)
	}
}

func TestReset(t *testing.T) {
	p, gw := setup(t)
	if _, err := p.AddToxic("rst", "reset_peer", "downstream", 1, toxiclient.Attributes{"timeout": 0}); err != nil {
		t.Fatal(err)
	}
	r := fetch(t, gw+"/ok")
	if r.status != http.StatusBadGateway || r.took > 2*time.Second {
		t.Fatalf("got %+v; want a prompt 502", r)
	}
}

func TestBlackhole(t *testing.T) {
	p, gw := setup(t)
	if _, err := p.AddToxic("hole", "timeout", "downstream", 1, toxiclient.Attributes{"timeout": 0}); err != nil {
		t.Fatal(err)
	}
	r := fetch(t, gw+"/ok")
	if r.status != http.StatusGatewayTimeout || r.took > 2500*time.Millisecond {
		t.Fatalf("got %+v; want 504 within the route timeout", r)
	}
}

// TestTruncatedBody cuts the upstream connection part way through the
// response body: the client must see a broken response (unexpected EOF or
// reset), never a complete-looking short 200.
func TestTruncatedBody(t *testing.T) {
	for _, path := range []string{"/big", "/stream"} {
		t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) {
			p, gw := setup(t)
			if _, err := p.AddToxic("cut", "limit_data", "downstream", 1, toxiclient.Attributes{"bytes": 64 << 10}); err != nil {
				t.Fatal(err)
			}
			r := fetch(t, gw+path)
			if r.took > 5*time.Second {
				t.Fatalf("client hung for %s", r.took)
			}
			if r.err == nil && r.status == 200 {
				t.Fatalf("silently short 200: %d of %d bytes and a clean end", r.body, 256<<10)
			}
			if r.err != nil && !errors.Is(r.err, io.ErrUnexpectedEOF) && !strings.Contains(r.err.Error(), "reset") &&
				!strings.Contains(r.err.Error(), "EOF") {
				t.Logf("client error: %v", r.err)
			}
		})
	}
}
