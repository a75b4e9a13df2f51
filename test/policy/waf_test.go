package policy

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// TestWAFThroughGateway sends attacks and benign requests through a real
// gateway with a waf route (request_buffering on: the body the WAF
// buffered is the one forwarded) and a detect-mode route.
func TestWAFThroughGateway(t *testing.T) {
	var bodies atomic.Value
	var calls atomic.Int64
	up := gwtest.Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		bodies.Store(fmt.Sprintf("%d %q", r.ContentLength, b))
		io.WriteString(w, "ok")
	}))
	g := startGateway(t, fmt.Sprintf(`
upstreams:
  echo: {targets: [{address: %q}]}
routes:
  - {name: watch, match: {path: {prefix: /watch/}}, upstream: echo, policies: [watch]}
  - {name: api, match: {path: {prefix: /}}, upstream: echo, request_buffering: on, policies: [waf]}
policies:
  waf: {type: waf, paranoia_level: 1}
  watch: {type: waf, mode: detect}
`, up))
	c := newClient(t)
	post := func(path, ctype, body string) (*http.Response, []byte) {
		req, _ := http.NewRequest("POST", g.URL+path, io.MultiReader(strings.NewReader(body))) // chunked
		req.Header.Set("Content-Type", ctype)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	for _, u := range []string{"/items?id=1%27%20OR%20%271%27%3D%271", "/q?x=%3Cscript%3Ealert(1)%3C/script%3E", "/files?name=../../../etc/passwd"} {
		resp, b := send(t, c, "GET", g.URL+u)
		checkError(t, resp, b, 403, "waf_blocked")
	}
	resp, b := post("/api", "application/json", `{"q":"1' UNION SELECT password FROM users--"}`)
	checkError(t, resp, b, 403, "waf_blocked")
	resp, b = post("/api", "application/x-www-form-urlencoded", "c=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
	checkError(t, resp, b, 403, "waf_blocked")
	resp, b = post("/api", "application/xml", `<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>`)
	checkError(t, resp, b, 403, "waf_blocked")
	if n := calls.Load(); n != 0 {
		t.Errorf("the upstream saw %d refused requests", n)
	}
	body := `{"name":"Seán O'Brien","tags":["a","b"]}`
	resp, b = post("/api", "application/json", body)
	if resp.StatusCode != 200 || string(b) != "ok" {
		t.Fatalf("clean body: %d %s", resp.StatusCode, b)
	}
	if got, want := bodies.Load(), fmt.Sprintf("%d %q", len(body), body); got != want {
		t.Errorf("upstream saw %v, want %v", got, want)
	}
	resp, b = send(t, c, "GET", g.URL+"/watch/items?id=1%27%20OR%20%271%27%3D%271")
	if resp.StatusCode != 200 || string(b) != "ok" {
		t.Fatalf("detect mode: %d %s", resp.StatusCode, b)
	}
	if v := metric(t, g, `rampart_waf_blocked_total{route="api"}`); v != "6" {
		t.Errorf("blocked metric %q, want 6", v)
	}
	if v := metric(t, g, `rampart_waf_detected_total{route="watch"}`); v != "1" {
		t.Errorf("detected metric %q, want 1", v)
	}
}
