package resilience

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// targetsYAML renders servers as a targets list, with weights when given.
func targetsYAML(ss []*server, weights ...int) string {
	var b strings.Builder
	b.WriteString("    targets:\n")
	for i, s := range ss {
		w := 1
		if i < len(weights) {
			w = weights[i]
		}
		fmt.Fprintf(&b, "      - {address: %q, weight: %d}\n", s.addr, w)
	}
	return b.String()
}

// oneRoute is a catch-all route to upstream "app" with extra route keys.
func oneRoute(extra string) string {
	s := "routes:\n  - name: app\n    match: {path: {prefix: /}}\n    upstream: app\n"
	if extra != "" {
		s += extra
	}
	return s
}

// counts sends n GETs from workers goroutines and counts answers by
// X-Upstream; failures are counted under "".
func counts(c interface {
	do(i int) reply
}, n, workers int) map[string]int {
	var mu sync.Mutex
	out := map[string]int{}
	var wg sync.WaitGroup
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				r := c.do(i)
				k := ""
				if r.err == nil && r.status == 200 {
					k = r.header.Get("X-Upstream")
				}
				mu.Lock()
				out[k]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}

type doFunc func(i int) reply

func (f doFunc) do(i int) reply { return f(i) }

// TestBalancerDistribution checks how each balancer spreads requests over
// real targets through the gateway.
func TestBalancerDistribution(t *testing.T) {
	tests := []struct {
		name     string
		balancer string
		weights  []int
		slow     time.Duration // delay of target a; 0 = none
		fast     time.Duration // delay of the others
		n        int
		workers  int
		check    func(t *testing.T, got map[string]int, n int)
	}{
		{
			name: "round_robin/weights-3-1", balancer: "round_robin", weights: []int{3, 1}, n: 400, workers: 4,
			check: func(t *testing.T, got map[string]int, n int) { share(t, got, "a", n, 0.70, 0.80) },
		},
		{
			name: "random/weights-3-1", balancer: "random", weights: []int{3, 1}, n: 1200, workers: 8,
			check: func(t *testing.T, got map[string]int, n int) { share(t, got, "a", n, 0.68, 0.82) },
		},
		{
			// Target a answers in 100ms, b at once: a's in-flight count
			// grows, and power-of-two-choices over two targets then picks b.
			name: "least_request/prefers-less-loaded", balancer: "least_request", slow: 100 * time.Millisecond,
			n: 240, workers: 8,
			check: func(t *testing.T, got map[string]int, n int) { share(t, got, "a", n, 0, 0.25) },
		},
		{
			// Target a is ten times slower than its three peers.
			name: "ewma/steers-away-from-slow", balancer: "ewma", weights: []int{1, 1, 1, 1},
			slow: 50 * time.Millisecond, fast: 5 * time.Millisecond, n: 300, workers: 6,
			check: func(t *testing.T, got map[string]int, n int) { share(t, got, "a", n, 0, 0.15) },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := max(len(tc.weights), 2)
			ss := make([]*server, k)
			for i := range ss {
				ss[i] = newServer(t, string(rune('a'+i)))
				ss[i].delay.Store(int64(tc.fast))
			}
			if tc.slow > 0 {
				ss[0].delay.Store(int64(tc.slow))
			}
			g := start(t, "upstreams:\n  app:\n    balancer: "+tc.balancer+"\n"+targetsYAML(ss, tc.weights...)+oneRoute(""))
			c := newClient(t)
			got := counts(doFunc(func(int) reply { return get(c, g.URL+"/x") }), tc.n, tc.workers)
			t.Logf("%s: %v", tc.balancer, got)
			if got[""] > 0 {
				t.Fatalf("%d requests failed", got[""])
			}
			tc.check(t, got, tc.n)
		})
	}
}

// share asserts that target name served a share of n within [lo, hi].
func share(t *testing.T, got map[string]int, name string, n int, lo, hi float64) {
	t.Helper()
	f := float64(got[name]) / float64(n)
	if f < lo || f > hi {
		t.Errorf("target %s served %d of %d (%.1f%%), want %.0f%%-%.0f%%", name, got[name], n, 100*f, 100*lo, 100*hi)
	}
}

