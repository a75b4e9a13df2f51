package cluster

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/cluster/balancer"
	"github.com/rampart-gw/rampart/internal/cluster/outlier"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/discovery/dnstest"
	"github.com/rampart-gw/rampart/internal/registry"
)

func dnsUpstream(resolver string) *config.Upstream {
	u := upstreamCfg()
	u.Discovery = &config.Discovery{Type: "dns", Name: "app.test", Port: 80, Resolver: resolver,
		Refresh: config.Refresh{Every: config.Duration(20 * time.Millisecond)}, Timeout: config.Duration(200 * time.Millisecond)}
	return u
}

func liveAddrs(u *Upstream) []string {
	var out []string
	for _, t := range u.Live() {
		out = append(out, t.Addr)
	}
	return out
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestDiscoveryOwnedByRegistry: the discovery runs while any snapshot
// holds it, from the first acquire (which returns with the first answer)
// to the last release, and two snapshots with the same settings share
// one discovery and its targets.
func TestDiscoveryOwnedByRegistry(t *testing.T) {
	dns := dnstest.Start(t)
	dns.SetA("app.test", "127.0.0.1")
	reg := registry.New()
	defer reg.Close()
	cfg := dnsUpstream(dns.Addr)
	u1, c1 := acquired(t, reg, "app", cfg, true)
	if got := liveAddrs(u1); !slices.Equal(got, []string{"127.0.0.1:80"}) {
		t.Fatalf("targets after acquire %v, want the first answer", got)
	}
	u2, c2 := acquired(t, reg, "app", dnsUpstream(dns.Addr), true)
	if u1.disc != u2.disc || u1.Live()[0] != u2.Live()[0] {
		t.Fatal("two snapshots with the same discovery do not share it")
	}
	c1.Release()
	q := dns.Queries()
	waitUntil(t, "lookups go on while a snapshot holds the discovery", func() bool { return dns.Queries() > q+4 })
	c2.Release()
	if n := reg.Refs(discoveryKey("app", cfg.Discovery)); n != 0 {
		t.Fatalf("discovery still held %d times", n)
	}
	// Close waited for the goroutine: no query is made after it.
	q = dns.Queries()
	time.Sleep(100 * time.Millisecond) // five refresh periods
	if n := dns.Queries() - q; n != 0 {
		t.Fatalf("%d queries after the last release", n)
	}
}

// TestDiscoveryKeepsTargetState: when discovery's answer changes, a
// target that stays keeps its object (in-flight count, latency), its
// ejection and the snapshot's balancer moves to the new set; one that
// leaves is no longer picked.
func TestDiscoveryKeepsTargetState(t *testing.T) {
	dns := dnstest.Start(t)
	dns.SetA("app.test", "127.0.0.1", "127.0.0.2", "127.0.0.3")
	reg := registry.New()
	defer reg.Close()
	u, c := acquired(t, reg, "app", dnsUpstream(dns.Addr), true)
	defer c.Release()
	before := map[string]*balancer.Target{}
	for _, tg := range u.Live() {
		before[tg.Addr] = tg
	}
	before["127.0.0.1:80"].InFlight.Add(3)
	u.Report("127.0.0.2:80", outlier.ServerError) // ejected: threshold 1
	dns.SetA("app.test", "127.0.0.1", "127.0.0.2", "127.0.0.4")
	waitUntil(t, "the new set", func() bool {
		return slices.Equal(liveAddrs(u), []string{"127.0.0.1:80", "127.0.0.2:80", "127.0.0.4:80"})
	})
	for _, tg := range u.Live() {
		if old := before[tg.Addr]; old != nil && old != tg {
			t.Errorf("target %s was replaced", tg.Addr)
		}
	}
	if n := u.Live()[0].InFlight.Load(); n != 3 {
		t.Errorf("in-flight count %d, want 3", n)
	}
	if !u.State("127.0.0.2:80").Ejected {
		t.Error("the ejection of a target that stayed was lost")
	}
	picked := map[string]int{}
	for range 40 {
		picked[u.Pick(nil).Addr]++
	}
	if picked["127.0.0.3:80"] != 0 || picked["127.0.0.2:80"] != 0 || picked["127.0.0.4:80"] == 0 || picked["127.0.0.1:80"] == 0 {
		t.Errorf("picks %v: want the departed and the ejected target never, the others both", picked)
	}
}

// TestDiscoveryNoTargetMessage: before discovery has succeeded, a call
// fails with 503 no_healthy_upstream and a message naming the cause.
func TestDiscoveryNoTargetMessage(t *testing.T) {
	dns := dnstest.Start(t)
	dns.SetMode(dnstest.ServFail)
	reg := registry.New()
	defer reg.Close()
	u, c := acquired(t, reg, "app", dnsUpstream(dns.Addr), true)
	defer c.Release()
	req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	_, err := u.Do(req, &Policy{})
	e, ok := err.(*Error)
	want := fmt.Sprintf("upstream app has no target: discovery (dns app.test:80 via %s) has not succeeded yet: resolve app.test", dns.Addr)
	if !ok || e.Status != http.StatusServiceUnavailable || e.Code != "no_healthy_upstream" || len(e.Msg) < len(want) || e.Msg[:len(want)] != want {
		t.Fatalf("error %#v\nwant message starting %q", err, want)
	}
}

// TestPriorityLevels: targets are balanced over the lowest priority with
// a healthy target; the next one gets traffic only when none is left.
func TestPriorityLevels(t *testing.T) {
	tests := []struct {
		name    string
		ejected []string
		want    []string // targets picked
	}{
		{"all healthy: priority 0 only", nil, []string{"a:1", "b:1"}},
		{"one of priority 0 left", []string{"a:1"}, []string{"b:1"}},
		{"priority 0 gone: priority 1", []string{"a:1", "b:1"}, []string{"c:1"}},
		{"0 and 1 gone: priority 2", []string{"a:1", "b:1", "c:1"}, []string{"d:1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := upstreamCfg()
			cfg.HealthCheck.PanicThreshold = ptr(0)
			u, err := Build("u", cfg, BuildOptions{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer u.st.close()
			u.Targets = []*balancer.Target{{Addr: "a:1", Weight: 1}, {Addr: "b:1", Weight: 1}, {Addr: "c:1", Weight: 1, Priority: 1}, {Addr: "d:1", Weight: 1, Priority: 2}}
			u.st.configure(cfg, []string{"a:1", "b:1", "c:1", "d:1"}, nil)
			for _, a := range tt.ejected {
				u.Report(a, outlier.ServerError)
			}
			got := map[string]bool{}
			for range 20 {
				got[u.Pick(nil).Addr] = true
			}
			for i := range 20 {
				if o := u.PickOther(nil, []*balancer.Target{u.Pick(nil)}); o != nil && !slices.Contains(tt.want, o.Addr) {
					t.Fatalf("retry %d went to %s, outside the level in use %v", i, o.Addr, tt.want)
				}
			}
			var keys []string
			for k := range got {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if !slices.Equal(keys, tt.want) {
				t.Errorf("picked %v, want %v", keys, tt.want)
			}
		})
	}
}

// TestPoolKeepsAddressAnotherDiscoveryHas: during a reload that changes
// the discovery (old and new run at once, over one pool), the old one
// dropping an address the new one has does not close the pool's
// connections to it.
func TestPoolKeepsAddressAnotherDiscoveryHas(t *testing.T) {
	var opened atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	_, p, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(p)

	dns := dnstest.Start(t)
	dns.SetA("old.test", "127.0.0.1")
	dns.SetA("new.test", "127.0.0.1")
	reg := registry.New()
	defer reg.Close()
	cfgOld, cfgNew := dnsUpstream(dns.Addr), dnsUpstream(dns.Addr)
	cfgOld.Discovery.Name, cfgNew.Discovery.Name = "old.test", "new.test"
	cfgOld.Discovery.Port, cfgNew.Discovery.Port = port, port
	uOld, cOld := acquired(t, reg, "app", cfgOld, true)
	defer cOld.Release()
	uNew, cNew := acquired(t, reg, "app", cfgNew, true)
	defer cNew.Release()
	if uOld.pool != uNew.pool || uOld.disc == uNew.disc {
		t.Fatal("want one pool and two discoveries")
	}
	call := func() {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
		resp, err := uNew.Do(req, &Policy{})
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	call()
	dns.SetA("old.test", "127.0.0.2") // the old discovery drops 127.0.0.1
	waitUntil(t, "the old discovery's new set", func() bool {
		return slices.Equal(liveAddrs(uOld), []string{"127.0.0.2:" + p})
	})
	call()
	call()
	if n := opened.Load(); n != 1 {
		t.Fatalf("%d connections, want 1: the pooled connection was closed for a target the new discovery has", n)
	}
}
