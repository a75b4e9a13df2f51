package discovery

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/discovery/dnstest"
	"github.com/rampart-gw/rampart/test/gwtest"
)

// dnsConfig is a gateway whose upstream app finds its targets by DNS.
func dnsConfig(resolver, name string, port int, extra string) string {
	return gwtest.Head + fmt.Sprintf(`upstreams:
  app:
    discovery: {type: dns, name: %s, port: %d, refresh: 100ms, timeout: 300ms, resolver: %q}
%sroutes:
  - {name: all, match: {path: {prefix: /}}, upstream: app}
`, name, port, resolver, extra)
}

// TestDNSChurnUnderLoad changes the A and AAAA records under a steady
// load: targets that appear get traffic, targets that disappear get no
// new requests, their requests in flight finish, and their pooled
// connections are closed, before the instance stops. No request fails
// (the route has no retries to hide a failure).
func TestDNSChurnUnderLoad(t *testing.T) {
	dns := dnstest.Start(t)
	v4, v6, port := pair(t)
	dns.SetA("app.test", "127.0.0.1", "::1")
	g := gwtest.Start(t, dnsConfig(dns.Addr, "app.test", port, ""))
	a4, a6 := "127.0.0.1:"+strconv.Itoa(port), net.JoinHostPort("::1", strconv.Itoa(port))
	if got := addrs(t, g, "app"); !slices.Equal(got, []string{a4, a6}) {
		t.Fatalf("targets at start %v, want %v (the first lookup happens before the config serves)", got, []string{a4, a6})
	}
	l := startLoad(t, g.URL+"/", 4)
	slow := gwtest.Client(t, 10*time.Second)

	bs := map[string]*backend{"v4": v4, "v6": v6}
	type step struct {
		name        string
		keep, leave string // the instance that stays in DNS, and the one that leaves, then stops
		leaveA      string
	}
	// Each round: the leaving instance is dropped from DNS while slow
	// requests run on it, drained, stopped, and a new instance on the
	// same address comes back.
	rounds := []step{{"v6 leaves", "v4", "v6", a6}, {"v4 leaves", "v6", "v4", a4}, {"v6 leaves again", "v4", "v6", a6}}
	for _, st := range rounds {
		r := struct {
			name        string
			keep, leave *backend
			leaveA      string
		}{st.name, bs[st.keep], bs[st.leave], st.leaveA}
		gwtest.WaitFor(t, 15*time.Second, "traffic on both instances", func() bool {
			return r.keep.hits.Load() > 0 && r.leave.hits.Load() > 0
		})
		// Slow requests in flight on both instances (round robin over two
		// targets: four requests reach each at least once).
		var wg sync.WaitGroup
		var slowFailed []string
		var mu sync.Mutex
		before := r.leave.hits.Load()
		for range 4 {
			wg.Go(func() {
				if rep := get(slow, g.URL+"/slow"); rep.status != http.StatusOK {
					mu.Lock()
					slowFailed = append(slowFailed, fmt.Sprintf("%d %s", rep.status, rep.body))
					mu.Unlock()
				}
			})
		}
		gwtest.WaitFor(t, 15*time.Second, "a slow request on the leaving instance", func() bool { return r.leave.hits.Load() > before })
		ip, _, _ := net.SplitHostPort(r.keep.addr)
		dns.SetA("app.test", ip)
		gwtest.WaitFor(t, 15*time.Second, r.name+": target removed", func() bool {
			return !slices.Contains(addrs(t, g, "app"), r.leaveA)
		})
		wg.Wait()
		if len(slowFailed) > 0 {
			t.Errorf("%s: requests in flight on the leaving target failed: %v", r.name, slowFailed)
		}
		// Its pooled connections close although the instance still runs.
		gwtest.WaitFor(t, 15*time.Second, r.name+": pooled connections to the departed target closed", func() bool {
			return r.leave.open.Load() == 0
		})
		gone := r.leave.hits.Load()
		time.Sleep(200 * time.Millisecond) // under load: nothing more reaches it
		if n := r.leave.hits.Load() - gone; n != 0 {
			t.Errorf("%s: %d requests reached the departed target", r.name, n)
		}
		r.leave.stop()
		// A new instance on the same address, then back in DNS.
		bs[st.leave] = newBackend(t, r.leave.name, r.leave.addr)
		dns.SetA("app.test", "127.0.0.1", "::1")
		gwtest.WaitFor(t, 15*time.Second, r.name+": the target is back", func() bool {
			return slices.Contains(addrs(t, g, "app"), r.leaveA)
		})
	}
	l.stop()
	t.Logf("churn: %d requests ok, %d failed", l.ok.Load(), l.failed.Load())
	if n := l.failed.Load(); n != 0 {
		t.Errorf("%d requests failed during churn: %v", n, l.errs)
	}
	if l.ok.Load() < 100 {
		t.Errorf("only %d requests under load", l.ok.Load())
	}
	if v, ok := metric(t, g, "rampart_discovery_targets", lbl("upstream", "app")); !ok || v != 2 {
		t.Errorf("rampart_discovery_targets = %v (found %v), want 2", v, ok)
	}
	if v, _ := metric(t, g, "rampart_discovery_lookups_total", lbl("upstream", "app"), lbl("result", "ok")); v < 3 {
		t.Errorf("rampart_discovery_lookups_total{result=ok} = %v", v)
	}
}

