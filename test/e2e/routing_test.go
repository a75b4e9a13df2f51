package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestRouting checks every match condition and the documented precedence:
// exact path > longest prefix or regex literal (a prefix on a tie); among
// equals more conditions win, then config order.
func TestRouting(t *testing.T) {
	names := []string{"host-exact", "host-wild", "exact", "prefix-short", "prefix-long", "regex", "regex-only",
		"method-get", "method-post", "c-plain", "c-header", "c-query", "order-first", "order-second"}
	var ups strings.Builder
	ups.WriteString("upstreams:\n")
	for _, n := range names {
		fmt.Fprintf(&ups, "  %s:\n    targets: [{address: %q}]\n", n, echoUpstream(t, n))
	}
	g := startGateway(t, listenerYAML("")+ups.String()+`
routes:
  - name: host-exact
    match: {hosts: ["api.example.com"], path: {prefix: /h/}}
    upstream: host-exact
  - name: host-wild
    match: {hosts: ["*.example.com"], path: {prefix: /h/}}
    upstream: host-wild
  - name: regex
    match: {path: {regex: "^/p/long/[0-9]+$"}}
    upstream: regex
  - name: prefix-short
    match: {path: {prefix: /p/}}
    upstream: prefix-short
  - name: prefix-long
    match: {path: {prefix: /p/long/}}
    upstream: prefix-long
  - name: exact
    match: {path: {exact: /p/long/exact}}
    upstream: exact
  - name: regex-only
    match: {path: {regex: "^/r/[0-9]+$"}}
    upstream: regex-only
  - name: method-get
    match: {path: {prefix: /m/}, methods: [GET]}
    upstream: method-get
  - name: method-post
    match: {path: {prefix: /m/}, methods: [POST, PUT]}
    upstream: method-post
  - name: c-plain
    match: {path: {prefix: /c/}}
    upstream: c-plain
  - name: c-header
    match: {path: {prefix: /c/}, headers: {X-Api-Version: v2}}
    upstream: c-header
  - name: c-query
    match: {path: {prefix: /c/}, query: {beta: "1"}}
    upstream: c-query
  - name: order-first
    match: {path: {prefix: /o/}}
    upstream: order-first
  - name: order-second
    match: {path: {prefix: /o/}}
    upstream: order-second
`)
	c := newClient(t)
	tests := []struct {
		name   string
		method string
		host   string
		path   string
		header map[string]string
		want   string // upstream name, or "" for 404
	}{
		{name: "host exact", host: "api.example.com", path: "/h/x", want: "host-exact"},
		{name: "host exact case-insensitive with port", host: "API.Example.COM:8443", path: "/h/x", want: "host-exact"},
		{name: "host wildcard", host: "eu.example.com", path: "/h/x", want: "host-wild"},
		{name: "host wildcard case-insensitive with port", host: "EU.EXAMPLE.com:80", path: "/h/x", want: "host-wild"},
		{name: "wildcard does not match apex", host: "example.com", path: "/h/x"},
		{name: "other host", host: "api.example.org", path: "/h/x"},
		{name: "exact beats prefix and regex", path: "/p/long/exact", want: "exact"},
		{name: "longest prefix beats shorter prefix and regex", path: "/p/long/123", want: "prefix-long"},
		{name: "short prefix", path: "/p/other", want: "prefix-short"},
		{name: "regex", path: "/r/42", want: "regex-only"},
		{name: "regex anchored", path: "/r/42x"},
		{name: "method GET", path: "/m/a", want: "method-get"},
		{name: "method POST", method: http.MethodPost, path: "/m/a", want: "method-post"},
		{name: "method PUT", method: http.MethodPut, path: "/m/a", want: "method-post"},
		{name: "method not allowed anywhere", method: http.MethodDelete, path: "/m/a"},
		{name: "no condition extra", path: "/c/a", want: "c-plain"},
		{name: "header condition wins over plain", path: "/c/a", header: map[string]string{"X-Api-Version": "v2"}, want: "c-header"},
		{name: "header value must match", path: "/c/a", header: map[string]string{"X-Api-Version": "v3"}, want: "c-plain"},
		{name: "query condition wins over plain", path: "/c/a?beta=1&x=y", want: "c-query"},
		{name: "query value must match", path: "/c/a?beta=2", want: "c-plain"},
		{name: "equal conditions: config order", path: "/c/a?beta=1", header: map[string]string{"X-Api-Version": "v2"}, want: "c-header"},
		{name: "identical matches: config order", path: "/o/x", want: "order-first"},
		{name: "no route", path: "/nope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			req := newRequest(t, method, g.URL+tc.path, nil)
			if tc.host != "" {
				req.Host = tc.host
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, body := do(t, c, req)
			if tc.want == "" {
				checkError(t, resp, body, http.StatusNotFound, "route_not_found")
				return
			}
			if got := decodeSeen(t, resp, body).Name; got != tc.want {
				t.Errorf("routed to %q, want %q", got, tc.want)
			}
		})
	}
}

