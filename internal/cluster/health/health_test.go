package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// fakeProbe answers from a per-address script and records when it ran.
type fakeProbe struct {
	mu    sync.Mutex
	fail  map[string]bool
	panic map[string]bool
	calls map[string][]time.Time
}

func newFakeProbe() *fakeProbe {
	return &fakeProbe{fail: map[string]bool{}, panic: map[string]bool{}, calls: map[string][]time.Time{}}
}

func (p *fakeProbe) Probe(_ context.Context, addr string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls[addr] = append(p.calls[addr], time.Now())
	if p.panic[addr] {
		panic("probe exploded")
	}
	if p.fail[addr] {
		return errors.New("down")
	}
	return nil
}

func (p *fakeProbe) set(addr string, fail bool) {
	p.mu.Lock()
	p.fail[addr] = fail
	p.mu.Unlock()
}

func (p *fakeProbe) count(addr string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.calls[addr])
}

type event struct {
	addr    string
	healthy bool
}

type recorder struct {
	mu     sync.Mutex
	events []event
}

func (r *recorder) OnChange(addr string, healthy bool) {
	r.mu.Lock()
	r.events = append(r.events, event{addr, healthy})
	r.mu.Unlock()
}

func (r *recorder) take() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.events
	r.events = nil
	return e
}

// TestThresholds feeds a script of probe outcomes, one per interval, and
// checks the state after each probe.
func TestThresholds(t *testing.T) {
	const ok, bad = false, true
	tests := []struct {
		name      string
		cfg       Config
		script    []bool // fail? per probe
		want      []bool // healthy after each probe
		wantFlips int
	}{
		{"starts healthy and stays", Config{}, []bool{ok, ok}, []bool{true, true}, 0},
		{"three failures flip to unhealthy", Config{}, []bool{bad, bad, bad, bad}, []bool{true, true, false, false}, 1},
		{"a success resets the failure count", Config{}, []bool{bad, bad, ok, bad, bad}, []bool{true, true, true, true, true}, 0},
		{"two successes bring it back", Config{}, []bool{bad, bad, bad, ok, ok}, []bool{true, true, false, false, true}, 2},
		{"initial unhealthy", Config{InitialUnhealthy: true}, []bool{ok, ok, ok}, []bool{false, true, true}, 1},
		{"thresholds of one", Config{HealthyThreshold: 1, UnhealthyThreshold: 1}, []bool{bad, ok, bad}, []bool{false, true, false}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newFakeProbe()
				rec := &recorder{}
				cfg := tt.cfg
				cfg.Interval = 10 * time.Second
				c := New(cfg, Deps{Probe: p.Probe, OnChange: rec.OnChange, Rand: func() float64 { return 0.5 }})
				c.Update([]string{"a:1"})
				p.set("a:1", tt.script[0])
				c.Start(t.Context())
				for i := range tt.script {
					if i > 0 {
						p.set("a:1", tt.script[i])
						time.Sleep(10 * time.Second)
					}
					synctest.Wait()
					if n := p.count("a:1"); n != i+1 {
						t.Fatalf("probe %d: %d probes ran", i, n)
					}
					if got := c.Healthy("a:1"); got != tt.want[i] {
						t.Fatalf("after probe %d: Healthy = %v, want %v", i, got, tt.want[i])
					}
				}
				if got := rec.take(); len(got) != tt.wantFlips {
					t.Fatalf("OnChange events %v, want %d", got, tt.wantFlips)
				}
				c.Close()
			})
		})
	}
}

