package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/gateway"
)

// A listener with explain: true answers X-Rampart-Explain: 1 with the
// request's explanation in a response header and keeps the header from the
// upstream; a listener without it ignores the header.
func TestExplainHeader(t *testing.T) {
	var mu sync.Mutex
	var seen []string // X-Rampart-Explain as the backend saw it, per request
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("X-Rampart-Explain")+" "+r.URL.RequestURI())
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	cfg, err := config.LoadBytes("explain.yaml", []byte(fmt.Sprintf(`
listeners:
  - {name: on, address: "127.0.0.1:0", explain: true}
  - {name: off, address: "127.0.0.1:0"}
admin: {address: "off"}
upstreams:
  backend: {targets: [{address: %q}]}
routes:
  - {name: users, match: {path: {prefix: /users/}, methods: [GET]}, strip_prefix: true, upstream: backend}
observability: {access_log: {path: "off"}}
`, backend.Listener.Addr().String())))
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Config: cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx, nil); close(done) }()
	defer func() { cancel(); <-done }()
	on, off := a.ListenerAddr("on"), a.ListenerAddr("off")

	for _, tc := range []struct {
		name, addr, path, header string
		status                   int
		route                    string // "" for "route": null
		explained                bool
		backendSaw               string // "" when the backend is not reached
	}{
		{"on", on, "/users/42", "1", 200, "users", true, " /42"},
		{"on without the header", on, "/users/42", "", 200, "", false, " /42"},
		{"on, other value", on, "/users/42", "yes", 200, "", false, " /42"},
		{"on, no route", on, "/nothing", "1", 404, "", true, ""},
		{"off ignores it", off, "/users/42", "1", 200, "", false, "1 /42"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			seen = nil
			mu.Unlock()
			req, _ := http.NewRequest("GET", "http://"+tc.addr+tc.path, nil)
			if tc.header != "" {
				req.Header.Set("X-Rampart-Explain", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			hv := resp.Header.Get("X-Rampart-Explain")
			if !tc.explained {
				if hv != "" {
					t.Fatalf("unexpected X-Rampart-Explain: %s", hv)
				}
			} else {
				var e gateway.Explanation
				if err := json.Unmarshal([]byte(hv), &e); err != nil {
					t.Fatalf("X-Rampart-Explain %q: %v", hv, err)
				}
				got := ""
				if e.Route != nil {
					got = e.Route.Route
				}
				if got != tc.route {
					t.Fatalf("route %q, want %q: %s", got, tc.route, hv)
				}
				if got != "" && (e.UpstreamPath != "/42" || len(e.Upstreams) != 1 || len(e.Upstreams[0].Targets) != 1) {
					t.Errorf("explanation %s", hv)
				}
				if got == "" && (len(e.Nearest) != 1 || e.Nearest[0].Route != "users") {
					t.Errorf("nearest %+v", e.Nearest)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			want := []string(nil)
			if tc.backendSaw != "" {
				want = []string{tc.backendSaw}
			}
			if fmt.Sprint(seen) != fmt.Sprint(want) {
				t.Errorf("backend saw %q, want %q", seen, want)
			}
		})
	}
}