// TestPathRewrite checks strip_prefix and rewrite.prefix by the path the
// upstream saw, with the query and encoded paths kept as sent.
func TestPathRewrite(t *testing.T) {
	addr := echoUpstream(t, "echo")
	g := startGateway(t, listenerYAML("")+fmt.Sprintf(`
upstreams:
  echo: {targets: [{address: %q}]}
routes:
  - name: strip
    match: {path: {prefix: /strip/}}
    strip_prefix: true
    upstream: echo
  - name: rewrite
    match: {path: {prefix: /old/}}
    rewrite: {prefix: /v1/new/}
    upstream: echo
  - name: strip-rewrite
    match: {path: {prefix: /both/}}
    strip_prefix: true
    rewrite: {prefix: /v2/}
    upstream: echo
  - name: template-strip
    match: {path: {template: "/t/{id}/{*rest}"}}
    strip_prefix: true
    upstream: echo
  - name: template-rewrite
    match: {path: {template: "/r/{id}"}}
    rewrite: {prefix: /v1/}
    upstream: echo
  - name: plain
    match: {path: {prefix: /}}
    upstream: echo
`, addr))
	c := newClient(t)
	tests := []struct {
		name string
		path string
		want string // request URI the upstream saw
	}{
		{"strip", "/strip/users/42", "/users/42"},
		{"strip keeps query", "/strip/users/42?a=1&b=x%20y", "/users/42?a=1&b=x%20y"},
		{"strip to root", "/strip/", "/"},
		{"strip keeps encoded slash", "/strip/a%2Fb", "/a%2Fb"},
		{"rewrite", "/old/users/42", "/v1/new/users/42"},
		{"rewrite keeps query", "/old/x?q=1", "/v1/new/x?q=1"},
		{"rewrite keeps encoded slash", "/old/a%2Fb?x=1", "/v1/new/a%2Fb?x=1"},
		{"strip with rewrite", "/both/x/y", "/v2/x/y"},
		// Issue 15 bug 2: a template route applies strip_prefix and
		// rewrite to its literal prefix (the text before the first "{").
		{"template strip", "/t/42/a/b", "/42/a/b"},
		{"template rewrite", "/r/42", "/v1/42"},
		{"no rewrite keeps encoded path", "/a%2Fb/c%20d?x=%2F", "/a%2Fb/c%20d?x=%2F"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := doSeen(t, c, newRequest(t, http.MethodGet, g.URL+tc.path, nil))
			if s.RequestURI != tc.want {
				t.Errorf("upstream saw %q, want %q", s.RequestURI, tc.want)
			}
		})
	}
}

// TestWeightedSplit checks the proportions of a route's weighted split.
func TestWeightedSplit(t *testing.T) {
	g := startGateway(t, listenerYAML("")+fmt.Sprintf(`
upstreams:
  v1: {targets: [{address: %q}]}
  v2: {targets: [{address: %q}]}
routes:
  - name: split
    match: {path: {prefix: /}}
    split:
      - {upstream: v1, weight: 80}
      - {upstream: v2, weight: 20}
`, echoUpstream(t, "v1"), echoUpstream(t, "v2")))
	c := newClient(t)
	const n = 2000
	counts := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				resp, err := c.Get(g.URL + "/x")
				if err != nil {
					t.Error(err)
					continue
				}
				resp.Body.Close()
				mu.Lock()
				counts[resp.Header.Get("X-Upstream")]++
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	if counts["v1"]+counts["v2"] != n {
		t.Fatalf("counts %v, want %d answers from v1 and v2", counts, n)
	}
	share := float64(counts["v1"]) / n * 100
	if share < 76 || share > 84 {
		t.Errorf("v1 got %.1f%% of %d requests (%v), want 80 ± 4", share, n, counts)
	}
}

