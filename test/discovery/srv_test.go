package discovery

import (
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/discovery/dnstest"
	"github.com/rampart-gw/rampart/test/gwtest"
)

func port(t *testing.T, b *backend) uint16 {
	t.Helper()
	_, p, _ := net.SplitHostPort(b.addr)
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return uint16(n)
}

// TestSRVWeightsAndPriorities: SRV records give the targets, their ports
// and weights (round robin follows them exactly), and priorities:
// priority 0 takes all traffic while it has a healthy target, priority 1
// only once none is left, and traffic returns when one recovers.
func TestSRVWeightsAndPriorities(t *testing.T) {
	dns := dnstest.Start(t)
	a, b, c := newBackend(t, "a", "127.0.0.1:0"), newBackend(t, "b", "127.0.0.1:0"), newBackend(t, "c", "127.0.0.1:0")
	dns.SetSRV("_http._tcp.app.test",
		dnstest.SRV{Priority: 0, Weight: 30, Port: port(t, a), Target: "a.test"},
		dnstest.SRV{Priority: 0, Weight: 10, Port: port(t, b), Target: "b.test"},
		dnstest.SRV{Priority: 1, Weight: 10, Port: port(t, c), Target: "c.test"})
	for _, n := range []string{"a.test", "b.test", "c.test"} {
		dns.SetA(n, "127.0.0.1")
	}
	g := gwtest.Start(t, gwtest.Head+fmt.Sprintf(`upstreams:
  app:
    discovery: {type: srv, name: _http._tcp.app.test, refresh: 100ms, resolver: %q}
    health_check:
      active: {path: /healthz, interval: 50ms, timeout: 5s, healthy_threshold: 1, unhealthy_threshold: 2}
      panic_threshold: 0
routes:
  - {name: all, match: {path: {prefix: /}}, upstream: app}
`, dns.Addr))
	u := upstream(t, g, "app")
	if u.Discovery == nil || u.Discovery.Type != "srv" || len(u.Targets) != 3 {
		t.Fatalf("upstream %+v", u)
	}
	for _, tv := range u.Targets {
		want := map[string][2]int{a.addr: {30, 0}, b.addr: {10, 0}, c.addr: {10, 1}}[tv.Address]
		if tv.Weight != want[0] || tv.Priority != want[1] {
			t.Errorf("target %s weight %d priority %d, want %v", tv.Address, tv.Weight, tv.Priority, want)
		}
	}
	cl := gwtest.Client(t, 5*time.Second)
	count := func(step string, n int) map[string]int {
		t.Helper()
		got := map[string]int{}
		for range n {
			r := get(cl, g.URL+"/")
			if r.status != 200 {
				t.Fatalf("%s: request failed: %d %s; upstream %+v", step, r.status, r.body, upstream(t, g, "app"))
			}
			got[r.backend]++
		}
		return got
	}
	// health waits until the admin API shows exactly the given backends
	// healthy.
	health := func(what string, healthy ...*backend) {
		t.Helper()
		gwtest.WaitFor(t, 15*time.Second, what, func() bool {
			for _, tv := range upstream(t, g, "app").Targets {
				want := false
				for _, h := range healthy {
					want = want || h.addr == tv.Address
				}
				if tv.Healthy != want {
					return false
				}
			}
			return true
		})
	}
	health("all healthy", a, b, c)
	steps := []struct {
		name string
		do   func()
		want map[string]int // of 400 requests
	}{
		{"weights 3:1 in priority 0", func() {}, map[string]int{"a": 300, "b": 100}},
		{"a down: b only", func() {
			a.sick.Store(true)
			health("a unhealthy", b, c)
		}, map[string]int{"b": 400}},
		{"priority 0 down: priority 1", func() {
			b.sick.Store(true)
			health("b unhealthy", c)
		}, map[string]int{"c": 400}},
		{"a back: priority 0 again", func() {
			a.sick.Store(false)
			health("a healthy", a, c)
		}, map[string]int{"a": 400}},
		{"weights changed in DNS", func() {
			b.sick.Store(false)
			dns.SetSRV("_http._tcp.app.test",
				dnstest.SRV{Priority: 0, Weight: 1, Port: port(t, a), Target: "a.test"},
				dnstest.SRV{Priority: 0, Weight: 1, Port: port(t, b), Target: "b.test"},
				dnstest.SRV{Priority: 1, Weight: 10, Port: port(t, c), Target: "c.test"})
			gwtest.WaitFor(t, 15*time.Second, "new weights", func() bool {
				for _, tv := range upstream(t, g, "app").Targets {
					if tv.Address == a.addr && tv.Weight != 1 {
						return false
					}
				}
				return true
			})
			health("all healthy again", a, b, c)
		}, map[string]int{"a": 200, "b": 200}},
	}
	for _, st := range steps {
		st.do()
		got := count(st.name, 400)
		// Round robin follows weights exactly over a cycle; a health
		// verdict that flips under a loaded machine restarts the cycle,
		// so shares are checked to within 5%, and which backends got
		// traffic exactly.
		ok := len(got) == len(st.want)
		for name, n := range st.want {
			ok = ok && got[name] > 0 && (got[name]-n)*(got[name]-n) <= 20*20
		}
		if !ok {
			t.Errorf("%s: requests per backend %v, want %v", st.name, got, st.want)
		}
	}
}
