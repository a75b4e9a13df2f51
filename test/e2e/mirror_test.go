package e2e

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// shadow is a shadow upstream that records what it receives; delay, when
// set, is waited before answering, and reset hijacks and closes the
// connection instead of answering.
type shadow struct {
	mu    sync.Mutex
	got   []shadowSeen
	delay time.Duration
	reset bool
	code  int
}

type shadowSeen struct {
	method, path, host, fwdHost, requestID string
	body                                   []byte
}

func (s *shadow) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.got = append(s.got, shadowSeen{r.Method, r.URL.RequestURI(), r.Host, r.Header.Get("X-Forwarded-Host"), r.Header.Get("X-Request-Id"), b})
	delay, reset, code := s.delay, s.reset, s.code
	s.mu.Unlock()
	if reset {
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			c.Close()
		}
		return
	}
	time.Sleep(delay)
	if code == 0 {
		code = http.StatusTeapot
	}
	w.WriteHeader(code)
	io.WriteString(w, "shadow answer, discarded")
}

func (s *shadow) seen() []shadowSeen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// mirrorYAML is a gateway with route "m" sending to the echo upstream app
// and mirroring to the upstream shadow with the mirror settings given.
func mirrorYAML(appAddr, shadowAddr, mirror, route string) string {
	return listenerYAML("") + fmt.Sprintf(`upstreams:
  app: {targets: [{address: %q}]}
  shadow: {targets: [{address: %q}]}
routes:
  - name: m
    match: {path: {prefix: /}}
    upstream: app
    mirror: %s
%s`, appAddr, shadowAddr, mirror, route)
}

// metricValue returns the value of the series line starting with series
// (name and labels) in the gateway's /metrics, 0 when absent.
func metricValue(t *testing.T, g *gwtest.Gateway, series string) float64 {
	t.Helper()
	_, body := get(t, newClient(t), g.Admin+"/metrics")
	for _, l := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(l, series+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", l, err)
			}
			return v
		}
	}
	return 0
}

func mirrorSeries(result string) string {
	return `rampart_mirror_requests_total{result="` + result + `",route="m",upstream="shadow"}`
}

// TestMirrorCopiesEveryRequest: with percent 100 the shadow receives
// every request, with its method, path, query and body unchanged (fixed
// length, chunked, and buffered by request_buffering: on), "-shadow"
// appended to its Host, while the client gets the primary's answers.
func TestMirrorCopiesEveryRequest(t *testing.T) {
	for _, buffering := range []string{"auto", "on", "off"} {
		t.Run(buffering, func(t *testing.T) {
			sh := &shadow{}
			g := startGateway(t, mirrorYAML(echoUpstream(t, "app"), gwtest.Upstream(t, sh), "{upstream: shadow, percent: 100}",
				"    request_buffering: "+buffering+"\n"))
			c := newClient(t)
			const n = 30
			var bodies [][]byte
			for i := range n {
				body := make([]byte, 100+i*997)
				rand.Read(body)
				var rd io.Reader = bytes.NewReader(body)
				if i%2 == 1 {
					rd = io.MultiReader(rd) // no length: chunked
				}
				req := newRequest(t, http.MethodPost, fmt.Sprintf("%s/items/%d?q=%d", g.URL, i, i), rd)
				req.Host = "api.example.com"
				resp, b := do(t, c, req)
				s := decodeSeen(t, resp, b)
				if s.Name != "app" || s.BodyLen != len(body) {
					t.Fatalf("request %d: client got %+v, want the app's answer to %d bytes", i, s, len(body))
				}
				bodies = append(bodies, body)
			}
			resp, _ := get(t, c, g.URL+"/get")
			if resp.StatusCode != 200 {
				t.Fatalf("GET: %d", resp.StatusCode)
			}
			gwtest.WaitFor(t, 5*time.Second, "shadow copies", func() bool { return len(sh.seen()) == n+1 })
			got := sh.seen()
			byPath := map[string]shadowSeen{}
			for _, s := range got {
				byPath[s.path] = s
			}
			for i, body := range bodies {
				s, ok := byPath[fmt.Sprintf("/items/%d?q=%d", i, i)]
				if !ok {
					t.Fatalf("shadow lacks request %d; got %d copies", i, len(got))
				}
				if s.method != http.MethodPost || !bytes.Equal(s.body, body) {
					t.Errorf("copy %d: %s with %d bytes, want POST with the client's %d bytes", i, s.method, len(s.body), len(body))
				}
				if s.host != "api.example.com-shadow" || s.fwdHost != "api.example.com" {
					t.Errorf("copy %d: Host %q, X-Forwarded-Host %q; want api.example.com-shadow, api.example.com", i, s.host, s.fwdHost)
				}
				if s.requestID == "" {
					t.Errorf("copy %d has no request ID", i)
				}
			}
			if s := byPath["/get"]; s.method != http.MethodGet || len(s.body) != 0 {
				t.Errorf("GET copy: %+v", s)
			}
			gwtest.WaitFor(t, 5*time.Second, "sent counted", func() bool { return metricValue(t, g, mirrorSeries("sent")) == n+1 })
			if v := metricValue(t, g, `rampart_mirror_responses_total{code="418",route="m",upstream="shadow"}`); v != n+1 {
				t.Errorf("responses_total{code=418} = %v, want %d", v, n+1)
			}
		})
	}
}