// TestSmoothWeightedRoundRobin checks that sequential requests spread over
// an upstream's targets in exact proportion to their weights per cycle.
func TestSmoothWeightedRoundRobin(t *testing.T) {
	g := startGateway(t, listenerYAML("")+fmt.Sprintf(`
upstreams:
  u:
    balancer: round_robin
    targets:
      - {address: %q, weight: 3}
      - {address: %q, weight: 1}
routes:
  - name: rr
    match: {path: {prefix: /}}
    upstream: u
`, echoUpstream(t, "a"), echoUpstream(t, "b")))
	c := newClient(t)
	const cycles = 25
	var seq []string
	for range cycles * 4 {
		resp, _ := get(t, c, g.URL+"/")
		seq = append(seq, resp.Header.Get("X-Upstream"))
	}
	for i := 0; i < len(seq); i += 4 {
		cycle := map[string]int{}
		for _, s := range seq[i : i+4] {
			cycle[s]++
		}
		if cycle["a"] != 3 || cycle["b"] != 1 {
			t.Fatalf("cycle %d = %v, want a:3 b:1; sequence %v", i/4, seq[i:i+4], seq)
		}
	}
	// Smooth: the weight-1 target is never picked twice in a row, and the
	// weight-3 one at most three times in a row.
	run := 0
	for i, s := range seq {
		if i > 0 && s == seq[i-1] {
			run++
		} else {
			run = 1
		}
		if s == "b" && run > 1 || run > 3 {
			t.Fatalf("not smooth at %d: %v", i, seq)
		}
	}
}

// TestRoutingCatchAll checks the most common config: specific regex and
// template routes next to a catch-all prefix "/", which they beat when their
// literal prefix is longer, while a prefix as long as the literal, or an
// exact path, still wins.
func TestRoutingCatchAll(t *testing.T) {
	names := []string{"all", "item", "user", "items-long", "exact", "v-prefix", "v-regex"}
	var ups strings.Builder
	ups.WriteString("upstreams:\n")
	for _, n := range names {
		fmt.Fprintf(&ups, "  %s:\n    targets: [{address: %q}]\n", n, echoUpstream(t, n))
	}
	g := startGateway(t, listenerYAML("")+ups.String()+`
routes:
  - name: all
    match: {path: {prefix: /}}
    upstream: all
  - name: item
    match: {path: {regex: "^/items/[0-9]+$"}}
    upstream: item
  - name: user
    match: {path: {template: "/users/{id}/{*rest}"}}
    upstream: user
  - name: items-long
    match: {path: {prefix: /items/9}}
    upstream: items-long
  - name: exact
    match: {path: {exact: /items/42}}
    upstream: exact
  - name: v-regex
    match: {path: {regex: "^/v/[0-9]+$"}}
    upstream: v-regex
  - name: v-prefix
    match: {path: {prefix: /v/}}
    upstream: v-prefix
`)
	c := newClient(t)
	tests := []struct{ path, want string }{
		{"/items/7", "item"},        // regex literal /items/ beats the catch-all
		{"/items/x", "all"},         // the regex does not match
		{"/users/1/orders", "user"}, // template literal /users/ beats the catch-all
		{"/users/1", "all"},         // {*rest} needs its slash
		{"/items/99", "items-long"}, // a longer prefix beats the regex
		{"/items/42", "exact"},      // exact beats everything
		{"/v/1", "v-prefix"},        // a prefix as long as the literal wins
		{"/elsewhere", "all"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := do(t, c, newRequest(t, http.MethodGet, g.URL+tc.path, nil))
			if got := decodeSeen(t, resp, body).Name; got != tc.want {
				t.Errorf("routed to %q, want %q", got, tc.want)
			}
		})
	}
}