// TestHashAffinity checks ring_hash and maglev keyed by a header: the same
// X-User-ID always lands on the same target, and removing a target by a
// config reload moves only that target's keys.
func TestHashAffinity(t *testing.T) {
	const ids = 500
	for _, tc := range []struct {
		balancer string
		maxMoved float64 // share of the remaining targets' keys allowed to move
	}{
		{"ring_hash", 0},
		{"maglev", 0.02}, // Maglev's disruption is near-minimal, not zero (paper §3.4)
	} {
		t.Run(tc.balancer, func(t *testing.T) {
			ss := []*server{newServer(t, "a"), newServer(t, "b"), newServer(t, "c")}
			up := func(ss []*server) string {
				return "upstreams:\n  app:\n    balancer: " + tc.balancer + "\n    hash_key: \"header:X-User-ID\"\n" +
					targetsYAML(ss) + oneRoute("")
			}
			g := start(t, up(ss))
			c := newClient(t)
			where := func() map[string]string {
				m := map[string]string{}
				var mu sync.Mutex
				got := counts(doFunc(func(i int) reply {
					r := send(c, "GET", g.URL+"/x", nil, map[string]string{"X-User-ID": "user-" + strconv.Itoa(i)})
					mu.Lock()
					m["user-"+strconv.Itoa(i)] = r.header.Get("X-Upstream")
					mu.Unlock()
					return r
				}), ids, 8)
				if got[""] > 0 {
					t.Fatalf("%d requests failed", got[""])
				}
				return m
			}
			before := where()
			again := where()
			perTarget := map[string]int{}
			for id, tgt := range before {
				perTarget[tgt]++
				if again[id] != tgt {
					t.Errorf("%s went to %s, then to %s", id, tgt, again[id])
				}
			}
			t.Logf("%s: keys per target %v", tc.balancer, perTarget)
			for _, s := range ss {
				if perTarget[s.name] < ids/10 {
					t.Errorf("target %s has only %d of %d keys", s.name, perTarget[s.name], ids)
				}
			}

			g.reload(t, up(ss[:2])) // remove c
			after := where()
			kept, moved, rehomed := 0, 0, 0
			for id, was := range before {
				is := after[id]
				if is == "c" {
					t.Fatalf("%s still goes to the removed target", id)
				}
				if was == "c" {
					rehomed++
					continue
				}
				kept++
				if is != was {
					moved++
				}
			}
			t.Logf("%s: after removing c, %d of %d other keys moved; %d keys of c re-homed", tc.balancer, moved, kept, rehomed)
			if float64(moved) > tc.maxMoved*float64(kept) {
				t.Errorf("%d of %d keys of the remaining targets moved, limit %.0f%%", moved, kept, 100*tc.maxMoved)
			}
		})
	}
}

// TestHashByIPIsThePeer pins what docs/balancing.md says of hash_key: ip:
// it hashes the TCP peer, not an address named in X-Forwarded-For, so that
// behind a proxy every client of that proxy lands on one target; a header
// the proxy sets (header:X-Real-IP) spreads them.
func TestHashByIPIsThePeer(t *testing.T) {
	const clients = 40
	for _, tc := range []struct {
		key    string
		spread bool // whether the clients behind the one peer spread
	}{
		{"ip", false},
		{"header:X-Real-IP", true},
	} {
		t.Run(tc.key, func(t *testing.T) {
			ss := []*server{newServer(t, "a"), newServer(t, "b"), newServer(t, "c"), newServer(t, "d")}
			g := start(t, "upstreams:\n  app:\n    balancer: maglev\n    hash_key: \""+tc.key+"\"\n"+targetsYAML(ss)+oneRoute(""))
			c := newClient(t)
			got := counts(doFunc(func(i int) reply {
				client := "203.0.113." + strconv.Itoa(i+1)
				return send(c, "GET", g.URL+"/x", nil, map[string]string{"X-Forwarded-For": client, "X-Real-IP": client})
			}), clients, 4)
			if got[""] > 0 {
				t.Fatalf("%d requests failed", got[""])
			}
			t.Logf("hash_key %s: %d clients behind 127.0.0.1 per target %v", tc.key, clients, got)
			if spread := len(got) > 1; spread != tc.spread {
				t.Errorf("hash_key %s: clients behind one peer spread over %d targets (%v); want spread %v", tc.key, len(got), got, tc.spread)
			}
		})
	}
}