// TestMirrorPercent: percent 50 copies about half of the requests, percent
// 0 none.
func TestMirrorPercent(t *testing.T) {
	for _, tc := range []struct {
		percent  string
		n        int
		min, max int
	}{
		{"50", 400, 140, 260},
		{"0", 50, 0, 0},
		{"2.5", 400, 1, 40},
	} {
		t.Run(tc.percent, func(t *testing.T) {
			sh := &shadow{}
			g := startGateway(t, mirrorYAML(echoUpstream(t, "app"), gwtest.Upstream(t, sh), "{upstream: shadow, percent: "+tc.percent+"}", ""))
			c := newClient(t)
			for i := range tc.n {
				resp, _ := get(t, c, fmt.Sprintf("%s/%d", g.URL, i))
				if resp.StatusCode != 200 {
					t.Fatalf("status %d", resp.StatusCode)
				}
			}
			// Every copy seen is answered and counted, and no more arrive.
			prev := -1
			gwtest.WaitFor(t, 5*time.Second, "copies answered", func() bool {
				n := len(sh.seen())
				settled := n == prev && int(metricValue(t, g, mirrorSeries("sent"))) == n
				prev = n
				if !settled {
					time.Sleep(50 * time.Millisecond)
				}
				return settled
			})
			if got := len(sh.seen()); got < tc.min || got > tc.max {
				t.Errorf("shadow got %d of %d requests at percent %s, want %d-%d", got, tc.n, tc.percent, tc.min, tc.max)
			}
		})
	}
}

// p99 returns the 99th percentile of d.
func p99(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)*99)/100-1]
}

// clientLatencies sends n GETs and returns their latencies, failing on any
// answer but the app's 200.
func clientLatencies(t *testing.T, g *gwtest.Gateway, n int) []time.Duration {
	t.Helper()
	c := newClient(t)
	out := make([]time.Duration, 0, n)
	for i := range n {
		start := time.Now()
		resp, b := get(t, c, fmt.Sprintf("%s/l/%d", g.URL, i))
		out = append(out, time.Since(start))
		if s := decodeSeen(t, resp, b); s.Name != "app" {
			t.Fatalf("answer from %q", s.Name)
		}
	}
	return out
}

// TestMirrorShadowNeverAffectsClients: a shadow that takes 2s, one that
// resets every connection, and one that is down leave the client's
// answers and latency as they are without a mirror (p99 compared). The
// slow shadow fills max_in_flight, and the copies over it are dropped and
// counted, not queued.
func TestMirrorShadowNeverAffectsClients(t *testing.T) {
	const n = 100
	app := echoUpstream(t, "app")
	base := startGateway(t, listenerYAML("")+fmt.Sprintf(`upstreams:
  app: {targets: [{address: %q}]}
routes:
  - {name: m, match: {path: {prefix: /}}, upstream: app}
`, app))
	clientLatencies(t, base, 20) // warm up
	without := p99(clientLatencies(t, base, n))

	down := gwtest.FreeAddr(t)
	for _, tc := range []struct {
		name   string
		shadow *shadow
	}{
		{"slow", &shadow{delay: 2 * time.Second}},
		{"reset", &shadow{reset: true}},
		{"down", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := down
			if tc.shadow != nil {
				addr = gwtest.Upstream(t, tc.shadow)
			}
			g := startGateway(t, mirrorYAML(app, addr, "{upstream: shadow, percent: 100, max_in_flight: 5}", ""))
			clientLatencies(t, g, 5)
			start := time.Now()
			lat := clientLatencies(t, g, n)
			total := time.Since(start)
			with := p99(lat)
			t.Logf("client p99 without a mirror %v, with a %s shadow %v (%d requests in %v)", without, tc.name, with, n, total)
			if with > without+100*time.Millisecond || with > 250*time.Millisecond {
				t.Errorf("client p99 %v with a %s shadow, %v without", with, tc.name, without)
			}
			switch tc.name {
			case "slow":
				if total >= 2*time.Second {
					t.Skipf("the %d requests took %v, longer than the shadow's delay: cannot check the drops", n, total)
				}
				// The first 5 copies hold every slot for 2s.
				if d := metricValue(t, g, mirrorSeries("dropped_in_flight")); d < n {
					t.Errorf("dropped_in_flight = %v, want at least %d", d, n)
				}
				if got := len(tc.shadow.seen()); got > 5 {
					t.Errorf("shadow received %d copies with max_in_flight 5 within 2s", got)
				}
			default:
				gwtest.WaitFor(t, 10*time.Second, "errors counted", func() bool {
					return metricValue(t, g, mirrorSeries("error"))+metricValue(t, g, mirrorSeries("dropped_in_flight")) == n+5
				})
				if v := metricValue(t, g, mirrorSeries("sent")); v != 0 {
					t.Errorf("sent = %v for a %s shadow, want 0", v, tc.name)
				}
			}
		})
	}
}

