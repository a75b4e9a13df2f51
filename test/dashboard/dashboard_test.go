package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// xssRoute is a route name that would run script if the page inserted it as
// HTML; names come from config and must appear as text.
const xssRoute = `<img src=x onerror=alert(1)>`

// gw is a gateway running in-process with some traffic behind it.
type gw struct {
	url, admin       string
	users, ordersOK  string // target addresses
	ordersFail       string // a target that answers 503 and gets ejected
	usersN, ordersN  int    // requests sent per route
	ordersFailedSeen int    // 5xx answers the client saw
}

// start runs the gateway on free ports of 127.0.0.1 and sends it traffic:
// 20 requests to route users, 12 to orders (whose second target fails with
// 503 until passive health checking ejects it) and 2 to the xss route.
// adminExtra is YAML added under admin: (indented by four spaces).
func start(t *testing.T, adminExtra ...string) *gw {
	t.Helper()
	ok := func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(2 * time.Millisecond)
		io.WriteString(w, "ok\n")
	}
	g := &gw{
		users:      gwtest.Upstream(t, http.HandlerFunc(ok)),
		ordersOK:   gwtest.Upstream(t, http.HandlerFunc(ok)),
		ordersFail: gwtest.Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) })),
		usersN:     20,
		ordersN:    12,
	}
	y := fmt.Sprintf(`listeners:
  - name: public
    address: "127.0.0.1:0"
admin:
  address: "127.0.0.1:0"
%sdrain_timeout: 5s
upstreams:
  users:
    targets: [{address: %q}]
  orders:
    balancer: round_robin
    targets: [{address: %q}, {address: %q}]
    health_check:
      passive: {consecutive_5xx: 2, interval: 10s, base_ejection_time: 5m, max_ejection_percent: 50}
routes:
  - name: users
    match: {path: {prefix: /users/}}
    upstream: users
  - name: orders
    match: {path: {prefix: /orders/}}
    upstream: orders
  - name: %q
    match: {path: {exact: /xss}}
    upstream: users
observability:
  access_log: {path: "off"}
`, strings.Join(adminExtra, ""), g.users, g.ordersOK, g.ordersFail, xssRoute)
	gateway := gwtest.Start(t, y)
	g.url, g.admin = gateway.URL, gateway.Admin

	tr := &http.Transport{Proxy: nil}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	send := func(path string) int {
		resp, err := c.Get(g.url + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range g.usersN {
		if code := send(fmt.Sprintf("/users/%d", i)); code != 200 {
			t.Fatalf("GET /users/%d: %d, want 200", i, code)
		}
	}
	for i := range g.ordersN {
		if code := send(fmt.Sprintf("/orders/%d", i)); code >= 500 {
			g.ordersFailedSeen++
		}
	}
	if g.ordersFailedSeen == 0 {
		t.Fatal("no 5xx from the failing orders target")
	}
	send("/xss")
	send("/xss")
	return g
}

// slowAdmin returns the URL of a proxy to admin that answers API calls a
// second late.
func slowAdmin(t *testing.T, admin string) string {
	u, err := neturl.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") {
			select {
			case <-time.After(time.Second):
			case <-r.Context().Done():
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s.URL
}

// load sends a changing mix of requests to users and orders until the
// returned stop is called (which waits for the sender to end).
func (g *gw) load(t *testing.T) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	tr := &http.Transport{Proxy: nil}
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	go func() {
		defer close(done)
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("load: %v", r)
			}
		}()
		for i := 0; ctx.Err() == nil; i++ {
			path := "/users/" + fmt.Sprint(i)
			if i%3 == 0 {
				path = "/orders/" + fmt.Sprint(i)
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.url+path, nil)
			if resp, err := c.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			// A slow wave between about 20 and 100 requests/s.
			pause := 10*time.Millisecond + time.Duration(40*(1+math.Sin(float64(i)/150)))*time.Millisecond/2
			select {
			case <-ctx.Done():
			case <-time.After(pause):
			}
		}
	}()
	return func() {
		cancel()
		<-done
		tr.CloseIdleConnections()
	}
}

