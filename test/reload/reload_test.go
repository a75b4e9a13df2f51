package reload

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rampart-gw/rampart/internal/app"
	"github.com/rampart-gw/rampart/test/gwtest"
)

// wsEcho starts a WebSocket upstream that echoes every message.
func wsEcho(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, b, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, b); err != nil {
				return
			}
		}
	}))
	t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

// flaky answers requests with 200 but its health endpoint with 503, so
// active health checks mark it unhealthy while traffic to it still works.
func flaky(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "flaky")
	}))
	t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

type upstreamsView struct {
	Upstreams []struct {
		Name    string `json:"name"`
		Targets []struct {
			Address string `json:"address"`
			Healthy bool   `json:"healthy"`
		} `json:"targets"`
	} `json:"upstreams"`
}

// targetHealthy reads /api/v1/upstreams for one target.
func targetHealthy(t *testing.T, c *http.Client, admin, upstream, addr string) bool {
	t.Helper()
	code, body, _ := get(c, admin+"/api/v1/upstreams")
	var v upstreamsView
	if code != 200 || json.Unmarshal([]byte(body), &v) != nil {
		t.Fatalf("upstreams: %d %.200s", code, body)
	}
	for _, u := range v.Upstreams {
		for _, tg := range u.Targets {
			if u.Name == upstream && tg.Address == addr {
				return tg.Healthy
			}
		}
	}
	t.Fatalf("no target %s/%s in %s", upstream, addr, body)
	return false
}

// TestReloadUnderLoad applies 50 reloads, alternating two configs through
// SIGHUP's path (file + reload) and PUT /api/v1/config, while 8 workers
// send requests: none may fail, a WebSocket opened before still echoes, and
// a target that active health checks marked unhealthy stays unhealthy.
func TestReloadUnderLoad(t *testing.T) {
	good, bad, ws := named(t, "good", 0), flaky(t), wsEcho(t)
	listen, adminAddr := gwtest.FreeAddr(t), gwtest.FreeAddr(t)
	// The pool upstream is the same in both configs; only routes differ.
	common := head(listen, adminAddr) + fmt.Sprintf(`
upstreams:
  pool:
    targets: [{address: %q}, {address: %q}]
    health_check:
      active: {path: /healthz, interval: 30s, timeout: 1s, healthy_threshold: 1, unhealthy_threshold: 1}
  ws: {targets: [{address: %q}]}
routes:
  - {name: api, match: {path: {prefix: /api/}}, upstream: pool}
  - {name: ws, match: {path: {prefix: /ws}}, upstream: ws}
`, good, bad, ws)
	configs := [2]string{
		common + "  - {name: extra-a, match: {path: {prefix: /a/}}, upstream: pool}\n",
		common + "  - {name: extra-b, match: {path: {prefix: /b/}}, upstream: pool, timeout: 7s}\n",
	}
	path := filepath.Join(t.TempDir(), "rampart.yaml")
	if err := os.WriteFile(path, []byte(configs[0]), 0o600); err != nil {
		t.Fatal(err)
	}
	g := gwtest.Run(t, app.Options{ConfigPath: path})
	c := newClient(t)
	// The first probe runs at once; after it the flaky target is unhealthy
	// and, with a 30s interval, only a reset of its state could make it
	// healthy again during the test.
	gwtest.WaitFor(t, 5*time.Second, "flaky target unhealthy", func() bool { return !targetHealthy(t, c, g.Admin, "pool", bad) })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wsc, _, err := websocket.Dial(ctx, "ws://"+listen+"/ws", nil)
	if err != nil {
		t.Fatalf("websocket dial: %v", err)
	}
	defer wsc.CloseNow()
	echo := func(msg string) error {
		if err := wsc.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			return err
		}
		_, b, err := wsc.Read(ctx)
		if err == nil && string(b) != msg {
			err = fmt.Errorf("echo %q, want %q", b, msg)
		}
		return err
	}
	if err := echo("before"); err != nil {
		t.Fatal(err)
	}

	var total, failed atomic.Int64
	var firstFail atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wc := newClient(t)
			deadline := time.Now().Add(15 * time.Second) // hard bound
			for i := 0; time.Now().Before(deadline); i++ {
				select {
				case <-stop:
					return
				default:
				}
				code, body, _ := get(wc, fmt.Sprintf("%s/api/%d/%d", g.URL, w, i))
				total.Add(1)
				if code != 200 {
					failed.Add(1)
					firstFail.CompareAndSwap(nil, fmt.Sprintf("%d %.200s", code, body))
				}
			}
		}()
	}

	start := time.Now()
	var lat []time.Duration
	for i := range 50 {
		y := configs[(i+1)%2]
		t0 := time.Now()
		if i%2 == 0 {
			if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := g.App.Reload(); err != nil {
				t.Fatalf("reload %d: %v", i, err)
			}
		} else {
			code, body := send(t, c, "PUT", g.Admin+"/api/v1/config", "application/yaml", []byte(y))
			if code != 200 {
				t.Fatalf("PUT %d: %d %s", i, code, body)
			}
		}
		lat = append(lat, time.Since(t0))
		if targetHealthy(t, c, g.Admin, "pool", bad) {
			t.Fatalf("after reload %d the unhealthy target is healthy again: health state was reset", i)
		}
		time.Sleep(80 * time.Millisecond)
	}
	reloadsTook := time.Since(start)
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()

	if err := echo("after"); err != nil {
		t.Errorf("websocket opened before the reloads: %v", err)
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	n, f := total.Load(), failed.Load()
	t.Logf("50 reloads in %s (mean %s per reload) under load: %d requests, %d failed (%.0f req/s)",
		reloadsTook.Round(time.Millisecond), (sum / 50).Round(time.Microsecond), n, f, float64(n)/reloadsTook.Seconds())
	if f != 0 {
		t.Errorf("%d of %d requests failed during reloads; first: %v", f, n, firstFail.Load())
	}
	if n < 1000 {
		t.Errorf("only %d requests were sent; the load is too light to mean anything", n)
	}
	st := getStatus(t, c, g.Admin)
	if st.Reloads["ok"] < 51 || st.Reloads["error"] != 0 {
		t.Errorf("reload counts %v, want 51 ok and no error", st.Reloads)
	}
}