func TestJitteredInterval(t *testing.T) {
	tests := []struct {
		name string
		rnd  float64
		want time.Duration
	}{
		{"low end", 0, 9 * time.Second},
		{"middle", 0.5, 10 * time.Second},
		{"high end", 0.999999, 11 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newFakeProbe()
				c := New(Config{Interval: 10 * time.Second}, Deps{Probe: p.Probe, Rand: func() float64 { return tt.rnd }})
				c.Update([]string{"a:1"})
				start := time.Now()
				c.Start(t.Context())
				time.Sleep(35 * time.Second)
				c.Close()
				p.mu.Lock()
				defer p.mu.Unlock()
				calls := p.calls["a:1"]
				if calls[0] != start {
					t.Fatalf("first probe at +%v, want immediately", calls[0].Sub(start))
				}
				for i := 1; i < len(calls); i++ {
					if d := calls[i].Sub(calls[i-1]); d.Round(time.Millisecond) != tt.want {
						t.Fatalf("gap %d = %v, want %v", i, d, tt.want)
					}
				}
			})
		})
	}
}

func TestUpdateKeepsState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newFakeProbe()
		rec := &recorder{}
		c := New(Config{Interval: time.Second, UnhealthyThreshold: 1}, Deps{Probe: p.Probe, OnChange: rec.OnChange})
		p.set("a:1", true)
		c.Update([]string{"a:1", "b:1"})
		c.Start(t.Context())
		synctest.Wait()
		if c.Healthy("a:1") || !c.Healthy("b:1") {
			t.Fatalf("a %v b %v, want a down, b up", c.Healthy("a:1"), c.Healthy("b:1"))
		}

		// A reload: a stays (and stays unhealthy), b goes, c arrives and is
		// probed at once.
		p.set("c:1", true)
		c.Update([]string{"a:1", "c:1"})
		synctest.Wait()
		if c.Healthy("a:1") {
			t.Fatal("a became healthy across Update")
		}
		if c.Healthy("c:1") || p.count("c:1") != 1 {
			t.Fatalf("c not probed at once: count %d", p.count("c:1"))
		}
		nb := p.count("b:1")
		time.Sleep(5 * time.Second)
		if p.count("b:1") != nb {
			t.Fatal("removed target still probed")
		}
		if !c.Healthy("z:1") {
			t.Fatal("unknown target not reported in the initial (healthy) state")
		}
		if got := rec.take(); len(got) != 2 || got[0].healthy || got[1].healthy {
			t.Fatalf("events %v, want a and c down", got)
		}
		c.Close()
		c.Update([]string{"d:1"}) // after Close: no new goroutine
	})
}

func TestPanickingProbeIsAFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newFakeProbe()
		p.panic["a:1"] = true
		c := New(Config{Interval: time.Second, UnhealthyThreshold: 2}, Deps{Probe: p.Probe})
		c.Update([]string{"a:1"})
		c.Start(t.Context())
		time.Sleep(1500 * time.Millisecond)
		if c.Healthy("a:1") {
			t.Fatal("two panicking probes did not mark the target unhealthy")
		}
		if s := c.Snapshot(); len(s) != 1 || s[0].LastError == "" {
			t.Fatalf("Snapshot %+v", s)
		}
		c.Close()
	})
}

func TestContextStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newFakeProbe()
		c := New(Config{Interval: time.Second}, Deps{Probe: p.Probe})
		c.Update([]string{"a:1", "b:1"})
		ctx, cancel := context.WithCancel(t.Context())
		c.Start(ctx)
		time.Sleep(3500 * time.Millisecond)
		cancel()
		synctest.Wait() // the bubble fails if a goroutine is left running
		n := p.count("a:1")
		time.Sleep(10 * time.Second)
		if p.count("a:1") != n {
			t.Fatal("probes continue after the context ended")
		}
		c.Close()
	})
}

// flaky is a real upstream on 127.0.0.1 whose health endpoint answers with
// a status set by the test, and which checks what the probe sent.
type flaky struct {
	srv    *httptest.Server
	status atomic.Int32
	host   atomic.Pointer[string]
	path   atomic.Pointer[string]
}

func newFlaky(t *testing.T) *flaky {
	f := &flaky{}
	f.status.Store(200)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.host.Store(&r.Host)
		f.path.Store(&r.URL.Path)
		if s := int(f.status.Load()); s >= 300 && s < 400 {
			http.Redirect(w, r, "/elsewhere", s)
			return
		}
		w.WriteHeader(int(f.status.Load()))
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *flaky) addr() string { return f.srv.Listener.Addr().String() }

