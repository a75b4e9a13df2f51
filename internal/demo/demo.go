// Package demo runs a self-contained showcase: several small upstream
// services in-process on 127.0.0.1 and a gateway config that routes to them,
// so `rampart demo` shows routing, a weighted canary split, rewriting,
// streaming and the gateway's errors with no files and no set-up.
package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
)

// Config sets the gateway's addresses.
type Config struct {
	Listen string // default 127.0.0.1:8080
	Admin  string // default 127.0.0.1:9901
}

// Demo is the running set of demo upstreams and the gateway config that
// uses them.
type Demo struct {
	GatewayConfig *config.Config
	// GatewayYAML is the document GatewayConfig was parsed from.
	GatewayYAML string
	servers     []*http.Server
	wg          sync.WaitGroup
}

type service struct {
	name, instance string
	handler        http.Handler
}

// Start starts the demo upstreams and builds the gateway config.
func Start(cfg Config) (*Demo, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:8080"
	}
	if cfg.Admin == "" {
		cfg.Admin = "127.0.0.1:9901"
	}
	d := &Demo{}
	addrs := map[string][]string{}
	start := func(s service) error {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 5 * time.Second}
		d.servers = append(d.servers, srv)
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			defer func() {
				if p := recover(); p != nil {
					slog.Error("demo upstream panicked", "service", s.name, "instance", s.instance, "panic", fmt.Sprint(p))
				}
			}()
			srv.Serve(ln)
		}()
		addrs[s.name] = append(addrs[s.name], ln.Addr().String())
		return nil
	}
	services := []service{
		{"users-v1", "a", info("users", "v1", "a")},
		{"users-v1", "b", info("users", "v1", "b")},
		{"users-v2", "c", info("users", "v2", "c")},
		{"echo", "e", http.HandlerFunc(echo)},
		{"events", "s", http.HandlerFunc(events)},
		{"slow", "z", http.HandlerFunc(slow)},
	}
	for _, s := range services {
		if err := start(s); err != nil {
			d.Close()
			return nil, fmt.Errorf("start demo upstream %s: %w", s.name, err)
		}
	}
	// An address nothing listens on, for the 502 example.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		d.Close()
		return nil, err
	}
	addrs["offline"] = []string{ln.Addr().String()}
	ln.Close()

	y := gatewayYAML(cfg, addrs)
	c, err := config.Parse("demo.yaml", []byte(y))
	if err == nil {
		err = c.Validate()
	}
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("demo config: %w", err)
	}
	d.GatewayConfig, d.GatewayYAML = c, y
	return d, nil
}

// Close stops the demo upstreams.
func (d *Demo) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range d.servers {
		s.Shutdown(ctx)
	}
	d.wg.Wait()
}

func gatewayYAML(cfg Config, addrs map[string][]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# The demo gateway's config (rampart demo).
listeners:
  - name: public
    address: %q
admin:
  address: %q
drain_timeout: 5s
upstreams:
`, cfg.Listen, cfg.Admin)
	names := make([]string, 0, len(addrs))
	for n := range addrs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "  %s:\n    connect_timeout: 500ms\n    targets:\n", n)
		for i, a := range addrs[n] {
			w := 1
			if n == "users-v1" && i == 0 {
				w = 3
			}
			fmt.Fprintf(&b, "      - {address: %q, weight: %d}\n", a, w)
		}
	}
	b.WriteString(`routes:
  # users-beta has one condition more than users (path, methods and a
  # header against path and methods), so it wins whenever X-Beta: 1 is sent
  # (the more specific route wins, whatever the order).
  - name: users-beta
    match: {path: {prefix: /users/}, methods: [GET], headers: {X-Beta: "1"}}
    strip_prefix: true
    upstream: users-v2
  - name: users
    match: {path: {prefix: /users/}, methods: [GET]}
    strip_prefix: true
    split:
      - {upstream: users-v1, weight: 90}
      - {upstream: users-v2, weight: 10}
  - name: echo
    match: {path: {prefix: /echo/}}
    rewrite: {prefix: /v1/echo/}
    upstream: echo
  - name: admin-host
    match: {hosts: ["admin.localhost"], path: {prefix: /}}
    upstream: echo
  - name: events
    match: {path: {exact: /events}}
    upstream: events
    timeout: 5s
  - name: slow
    match: {path: {exact: /slow}}
    upstream: slow
    timeout: 1s
  - name: offline
    match: {path: {exact: /offline}}
    upstream: offline
`)
	return b.String()
}

// Instructions returns the text printed when the demo starts.
func (d *Demo) Instructions(gw, adminAddr string) string {
	return fmt.Sprintf(`
Rampart demo is running.
  gateway   http://%[1]s
  admin     http://%[2]s
  dashboard http://%[2]s/dashboard/   (open it in a browser while you try the commands)

Try these:
  curl -s http://%[1]s/users/42                          # 90/10 split: users v1 (instances a:b weighted 3:1) or v2
  for i in $(seq 20); do curl -s http://%[1]s/users/1 | grep -o '"version":"v[12]"'; done | sort | uniq -c
  curl -s -H 'X-Beta: 1' http://%[1]s/users/42           # header match: always v2
  curl -s http://%[1]s/echo/hello?x=1                    # rewrite /echo/ -> /v1/echo/, shows forwarded headers
  curl -s -H 'Host: admin.localhost' http://%[1]s/anything   # host-based route
  curl -sN http://%[1]s/events                           # server-sent events, streamed as they happen
  curl -si http://%[1]s/nope                             # 404 route_not_found (JSON)
  curl -si -X POST http://%[1]s/users/1                  # 404: the users route only allows GET
  curl -si http://%[1]s/slow                             # 504 upstream_timeout after 1s
  curl -si http://%[1]s/offline                          # 502 upstream_unreachable
  curl -s http://%[2]s/api/v1/routes                     # admin API: routes, upstreams, config, metrics
  curl -s http://%[2]s/metrics | grep rampart_http_requests_total

Press Ctrl-C to stop (the gateway drains in-flight requests first).
`, gw, adminAddr)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func info(service, version, instance string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]string{
			"service": service, "version": version, "instance": instance,
			"path": r.URL.Path, "request_id": r.Header.Get("X-Request-Id"),
		})
	})
}

func echo(w http.ResponseWriter, r *http.Request) {
	h := map[string]string{}
	for k, v := range r.Header {
		h[k] = strings.Join(v, ", ")
	}
	writeJSON(w, map[string]any{"method": r.Method, "host": r.Host, "path": r.URL.Path, "query": r.URL.RawQuery, "headers": h})
}

func events(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	rc := http.NewResponseController(w)
	for i := 1; i <= 5; i++ {
		fmt.Fprintf(w, "id: %d\ndata: {\"tick\":%d,\"time\":%q}\n\n", i, i, time.Now().Format(time.RFC3339Nano))
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func slow(w http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
		return
	case <-time.After(3 * time.Second):
	}
	writeJSON(w, map[string]string{"service": "slow", "note": "answered after 3s"})
}
