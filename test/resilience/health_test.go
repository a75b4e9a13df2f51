package resilience

import (
	"testing"
	"time"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// activeUpstream is upstream "app" over ss with fast active health checks.
func activeUpstream(ss []*server, extra string) string {
	return "upstreams:\n  app:\n" + targetsYAML(ss) +
		"    health_check:\n      active: {path: /healthz, interval: 50ms, timeout: 500ms, healthy_threshold: 2, unhealthy_threshold: 2}\n" +
		extra
}

// served sends n GETs one by one and counts answers per X-Upstream.
func served(t *testing.T, g *gw, n int) map[string]int {
	t.Helper()
	c := newClient(t)
	got := map[string]int{}
	for range n {
		r := get(c, g.URL+"/x")
		if r.err != nil || r.status != 200 {
			t.Fatalf("request failed: %v %d %s", r.err, r.status, r.body)
		}
		got[r.header.Get("X-Upstream")]++
	}
	return got
}

// TestActiveHealth: a target failing its health path leaves the balancer,
// comes back when it recovers, and its verdict survives a config reload
// that leaves the upstream unchanged.
func TestActiveHealth(t *testing.T) {
	a, b := newServer(t, "a"), newServer(t, "b")
	cfg := activeUpstream([]*server{a, b}, "") + oneRoute("")
	g := start(t, cfg)
	healthy := func(s *server) bool { return g.target(t, "app", s.addr).Healthy }

	b.healthy.Store(false)
	gwtest.WaitFor(t, 5*time.Second, "b marked unhealthy", func() bool { return !healthy(b) })
	if got := served(t, g, 20); got["b"] != 0 {
		t.Errorf("unhealthy b served %d of 20 requests", got["b"])
	}

	// A reload that does not change the upstream keeps b unhealthy: right
	// after it, before any new probe could decide, b gets no traffic.
	g.reload(t, cfg+"  - name: other\n    match: {path: {prefix: /other/}}\n    upstream: app\n")
	if healthy(b) {
		t.Fatal("b is healthy right after a reload: health state was reset")
	}
	if got := served(t, g, 20); got["b"] != 0 {
		t.Errorf("after reload, unhealthy b served %d of 20 requests", got["b"])
	}

	b.healthy.Store(true)
	gwtest.WaitFor(t, 5*time.Second, "b re-admitted", func() bool { return healthy(b) })
	if got := served(t, g, 20); got["b"] == 0 {
		t.Errorf("recovered b served none of 20 requests: %v", got)
	}
}

// TestPassiveEjection: consecutive 5xx eject a target, never more than
// max_ejection_percent of the upstream, and ejected targets come back after
// base_ejection_time on their own.
func TestPassiveEjection(t *testing.T) {
	t.Run("max_ejection_percent", func(t *testing.T) {
		ss := []*server{newServer(t, "a"), newServer(t, "b"), newServer(t, "c"), newServer(t, "d")}
		ss[0].set(modeFail)
		ss[1].set(modeFail)
		g := start(t, "upstreams:\n  app:\n"+targetsYAML(ss)+
			"    health_check:\n      passive: {consecutive_5xx: 3, interval: 10s, base_ejection_time: 30s, max_ejection_percent: 25}\n"+
			oneRoute(""))
		c := newClient(t)
		for range 60 {
			if r := get(c, g.URL+"/x"); r.err != nil {
				t.Fatal(r.err)
			}
		}
		ejected := 0
		for _, tv := range g.upstreams(t)["app"].Targets {
			if tv.Ejected {
				ejected++
				if tv.Address != ss[0].addr && tv.Address != ss[1].addr {
					t.Errorf("healthy target %s ejected", tv.Address)
				}
				if tv.EjectedUntil == nil || time.Until(*tv.EjectedUntil) <= 0 || time.Until(*tv.EjectedUntil) > 31*time.Second {
					t.Errorf("ejected_until %v, want within base_ejection_time from now", tv.EjectedUntil)
				}
			}
		}
		if ejected != 1 {
			t.Fatalf("%d of 4 targets ejected, want 1 (2 failing, max_ejection_percent 25)", ejected)
		}
		// The failing target that could not be ejected still takes traffic.
		before := ss[0].hits.Load() + ss[1].hits.Load()
		for range 30 {
			get(c, g.URL+"/x")
		}
		if ss[0].hits.Load()+ss[1].hits.Load() == before {
			t.Error("the second failing target got no traffic although it cannot be ejected")
		}
	})

	t.Run("re-admission after base_ejection_time", func(t *testing.T) {
		a, b := newServer(t, "a"), newServer(t, "b")
		a.set(modeFail)
		g := start(t, "upstreams:\n  app:\n"+targetsYAML([]*server{a, b})+
			"    health_check:\n      passive: {consecutive_5xx: 3, interval: 10s, base_ejection_time: 200ms, max_ejection_percent: 50}\n"+
			oneRoute(""))
		c := newClient(t)
		ejected := func() bool { return g.target(t, "app", a.addr).Ejected }
		deadline := time.Now().Add(5 * time.Second)
		for !ejected() {
			if time.Now().After(deadline) {
				t.Fatal("a was not ejected after consecutive 5xx")
			}
			get(c, g.URL+"/x")
		}
		hits := a.hits.Load()
		// While ejected (and without traffic) a is re-admitted on its own.
		gwtest.WaitFor(t, 5*time.Second, "a re-admitted", func() bool { return !ejected() })
		a.set(modeOK)
		got := served(t, g, 20)
		if got["a"] == 0 || a.hits.Load() == hits {
			t.Errorf("re-admitted a got no traffic: %v", got)
		}
	})
}

// TestFailover: when every target of primary is unhealthy, traffic goes to
// its failover upstream, and returns once primary recovers.
func TestFailover(t *testing.T) {
	p, dr := newServer(t, "primary"), newServer(t, "dr")
	g := start(t, `upstreams:
  primary:
    targets: [{address: "`+p.addr+`"}]
    failover: dr
    health_check:
      active: {path: /healthz, interval: 50ms, timeout: 500ms, healthy_threshold: 2, unhealthy_threshold: 2}
  dr:
    targets: [{address: "`+dr.addr+`"}]
routes:
  - name: app
    match: {path: {prefix: /}}
    upstream: primary
`)
	c := newClient(t)
	goesTo := func(name string) func() bool {
		return func() bool {
			r := get(c, g.URL+"/x")
			return r.err == nil && r.status == 200 && r.header.Get("X-Upstream") == name
		}
	}
	if !goesTo("primary")() {
		t.Fatal("a healthy primary does not serve")
	}
	p.healthy.Store(false)
	gwtest.WaitFor(t, 5*time.Second, "traffic on dr", goesTo("dr"))
	if got := served(t, g, 10); got["dr"] != 10 {
		t.Errorf("primary down: want all 10 on dr, got %v", got)
	}
	p.healthy.Store(true)
	gwtest.WaitFor(t, 5*time.Second, "traffic back on primary", goesTo("primary"))
	if got := served(t, g, 10); got["primary"] != 10 {
		t.Errorf("primary recovered: want all 10 on primary, got %v", got)
	}
}