// closedPort returns a 127.0.0.1 address nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestHTTPProbe(t *testing.T) {
	f := newFlaky(t)
	c := New(Config{Path: "healthz", Host: "users.internal"}, Deps{})
	defer c.Close()
	tests := []struct {
		name    string
		status  int
		addr    string
		healthy bool
	}{
		{"200", 200, f.addr(), true},
		{"204", 204, f.addr(), true},
		{"302 is not followed and is healthy", 302, f.addr(), true},
		{"404", 404, f.addr(), false},
		{"500", 500, f.addr(), false},
		{"503", 503, f.addr(), false},
		{"refused", 200, closedPort(t), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.status.Store(int32(tt.status))
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			err := c.httpProbe(ctx, tt.addr)
			if (err == nil) != tt.healthy {
				t.Fatalf("probe = %v, want healthy %v", err, tt.healthy)
			}
			if tt.status >= 400 && !errors.Is(err, ErrStatus) {
				t.Fatalf("err %v does not wrap ErrStatus", err)
			}
		})
	}
	if h, p := *f.host.Load(), *f.path.Load(); h != "users.internal" || p != "/healthz" {
		t.Fatalf("probe sent Host %q path %q", h, p)
	}
}

// TestRealUpstreams runs the Checker with its real HTTP and TCP probes
// against real sockets on 127.0.0.1, inside a synctest bubble. The servers
// live outside the bubble; the probe transport does not keep connections
// alive, so that no goroutine of the bubble waits on the network between
// probes and the fake clock can advance.
func TestRealUpstreams(t *testing.T) {
	tests := []struct {
		name string
		tcp  bool
	}{
		{"http", false},
		{"tcp", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			good, flap := newFlaky(t), newFlaky(t)
			dead := closedPort(t)
			synctest.Test(t, func(t *testing.T) {
				rec := &recorder{}
				c := New(Config{Path: "/healthz", Interval: 5 * time.Second, Timeout: time.Second,
					HealthyThreshold: 2, UnhealthyThreshold: 2, TCP: tt.tcp},
					Deps{Transport: &http.Transport{DisableKeepAlives: true}, OnChange: rec.OnChange})
				c.Update([]string{good.addr(), flap.addr(), dead})
				c.Start(t.Context())
				defer c.Close()

				step := func(what string, want map[string]bool) {
					t.Helper()
					synctest.Wait()
					for a, w := range want {
						if got := c.Healthy(a); got != w {
							t.Fatalf("%s: Healthy(%s) = %v, want %v; %+v", what, a, got, w, c.Snapshot())
						}
					}
				}
				step("first probe", map[string]bool{good.addr(): true, flap.addr(): true, dead: true})
				time.Sleep(6 * time.Second)
				step("dead port removed after two probes", map[string]bool{good.addr(): true, flap.addr(): true, dead: false})

				flap.status.Store(500)
				time.Sleep(12 * time.Second)
				want500 := !tt.tcp // a TCP check only sees that the port accepts
				step("500s", map[string]bool{good.addr(): true, flap.addr(): !want500, dead: false})

				flap.status.Store(200)
				time.Sleep(12 * time.Second)
				step("back to 200", map[string]bool{good.addr(): true, flap.addr(): true, dead: false})

				flap.srv.Close() // the whole server goes away
				time.Sleep(12 * time.Second)
				step("server gone", map[string]bool{good.addr(): true, flap.addr(): false, dead: false})

				wantEvents := []event{{dead, false}}
				if !tt.tcp {
					wantEvents = append(wantEvents, event{flap.addr(), false}, event{flap.addr(), true})
				}
				wantEvents = append(wantEvents, event{flap.addr(), false})
				if got := rec.take(); fmt.Sprint(got) != fmt.Sprint(wantEvents) {
					t.Fatalf("events %v, want %v", got, wantEvents)
				}
			})
		})
	}
}