// TestDNSFailureKeepsTargets: a DNS server that fails in any way after a
// good answer leaves the targets as they were, requests keep being
// served, and the admin API shows the error; an empty answer too.
func TestDNSFailureKeepsTargets(t *testing.T) {
	tests := []struct {
		name  string
		fail  func(*dnstest.Server)
		error string
	}{
		{"servfail", func(s *dnstest.Server) { s.SetMode(dnstest.ServFail) }, "SERVFAIL"},
		{"garbage", func(s *dnstest.Server) { s.SetMode(dnstest.Garbage) }, "app.test"},
		{"timeout", func(s *dnstest.Server) { s.SetMode(dnstest.Silent) }, "timeout"},
		{"nxdomain", func(s *dnstest.Server) { s.SetA("app.test") }, "NXDOMAIN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dns := dnstest.Start(t)
			v4, v6, port := pair(t)
			dns.SetA("app.test", "127.0.0.1", "::1")
			g := gwtest.Start(t, dnsConfig(dns.Addr, "app.test", port, ""))
			c := gwtest.Client(t, 5*time.Second)
			tt.fail(dns)
			gwtest.WaitFor(t, 15*time.Second, "failed lookups", func() bool {
				d := upstream(t, g, "app").Discovery
				return d != nil && d.Failures >= 2
			})
			u := upstream(t, g, "app")
			if len(u.Targets) != 2 || !strings.Contains(u.Discovery.LastError, tt.error) || u.Discovery.LastRefresh == nil {
				t.Errorf("upstream %+v, discovery %+v: want both targets kept and the error", u, *u.Discovery)
			}
			for i := range 10 {
				if r := get(c, g.URL+"/"); r.status != http.StatusOK {
					t.Fatalf("request %d during the DNS failure: %d %s", i, r.status, r.body)
				}
			}
			if v4.hits.Load() == 0 || v6.hits.Load() == 0 {
				t.Errorf("hits v4=%d v6=%d: both kept targets should serve", v4.hits.Load(), v6.hits.Load())
			}
		})
	}
}

// TestDNSNeverSucceeded: until discovery has found anything, the
// upstream has no target and answers 503 saying why.
func TestDNSNeverSucceeded(t *testing.T) {
	dns := dnstest.Start(t)
	dns.SetMode(dnstest.ServFail)
	_, _, port := pair(t)
	g := gwtest.Start(t, dnsConfig(dns.Addr, "app.test", port, ""))
	r := get(gwtest.Client(t, 5*time.Second), g.URL+"/")
	e := decodeError(t, r.body)
	if r.status != http.StatusServiceUnavailable || e.Error.Code != "no_healthy_upstream" ||
		!strings.Contains(e.Error.Message, "has not succeeded yet") || !strings.Contains(e.Error.Message, "SERVFAIL") {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	if d := upstream(t, g, "app").Discovery; d == nil || d.LastRefresh != nil || d.Targets != 0 {
		t.Errorf("discovery %+v", d)
	}
	// Once DNS answers, the upstream serves.
	dns.SetA("app.test", "127.0.0.1")
	dns.SetMode(dnstest.Answer)
	c := gwtest.Client(t, 5*time.Second)
	gwtest.WaitFor(t, 15*time.Second, "the first answer", func() bool { return get(c, g.URL+"/").status == http.StatusOK })
}

// TestDNSKeepsHealth: a target that stays in DNS keeps its health
// verdict when others come and go, and the discovered set survives a
// reload that does not change the discovery.
func TestDNSKeepsHealth(t *testing.T) {
	dns := dnstest.Start(t)
	v4, _, port := pair(t)
	v4.sick.Store(true)
	dns.SetA("app.test", "127.0.0.1")
	hc := "    health_check: {active: {path: /healthz, interval: 1m, unhealthy_threshold: 1}, panic_threshold: 0}\n"
	g := gwtest.Start(t, dnsConfig(dns.Addr, "app.test", port, hc))
	a4, a6 := "127.0.0.1:"+strconv.Itoa(port), net.JoinHostPort("::1", strconv.Itoa(port))
	healthy := func(addr string) (bool, bool) {
		for _, tv := range upstream(t, g, "app").Targets {
			if tv.Address == addr {
				return tv.Healthy, true
			}
		}
		return false, false
	}
	gwtest.WaitFor(t, 15*time.Second, "v4 unhealthy", func() bool { h, ok := healthy(a4); return ok && !h })
	dns.SetA("app.test", "127.0.0.1", "::1")
	gwtest.WaitFor(t, 15*time.Second, "v6 added", func() bool { _, ok := healthy(a6); return ok })
	// The next probe of v4 is a minute away: a reset verdict would show.
	if h, _ := healthy(a4); h {
		t.Fatal("v4's unhealthy verdict was reset when the target set changed")
	}
	c := gwtest.Client(t, 5*time.Second)
	for range 5 {
		if r := get(c, g.URL+"/"); r.backend != "v6" {
			t.Fatalf("request served by %q (%d %s), want the healthy v6", r.backend, r.status, r.body)
		}
	}
	// A reload that changes something else keeps the targets and verdicts.
	g.Reload(t, dnsConfig(dns.Addr, "app.test", port, hc)+"  - {name: other, match: {path: {prefix: /other}}, upstream: app}\n")
	if got := addrs(t, g, "app"); !slices.Equal(got, []string{a4, a6}) {
		t.Errorf("targets after reload %v", got)
	}
	if h, _ := healthy(a4); h {
		t.Error("v4's verdict was reset by the reload")
	}
}