// TestMirrorBodyLimit: a copy whose body is over max_body_bytes is
// dropped and counted, whether its length is declared or found out while
// it streams, and the client's request is served whole.
func TestMirrorBodyLimit(t *testing.T) {
	for _, buffering := range []string{"auto", "on", "off"} {
		t.Run(buffering, func(t *testing.T) {
			sh := &shadow{}
			g := startGateway(t, mirrorYAML(echoUpstream(t, "app"), gwtest.Upstream(t, sh), "{upstream: shadow, max_body_bytes: 1000}",
				"    request_buffering: "+buffering+"\n"))
			c := newClient(t)
			send := func(size int, chunked bool) {
				body := bytes.Repeat([]byte("x"), size)
				var rd io.Reader = bytes.NewReader(body)
				if chunked {
					rd = io.MultiReader(rd)
				}
				resp, b := do(t, c, newRequest(t, http.MethodPut, g.URL+"/"+strconv.Itoa(size), rd))
				if s := decodeSeen(t, resp, b); s.BodyLen != size {
					t.Fatalf("app got %d bytes, want %d", s.BodyLen, size)
				}
			}
			send(1001, false)
			send(5000, true)
			send(200_000, true) // beyond body_buffer_bytes: auto streams it
			send(1000, false)
			send(999, true)
			gwtest.WaitFor(t, 5*time.Second, "two copies", func() bool { return metricValue(t, g, mirrorSeries("sent")) == 2 })
			gwtest.WaitFor(t, 5*time.Second, "dropped_body = 3", func() bool { return metricValue(t, g, mirrorSeries("dropped_body")) == 3 })
			var paths []string
			for _, s := range sh.seen() {
				paths = append(paths, s.path)
				if n, _ := strconv.Atoi(s.path[1:]); n != len(s.body) {
					t.Errorf("copy of %s has %d bytes", s.path, len(s.body))
				}
			}
			slices.Sort(paths)
			if !slices.Equal(paths, []string{"/1000", "/999"}) {
				t.Errorf("shadow got %v, want /1000 and /999", paths)
			}
		})
	}
}

// TestMirrorReload: a reload that changes the mirror keeps mirroring (to
// the new shadow), and one that removes it stops; the in-flight bound and
// the counters carry over.
func TestMirrorReload(t *testing.T) {
	app := echoUpstream(t, "app")
	sh1, sh2 := &shadow{}, &shadow{}
	a1, a2 := gwtest.Upstream(t, sh1), gwtest.Upstream(t, sh2)
	g := startGateway(t, mirrorYAML(app, a1, "{upstream: shadow}", ""))
	c := newClient(t)
	for range 5 {
		get(t, c, g.URL+"/one")
	}
	gwtest.WaitFor(t, 5*time.Second, "copies to the first shadow", func() bool { return len(sh1.seen()) == 5 })

	y := mirrorYAML(app, a2, "{upstream: shadow, percent: 100, max_in_flight: 10}", "") + "observability:\n  access_log: {path: \"off\"}\n"
	g.Reload(t, y)
	for range 5 {
		get(t, c, g.URL+"/two")
	}
	gwtest.WaitFor(t, 5*time.Second, "copies to the second shadow", func() bool { return len(sh2.seen()) == 5 })
	// The counter carries over the reload (a copy is counted once the
	// shadow's answer is read, just after the shadow saw it).
	gwtest.WaitFor(t, 5*time.Second, "sent = 10", func() bool { return metricValue(t, g, mirrorSeries("sent")) == 10 })

	off := regexp.MustCompile(`(?m)^    mirror: .*\n`).ReplaceAllString(y, "")
	g.Reload(t, off)
	for range 5 {
		get(t, c, g.URL+"/three")
	}
	time.Sleep(200 * time.Millisecond)
	if n1, n2 := len(sh1.seen()), len(sh2.seen()); n1 != 5 || n2 != 5 {
		t.Errorf("after removing the mirror the shadows got %d and %d copies, want 5 and 5", n1, n2)
	}
}
