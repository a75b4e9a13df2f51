package grafana

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
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/redis/redistest"
	"github.com/rampart-gw/rampart/test/gwtest"
)

// gatewayConfig exercises everything the dashboard shows: two listeners
// (one TLS), routes with a retry, a failure-tripped circuit breaker, an
// upstream with an active health check and a dead target, a rate limit in
// Redis (which the traffic kills, so the store errors too), a WAF in block
// and in detect mode. %[1]s.. are filled by startGateway.
const gatewayConfig = `listeners:
  - name: public
    address: "127.0.0.1:0"
  - name: secure
    address: "127.0.0.1:0"
    tls:
      certificates: [{cert_file: %[1]q, key_file: %[2]q}]
  - name: tight
    address: "127.0.0.1:0"
    limits: {max_connections: 1}
admin:
  address: "127.0.0.1:0"
drain_timeout: 1s
observability:
  access_log: {path: "off"}
cluster:
  redis: {address: %[3]q, timeout: 50ms, on_failure: local}
upstreams:
  app:
    targets:
      - {address: %[4]q}
      - {address: %[5]q}   # nothing listens: the health check marks it unhealthy
    health_check:
      active: {path: /healthz, interval: 100ms, timeout: 200ms, unhealthy_threshold: 1}
  flaky:
    targets:
      - {address: %[6]q}   # always 503
    health_check:
      passive: {consecutive_5xx: 2, base_ejection_time: 5m}
    circuit_breaker:
      trip: {consecutive_failures: 2, min_requests: 1000, open_for: 5m}
policies:
  limit:
    type: rate_limit
    key: route
    rate: 1/m
    burst: 3
    store: redis
  waf-block: {type: waf}
  waf-detect: {type: waf, mode: detect}
routes:
  - name: api
    match: {path: {prefix: /api/}}
    upstream: app
    retry: {attempts: 2, on: [503], backoff: {base: 0s, max: 0s}}
  - name: flaky
    match: {path: {prefix: /flaky/}}
    upstream: flaky
    retry: {attempts: 2, on: [503], backoff: {base: 0s, max: 0s}}
  - name: limited
    match: {path: {prefix: /limited/}}
    upstream: app
    policies: [limit]
  - name: waf
    match: {path: {prefix: /waf/}}
    upstream: app
    policies: [waf-block]
  - name: watched
    match: {path: {prefix: /watched/}}
    upstream: app
    policies: [waf-detect]
`

// testGateway is a running gateway with its Redis and backends.
type testGateway struct {
	*gwtest.Gateway
	redis  *redistest.Server
	secure string // host:port of the TLS listener
	tight  string // host:port of the listener with max_connections 1
	client *http.Client
	doc    string
}

// startGateway starts Redis, the backends and the gateway.
func startGateway(t *testing.T) *testGateway {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile := selfSigned(t, dir)
	rd := redistest.Start(t)
	var retried atomic.Int64
	ok := gwtest.Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/api/retry" && retried.Add(1)%2 == 1 {
			http.Error(w, "try again", http.StatusServiceUnavailable) // every other attempt
			return
		}
		w.Write([]byte("ok"))
	}))
	flaky := gwtest.Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	doc := fmt.Sprintf(gatewayConfig, certFile, keyFile, rd.Addr(), ok, gwtest.FreeAddr(t), flaky)
	g := &testGateway{Gateway: gwtest.Start(t, doc), redis: rd, doc: doc}
	g.secure = g.App.ListenerAddr("secure")
	g.tight = g.App.ListenerAddr("tight")
	g.client = gwtest.Client(t, 5*time.Second)
	return g
}