// TestInvalidConfigRefused sends an invalid config through the file watch
// and the admin API: each is refused with every problem reported, and the
// old config keeps serving.
func TestInvalidConfigRefused(t *testing.T) {
	up := named(t, "one", 0)
	listen, adminAddr := gwtest.FreeAddr(t), gwtest.FreeAddr(t)
	valid := head(listen, adminAddr) + fmt.Sprintf(`
upstreams:
  one: {targets: [{address: %q}]}
routes:
  - {name: r, match: {path: {prefix: /}}, upstream: one}
`, up)
	invalid := head(listen, adminAddr) + fmt.Sprintf(`
upstreams:
  one: {targets: [{address: %q}], balancr: random}
routes:
  - {name: r, match: {path: {prefix: /}}, upstream: missing}
`, up)
	dir := t.TempDir()
	path := filepath.Join(dir, "rampart.yaml")
	os.WriteFile(path, []byte(valid), 0o600)
	g := gwtest.Run(t, app.Options{ConfigPath: path, Watch: true})
	c := newClient(t)
	v0 := version(t, c, g.Admin)

	serving := func(when string) {
		t.Helper()
		if code, body, _ := get(c, g.URL+"/x"); code != 200 || body != "one" {
			t.Fatalf("%s: old config not serving: %d %q", when, code, body)
		}
		if v := version(t, c, g.Admin); v != v0 {
			t.Fatalf("%s: version %s, want %s", when, v, v0)
		}
	}
	checkProblems := func(when string, st status) {
		t.Helper()
		if st.LastReload == nil || st.LastReload.Result != "error" || len(st.LastReload.Errors) != 2 {
			t.Fatalf("%s: last reload %+v, want an error with 2 problems", when, st.LastReload)
		}
		for _, e := range st.LastReload.Errors {
			if e.Line == 0 || e.Col == 0 || e.Path == "" {
				t.Errorf("%s: problem without position or path: %+v", when, e)
			}
		}
	}

	t.Run("file watch", func(t *testing.T) {
		// Written the way editors do: a new file renamed over the old one.
		tmp := filepath.Join(dir, ".rampart.yaml.swp")
		os.WriteFile(tmp, []byte(invalid), 0o600)
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
		gwtest.WaitFor(t, 5*time.Second, "refusal of the file", func() bool {
			st := getStatus(t, c, g.Admin)
			return st.LastError != nil && st.LastError.Source == app.SourceFile
		})
		checkProblems("file", getStatus(t, c, g.Admin))
		serving("after the invalid file")
		_, metrics, _ := get(c, g.Admin+"/metrics")
		if !strings.Contains(metrics, `rampart_config_reloads_total{result="error"} 1`) {
			t.Errorf("metrics lack the refused reload")
		}
		// Fixing the file applies it.
		fixed := strings.Replace(valid, "name: r,", "name: r2,", 1)
		os.WriteFile(path, []byte(fixed), 0o600)
		gwtest.WaitFor(t, 5*time.Second, "fixed file applied", func() bool { return version(t, c, g.Admin) != v0 })
		v0 = version(t, c, g.Admin)
	})

	t.Run("PUT", func(t *testing.T) {
		code, body := send(t, c, "PUT", g.Admin+"/api/v1/config", "", []byte(invalid))
		var resp struct {
			Error    struct{ Code string } `json:"error"`
			Problems []struct {
				Line int    `json:"line"`
				Col  int    `json:"col"`
				Path string `json:"path"`
				Text string `json:"text"`
			} `json:"problems"`
		}
		if err := json.Unmarshal(body, &resp); err != nil || code != 400 || resp.Error.Code != "invalid_config" || len(resp.Problems) != 2 {
			t.Fatalf("PUT invalid: %d %s", code, body)
		}
		for _, p := range resp.Problems {
			if p.Line == 0 || p.Col == 0 || p.Path == "" || !strings.HasPrefix(p.Text, "api.yaml:") {
				t.Errorf("problem %+v lacks a position or path", p)
			}
		}
		checkProblems("PUT", getStatus(t, c, g.Admin))
		serving("after PUT")

		// JSON, sniffed without a Content-Type; with a stale If-Match.
		var doc map[string]any
		code, cfgBody, _ := get(c, g.Admin+"/api/v1/config")
		json.Unmarshal([]byte(cfgBody), &doc)
		cfgJSON, _ := json.Marshal(doc["config"])
		code, body = send(t, c, "PUT", g.Admin+"/api/v1/config", "", cfgJSON, "If-Match", `"000000000000"`)
		if code != http.StatusPreconditionFailed {
			t.Fatalf("PUT with a stale If-Match: %d %s", code, body)
		}
		code, body = send(t, c, "PUT", g.Admin+"/api/v1/config", "", cfgJSON, "If-Match", `"`+v0+`"`)
		if code != 200 {
			t.Fatalf("PUT the same config as JSON with If-Match: %d %s", code, body)
		}
		serving("after PUT of the same config")
	})
}