// TestStatsEndpoint reads GET /api/v1/stats from the real admin listener.
func TestStatsEndpoint(t *testing.T) {
	g := start(t)
	resp, err := http.Get(g.admin + "/api/v1/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Version string `json:"version"`
		Routes  []struct {
			Route    string           `json:"route"`
			Total    int64            `json:"total"`
			Errors   int64            `json:"errors"`
			Requests map[string]int64 `json:"requests"`
			Duration struct {
				Count  int64     `json:"count"`
				LE     []float64 `json:"le"`
				Counts []int64   `json:"counts"`
			} `json:"duration"`
		} `json:"routes"`
		Listeners []struct {
			Name string `json:"name"`
		} `json:"listeners"`
		Reloads map[string]int64 `json:"reloads"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.Version == "" || st.Reloads["ok"] < 1 || len(st.Listeners) != 1 || st.Listeners[0].Name != "public" {
		t.Errorf("version %q reloads %v listeners %+v", st.Version, st.Reloads, st.Listeners)
	}
	want := map[string][2]int64{"users": {int64(g.usersN), 0}, "orders": {int64(g.ordersN), int64(g.ordersFailedSeen)}, xssRoute: {2, 0}}
	for _, r := range st.Routes {
		w, ok := want[r.Route]
		if !ok {
			continue
		}
		delete(want, r.Route)
		if r.Total != w[0] || r.Errors != w[1] || r.Duration.Count != w[0] {
			t.Errorf("route %q: total %d errors %d observed %d, want %d %d %d", r.Route, r.Total, r.Errors, r.Duration.Count, w[0], w[1], w[0])
		}
		if n := len(r.Duration.Counts); n == 0 || r.Duration.Counts[n-1] > r.Duration.Count {
			t.Errorf("route %q: buckets %v of %d", r.Route, r.Duration.Counts, r.Duration.Count)
		}
	}
	if len(want) > 0 {
		t.Errorf("routes missing from stats: %v", want)
	}
}

// TestReadOnlyWithAdminToken: with admin.token_file set, the page and every
// call it makes still answer without a token (they are read-only GETs).
func TestReadOnlyWithAdminToken(t *testing.T) {
	token := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(token, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := start(t, fmt.Sprintf("  token_file: %q\n", token))
	for _, path := range []string{"/dashboard/", "/dashboard/app.js", "/dashboard/style.css",
		"/api/v1/stats", "/api/v1/upstreams", "/api/v1/config/status"} {
		t.Run(path, func(t *testing.T) {
			resp, err := http.Get(g.admin + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s without a token: %d, want 200", path, resp.StatusCode)
			}
		})
	}
	// The token still guards changes.
	req, _ := http.NewRequest(http.MethodPost, g.admin+"/api/v1/config/candidate/rollback", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("rollback without a token: %d, want 401", resp.StatusCode)
	}
}

// chromium returns the browser's path, or skips the test (fails it on CI).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" && os.Getenv("CI") != "false" {
		t.Fatal("chromium is not installed (scripts/test-deps.sh installs it); CI needs the browser tests")
	}
	t.Skip("chromium is not installed; run scripts/test-deps.sh")
	return ""
}

// browse runs headless Chromium on url with extra flags and returns stdout.
// Unless extra sets another --virtual-time-budget, the page runs for 8 s of
// virtual time: its timers fire at once while fetches take real time.
func browse(t *testing.T, bin, url string, extra ...string) []byte {
	t.Helper()
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars", "--user-data-dir=" + t.TempDir()}
	if !slices.ContainsFunc(extra, func(a string) bool { return strings.HasPrefix(a, "--virtual-time-budget=") }) {
		args = append(args, "--virtual-time-budget=8000")
	}
	args = append(append(args, extra...), url)
	limit := 90 * time.Second
	if os.Getenv("DASHBOARD_SCREENSHOT") != "" {
		limit = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\nstderr:\n%s", extra, err, tail(stderr.String(), 4000))
	}
	return stdout.Bytes()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func TestDashboardInBrowser(t *testing.T) {
	bin := chromium(t)
	g := start(t)
	url := g.admin + "/dashboard/"

	t.Run("dom", func(t *testing.T) {
		dom := string(browse(t, bin, url, "--dump-dom"))
		if os.Getenv("DASHBOARD_DUMP") != "" {
			t.Logf("DOM:\n%s", dom)
		}
		checks := []struct {
			name string
			re   string
		}{
			{name: "live", re: `id="live" class="live"[^>]*>live<`},
			{name: "version", re: `id="version"[^>]*>[0-9a-f]{6,}<`},
			{name: "users route with its request count", re: `<td class="name">users</td><td class="num">` + fmt.Sprint(g.usersN) + `</td>`},
			{name: "orders route with its request count", re: `<td class="name">orders</td><td class="num">` + fmt.Sprint(g.ordersN) + `</td>`},
			{name: "5xx share of orders", re: `<td class="name">orders</td>(<td[^>]*>[^<]*</td>){2}<td class="num[^"]*">[1-9][0-9.]*%</td>`},
			{name: "5xx code", re: `>503: ` + fmt.Sprint(g.ordersFailedSeen) + `<`},
			{name: "route name as text", re: regexp.QuoteMeta(`<td class="name">&lt;img src=x onerror=alert(1)&gt;</td>`)},
			{name: "users target", re: regexp.QuoteMeta(g.users)},
			{name: "orders targets", re: regexp.QuoteMeta(g.ordersOK) + `(.|\n)*` + regexp.QuoteMeta(g.ordersFail)},
			{name: "healthy target", re: `class="pill good">healthy<`},
			{name: "ejected target", re: regexp.QuoteMeta(g.ordersFail) + `</td><td><span class="pill bad">ejected until [0-9:]+ \(`},
			{name: "circuit state", re: `>circuit closed<`},
			{name: "listener connections", re: `<td>public</td><td class="num">[0-9]+</td>`},
			{name: "reloads", re: `id="reloads-ok" class="ok">[1-9]`},
			{name: "last reload", re: `class="pill good">ok<`},
			{name: "sparkline", re: `<svg [^>]*viewBox="0 0 300 60"`},
		}
		for _, c := range checks {
			if !regexp.MustCompile(c.re).MatchString(dom) {
				t.Errorf("%s: the rendered page does not match %s", c.name, c.re)
			}
		}
		for _, bad := range []string{`<img src="x"`, "<img src=x", "waiting for data", "Cannot read the admin API"} {
			if strings.Contains(dom, bad) {
				t.Errorf("the rendered page contains %q", bad)
			}
		}
		if t.Failed() {
			t.Logf("DOM:\n%s", tail(dom, 20000))
		}
	})

	t.Run("screenshot", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "dashboard.png")
		flags := []string{"--screenshot=" + file, "--window-size=1280,900"}
		target := url
		// DASHBOARD_SCREENSHOT=path keeps a copy (docs/img/dashboard.png),
		// taken after about two minutes of real time under load, so that the
		// rates and the sparkline have something to show. Virtual time stands
		// still while a fetch is pending, so a proxy that holds each API
		// answer for a second makes each 2 s poll last about a real second.
		out := os.Getenv("DASHBOARD_SCREENSHOT")
		if out != "" {
			target = slowAdmin(t, g.admin) + "/dashboard/"
			flags = append(flags, "--virtual-time-budget=240000")
		}
		stop := g.load(t)
		browse(t, bin, target, flags...)
		stop()
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("no screenshot: %v", err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("screenshot is not a PNG: %v", err)
		}
		if sz := img.Bounds().Size(); sz.X != 1280 || sz.Y != 900 {
			t.Errorf("screenshot is %v, want 1280x900", sz)
		}
		if n := colours(img); n < 8 {
			t.Errorf("screenshot has %d colours: the page did not render", n)
		}
		if len(b) < 20_000 {
			t.Errorf("screenshot is only %d bytes", len(b))
		}
		if out != "" {
			if err := os.WriteFile(out, b, 0o644); err != nil {
				t.Error(err)
			}
		}
	})
}

// colours counts distinct colours on a coarse grid of img, up to 64.
func colours(img image.Image) int {
	seen := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 7 {
		for x := b.Min.X; x < b.Max.X; x += 7 {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r, g, bl, a}] = true
			if len(seen) >= 64 {
				return len(seen)
			}
		}
	}
	return len(seen)
}
