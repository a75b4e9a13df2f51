package compose

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// seen is what an echo backend reports about the request it got.
type seen struct {
	Name, Path, RawQuery, User string
}

// echo is a backend answering with what it saw, as JSON.
func echo(t *testing.T, name string) string {
	return gwtest.Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(seen{Name: name, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery, User: r.Header.Get("X-User")})
	}))
}

func get(t *testing.T, c *http.Client, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// TestCapturesEndToEnd: template and regex captures reach rewrite.path
// (re-encoded), a headers policy value, and a ring_hash hash_key
// param:NAME, through a real gateway and real backends.
func TestCapturesEndToEnd(t *testing.T) {
	a, b1, b2 := echo(t, "a"), echo(t, "h1"), echo(t, "h2")
	g := gwtest.Start(t, gwtest.Head+fmt.Sprintf(`
upstreams:
  app: {targets: [{address: %q}]}
  hashed:
    targets: [{address: %q}, {address: %q}]
    balancer: ring_hash
    hash_key: "param:id"
policies:
  user: {type: headers, request: {set: {X-User: "user-{id}"}}}
routes:
  - name: tpl
    match: {path: {template: "/u/{id}/x/{*rest}"}}
    rewrite: {path: "/v1/users/{id}/{rest}"}
    policies: [user]
    upstream: app
  - name: re
    match: {path: {regex: "^/r/(?P<id>[a-z0-9]+)$"}}
    rewrite: {path: "/items/{id}"}
    upstream: hashed
  - name: plain
    match: {path: {prefix: /}}
    upstream: app
`, a, b1, b2))
	c := gwtest.Client(t, 5*time.Second)
	tests := []struct {
		path string
		want seen
	}{
		{"/u/42/x/a/b?q=1", seen{Name: "a", Path: "/v1/users/42/a/b", RawQuery: "q=1", User: "user-42"}},
		// Decoded for matching, re-encoded when substituted: the space
		// and the "?" inside a segment stay escaped.
		{"/u/a%20b/x/c%3Fd/e", seen{Name: "a", Path: "/v1/users/a%20b/c%3Fd/e", User: "user-a b"}},
		{"/u/7/x/", seen{Name: "a", Path: "/v1/users/7/", User: "user-7"}},
		{"/other/{id}", seen{Name: "a", Path: "/other/%7Bid%7D"}},
	}
	for _, tt := range tests {
		resp, body := get(t, c, g.URL+tt.path)
		var got seen
		if resp.StatusCode != 200 || json.Unmarshal(body, &got) != nil {
			t.Fatalf("GET %s: %d %s", tt.path, resp.StatusCode, body)
		}
		if got != tt.want {
			t.Errorf("GET %s: backend saw %+v, want %+v", tt.path, got, tt.want)
		}
	}

	// hash_key param:id: one id always reaches one target; ids spread.
	targets := map[string]bool{}
	for i := range 20 {
		id := fmt.Sprintf("k%d", i)
		first := ""
		for range 3 {
			resp, body := get(t, c, g.URL+"/r/"+id)
			var got seen
			if resp.StatusCode != 200 || json.Unmarshal(body, &got) != nil {
				t.Fatalf("GET /r/%s: %d %s", id, resp.StatusCode, body)
			}
			if got.Path != "/items/"+id {
				t.Errorf("GET /r/%s: backend saw path %s", id, got.Path)
			}
			if first == "" {
				first = got.Name
			} else if got.Name != first {
				t.Errorf("id %s went to %s and %s: hash_key param:id is not sticky", id, first, got.Name)
			}
		}
		targets[first] = true
	}
	if len(targets) != 2 {
		t.Errorf("20 ids reached targets %v, want both", targets)
	}
}