// TestAdminToken checks that admin.token_file guards mutating calls.
func TestAdminToken(t *testing.T) {
	up := named(t, "one", 0)
	dir := t.TempDir()
	token := filepath.Join(dir, "admin.token")
	os.WriteFile(token, []byte("s3cret\n"), 0o600)
	y := head(gwtest.FreeAddr(t), gwtest.FreeAddr(t)) + fmt.Sprintf(`admin_token_placeholder: x
upstreams:
  one: {targets: [{address: %q}]}
routes:
  - {name: r, match: {path: {prefix: /}}, upstream: one}
`, up)
	y = strings.Replace(y, "admin: {address: ", "admin: {token_file: "+fmt.Sprintf("%q", token)+", address: ", 1)
	y = strings.Replace(y, "admin_token_placeholder: x\n", "", 1)
	path := filepath.Join(dir, "rampart.yaml")
	os.WriteFile(path, []byte(y), 0o600)
	g := gwtest.Run(t, app.Options{ConfigPath: path})
	c := newClient(t)
	if code, body := send(t, c, "PUT", g.Admin+"/api/v1/config", "application/yaml", []byte(y)); code != 401 {
		t.Errorf("PUT without a token: %d %s", code, body)
	}
	if code, body := send(t, c, "PUT", g.Admin+"/api/v1/config", "application/yaml", []byte(y), "Authorization", "Bearer nope"); code != 401 {
		t.Errorf("PUT with a wrong token: %d %s", code, body)
	}
	if code, body := send(t, c, "PUT", g.Admin+"/api/v1/config", "application/yaml", []byte(y), "Authorization", "Bearer s3cret"); code != 200 {
		t.Errorf("PUT with the token: %d %s", code, body)
	}
	if code, _, _ := get(c, g.Admin+"/api/v1/config/status"); code != 200 {
		t.Errorf("GET status needs no token, got %d", code)
	}
}