// traffic sends requests that give every panel of the dashboard data:
// 200s, 404s (no route), upstream 503s with a retry until the target is
// ejected and the circuit opens, rate-limit refusals, WAF blocks and
// detections, a guard refusal, TLS handshake errors; then one good and one
// failed reload, and rate-limit decisions while Redis is down. The
// requests go in two rounds with between called in between (nil: none):
// the first round creates the series, so that the second one is an
// increase a rate over a window can see (Prometheus does not count a
// series' first sample as an increase).
func (g *testGateway) traffic(t *testing.T, between func()) {
	t.Helper()
	get := func(url string, want int) {
		t.Helper()
		resp, err := g.client.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if want != 0 && resp.StatusCode != want {
			t.Fatalf("GET %s: %d, want %d", url, resp.StatusCode, want)
		}
	}
	gwtest.WaitFor(t, 5*time.Second, "the dead target marked unhealthy", func() bool {
		return g.metricValue(t, "rampart_upstream_target_healthy{", `upstream="app"`) == 1
	})
	for round := range 2 {
		if round == 1 && between != nil {
			between()
		}
		for range 20 {
			get(g.URL+"/api/x", 200)
		}
		get(g.URL+"/api/retry", 200) // 503, retried
		get(g.URL+"/nowhere", 404)
		// Two failed attempts (one retried request) eject the target and
		// open the circuit; then 503 circuit_open.
		for range 3 {
			get(g.URL+"/flaky/x", 503)
		}
		// Burst 3 in Redis (refilled at 1/m): three allowed, then refused.
		for i := range 5 {
			want := 429
			if round == 0 && i < 3 {
				want = 200
			}
			get(g.URL+"/limited/x", want)
		}
		get(g.URL+"/waf/?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E", 403)
		get(g.URL+"/watched/?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E", 200)
		g.guardRefusal(t)
		g.tlsTraffic(t)
		g.rejectedConnection(t)
		runtime.GC() // the gateway runs in this process: a GC pause it reports
	}
	// One reload that applies and one that is refused.
	g.Reload(t, g.doc)
	g.Write(t, g.doc+"bogus_key: 1\n")
	if err := g.App.Reload(); err == nil {
		t.Fatal("a config with an unknown key was applied")
	}
	g.Write(t, g.doc)
	// Redis goes away: the rate limit decides locally and counts the errors.
	g.redis.Kill()
	for range 3 {
		get(g.URL+"/limited/x", 0)
	}
	gwtest.WaitFor(t, 5*time.Second, "rampart_redis_up 0", func() bool {
		return g.metricValue(t, "rampart_redis_up ") == 0 && g.metricValue(t, "rampart_rate_limit_store_errors_total{") > 0
	})
	// And comes back.
	g.redis.Restart()
	gwtest.WaitFor(t, 10*time.Second, "rampart_redis_up 1", func() bool {
		get(g.URL+"/limited/x", 0)
		return g.metricValue(t, "rampart_redis_up ") == 1
	})
}

// rejectedConnection opens two connections to the listener with
// max_connections 1: the second is closed at accept.
func (g *testGateway) rejectedConnection(t *testing.T) {
	t.Helper()
	gwtest.WaitFor(t, 5*time.Second, "no connection open on the tight listener", func() bool {
		return g.metricValue(t, "rampart_active_connections{", `listener="tight"`) == 0
	})
	before := g.metricValue(t, "rampart_rejected_connections_total{", `listener="tight"`)
	first, err := net.DialTimeout("tcp", g.tight, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	gwtest.WaitFor(t, 5*time.Second, "the first connection counted", func() bool {
		return g.metricValue(t, "rampart_active_connections{", `listener="tight"`) == 1
	})
	// The refusal may come as a reset of the connect itself.
	if second, err := net.DialTimeout("tcp", g.tight, 2*time.Second); err == nil {
		defer second.Close()
	}
	gwtest.WaitFor(t, 5*time.Second, "a rejected connection counted", func() bool {
		return g.metricValue(t, "rampart_rejected_connections_total{", `listener="tight"`) > before
	})
}

// guardRefusal sends a request with both Content-Length and
// Transfer-Encoding, which the HTTP/1.1 framing guard refuses.
func (g *testGateway) guardRefusal(t *testing.T) {
	t.Helper()
	c, err := net.DialTimeout("tcp", g.Addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "POST /api/x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 400") {
		t.Fatalf("guard: %q %v, want a 400", line, err)
	}
}

// tlsTraffic sends one request over TLS and one plaintext request to the
// TLS listener (a not_tls handshake error).
func (g *testGateway) tlsTraffic(t *testing.T) {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, Proxy: nil}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + g.secure + "/api/x")
	if err != nil {
		t.Fatalf("TLS request: %v", err)
	}
	resp.Body.Close()
	c, err := net.DialTimeout("tcp", g.secure, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	before := g.metricValue(t, "rampart_tls_handshake_errors_total{")
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	io.Copy(io.Discard, c)
	gwtest.WaitFor(t, 5*time.Second, "a TLS handshake error counted", func() bool {
		return g.metricValue(t, "rampart_tls_handshake_errors_total{") > before
	})
}

// scrape returns the admin API's /metrics text.
func (g *testGateway) scrape(t *testing.T) string {
	t.Helper()
	resp, err := g.client.Get(g.Admin + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scrape: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

// metricValue sums the samples whose line starts with prefix and holds
// every one of contains.
func (g *testGateway) metricValue(t *testing.T, prefix string, contains ...string) float64 {
	t.Helper()
	var sum float64
next:
	for _, line := range strings.Split(g.scrape(t), "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		for _, c := range contains {
			if !strings.Contains(line, c) {
				continue next
			}
		}
		var v float64
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			fmt.Sscan(line[i+1:], &v)
		}
		sum += v
	}
	return sum
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
