package concurrency

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/rampart-gw/rampart/internal/exchange"
	"github.com/rampart-gw/rampart/internal/policy"
	"github.com/rampart-gw/rampart/internal/policy/policytest"
	"github.com/rampart-gw/rampart/internal/registry"
	"github.com/rampart-gw/rampart/internal/telemetry"
)

func TestConfigErrors(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"valid", "max_in_flight: 2\n    max_queue: 3\n    queue_timeout: 50ms", ""},
		{"missing", "max_queue: 3", "max_in_flight is required"},
		{"negative queue", "max_in_flight: 1\n    max_queue: -1", "must not be negative"},
		{"timeout without queue", "max_in_flight: 1\n    queue_timeout: 1s", "needs max_queue"},
		{"not a number", "max_in_flight: many", "expected an integer"},
		{"priority valid", "max_in_flight: 2\n    max_queue: 3\n    priority: {by_role: {premium: 0, free: 2}, default: 1, max_queue: {2: 1}}", ""},
		{"priority without roles", "max_in_flight: 2\n    priority: {default: 1}", "test.yaml:5:15: policies.c.priority.by_role: priority needs by_role (role: class, 0 served first)"},
		{"class out of range", "max_in_flight: 2\n    priority: {by_role: {free: 16}}", "test.yaml:5:32: policies.c.priority.by_role.free: class 16 out of range 0-15"},
		{"default out of range", "max_in_flight: 2\n    priority: {by_role: {free: 1}, default: -1}", "policies.c.priority.default: class -1 out of range 0-15"},
		{"queue of unused class", "max_in_flight: 2\n    priority: {by_role: {free: 1}, max_queue: {3: 5}}", "policies.c.priority.max_queue.3: class 3 is not used by by_role or default"},
		{"negative class queue", "max_in_flight: 2\n    priority: {by_role: {free: 1}, max_queue: {1: -5}}", "policies.c.priority.max_queue.1: max_queue must not be negative"},
		{"class not a number", "max_in_flight: 2\n    priority: {by_role: {free: 1}, max_queue: {low: 5}}", `policies.c.priority.max_queue.low: invalid class "low" (want a number 0-15)`},
		{"adaptive valid", "adaptive: {min: 10, max: 1000, target_latency: 50ms}\n    max_queue: 10", ""},
		{"adaptive with max_in_flight", "max_in_flight: 10\n    adaptive: {min: 1, max: 10, target_latency: 50ms}", "test.yaml:4:20: policies.c.max_in_flight: max_in_flight and adaptive are exclusive"},
		{"adaptive max below min", "adaptive: {min: 10, max: 5, target_latency: 50ms}", "policies.c.adaptive.max: max is required, between min and 16777216"},
		{"adaptive without target", "adaptive: {min: 1, max: 5}", "policies.c.adaptive.target_latency: target_latency is required and must be positive"},
		{"adaptive min zero", "adaptive: {min: 0, max: 5, target_latency: 1s}", "policies.c.adaptive.min: min is required, between 1 and 16777216"},
		{"class queue allows timeout", "max_in_flight: 2\n    queue_timeout: 1s\n    priority: {by_role: {free: 1}, max_queue: {1: 5}}", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(policytest.Spec(t, "policies:\n  c:\n    type: concurrency_limit\n    "+tc.body+"\n", "c"))
			policytest.WantError(t, err, tc.want)
		})
	}
}

// TestShedAndQueue runs in a synctest bubble: the queue timeout elapses
// in fake time.
func TestShedAndQueue(t *testing.T) {
	tests := []struct {
		name        string
		queue       int
		extra       int // requests beyond max_in_flight
		release     bool
		wantServed  int
		wantRefused int
	}{
		{"no queue sheds at once", 0, 2, false, 2, 2},
		{"queue then timeout", 1, 2, false, 2, 2},
		{"queue then served", 2, 2, true, 4, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				body := "max_in_flight: 2\n    max_queue: " + itoa(tc.queue)
				if tc.queue > 0 {
					body += "\n    queue_timeout: 100ms"
				}
				p, err := New(policytest.Spec(t, "policies:\n  c:\n    type: concurrency_limit\n    "+body+"\n", "c"))
				if err != nil {
					t.Fatal(err)
				}
				gate := make(chan struct{})
				var mu sync.Mutex
				served := 0
				h := p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					<-gate
					mu.Lock()
					served++
					mu.Unlock()
				}))
				var wg sync.WaitGroup
				codes := make(chan int, 2+tc.extra)
				for range 2 + tc.extra {
					wg.Go(func() {
						rec, _ := policytest.Serve(h, httptest.NewRequest("GET", "/", nil))
						codes <- rec.Code
					})
					synctest.Wait()
				}
				if tc.release {
					close(gate)
				} else {
					time.Sleep(200 * time.Millisecond) // past queue_timeout
					synctest.Wait()
					close(gate)
				}
				wg.Wait()
				close(codes)
				refused := 0
				for c := range codes {
					if c == 503 {
						refused++
					}
				}
				if served != tc.wantServed || refused != tc.wantRefused {
					t.Fatalf("served %d refused %d, want %d and %d", served, refused, tc.wantServed, tc.wantRefused)
				}
				if sem := p.(*Limit).sem; sem.InFlight() != 0 || sem.Queued() != 0 {
					t.Fatalf("leak: in flight %d, queued %d", sem.InFlight(), sem.Queued())
				}
			})
		})
	}
}

func TestNoLeakOnPanicOrCancel(t *testing.T) {
	p, err := New(policytest.Spec(t, "policies:\n  c:\n    type: concurrency_limit\n    max_in_flight: 1\n    max_queue: 1\n", "c"))
	if err != nil {
		t.Fatal(err)
	}
	sem := p.(*Limit).sem
	h := p.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	func() {
		defer func() { recover() }()
		policytest.Serve(h, httptest.NewRequest("GET", "/", nil))
	}()
	if sem.InFlight() != 0 {
		t.Fatalf("slot leaked after panic")
	}
	// A queued request whose client goes away leaves the queue.
	sem.Acquire(context.Background(), 0, 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool)
	go func() { done <- sem.Acquire(ctx, 0, time.Hour) }()
	for sem.Queued() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if <-done {
		t.Fatal("acquired after cancel")
	}
	sem.Release()
	if sem.InFlight() != 0 || sem.Queued() != 0 {
		t.Fatalf("leak: %d %d", sem.InFlight(), sem.Queued())
	}
}

func TestSharedAcrossReload(t *testing.T) {
	reg := registry.New()
	defer reg.Close()
	build := func(n int) policy.Policy {
		s := policytest.Spec(t, "policies:\n  c:\n    type: concurrency_limit\n    max_in_flight: "+itoa(n)+"\n", "c")
		s.Claims = &registry.Claims{}
		p, err := New(s)
		if err != nil {
			t.Fatal(err)
		}
		s.Claims.Acquire(reg)
		return p
	}
	a, b, c := build(1), build(1), build(2)
	if a.(*Limit).sem != b.(*Limit).sem {
		t.Fatal("same settings should share a semaphore")
	}
	if a.(*Limit).sem == c.(*Limit).sem {
		t.Fatal("new max_in_flight should get a new semaphore")
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// With priority, a freed slot goes to the best class waiting, FIFO within
// a class, and each class's queue has its own cap (synctest: the waits
// are fake time).
func TestPriorityOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := New(policytest.Spec(t, `policies:
  c:
    type: concurrency_limit
    max_in_flight: 1
    max_queue: 3
    queue_timeout: 1s
    priority: {by_role: {premium: 0, free: 2}, default: 1, max_queue: {2: 2}}
`, "c"))
		if err != nil {
			t.Fatal(err)
		}
		release := make(chan struct{})
		var mu sync.Mutex
		var order []string
		h := p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			order = append(order, r.URL.Path[1:])
			mu.Unlock()
			<-release
		}))
		codes := map[string]int{}
		var wg sync.WaitGroup
		send := func(name string, roles ...string) {
			wg.Go(func() {
				rec := policytest.ServeAs(h, httptest.NewRequest("GET", "/"+name, nil), &exchange.Exchange{Roles: roles})
				mu.Lock()
				codes[name] = rec.Code
				mu.Unlock()
			})
			synctest.Wait()
		}
		send("first", "free")              // runs
		send("free-1", "free")             // class 2, queued
		send("free-2", "other", "free")    // class 2, queued (cap 2)
		send("free-3", "free")             // class 2 full: shed at once
		send("anon")                       // default class 1
		send("premium", "free", "premium") // the best role: class 0
		if codes["free-3"] != 503 {
			t.Fatalf("third free waiter: %d, want 503 (its class's queue holds 2)", codes["free-3"])
		}
		for range 5 {
			release <- struct{}{}
			synctest.Wait()
		}
		wg.Wait()
		want := []string{"first", "premium", "anon", "free-1", "free-2"}
		if !slices.Equal(order, want) {
			t.Errorf("served %v, want %v", order, want)
		}
		if sem := p.(*Limit).sem; sem.InFlight() != 0 || sem.Queued() != 0 {
			t.Fatalf("leak: in flight %d, queued %d", sem.InFlight(), sem.Queued())
		}
	})
}

// Under saturation by free traffic, premium requests are admitted while
// free ones are shed. A request takes 40ms and two run at once: capacity
// is one request per 20ms. Every 10ms three free requests arrive (six
// times the capacity) and every 40ms one premium (half of it). (synctest:
// all in fake time.)
func TestPrioritySaturation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := telemetry.NewMetrics()
		s := policytest.Spec(t, `policies:
  c:
    type: concurrency_limit
    max_in_flight: 2
    max_queue: 4
    queue_timeout: 50ms
    priority: {by_role: {premium: 0}, default: 1}
`, "c")
		s.Metrics = m
		p, err := New(s)
		if err != nil {
			t.Fatal(err)
		}
		h := p.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { time.Sleep(40 * time.Millisecond) }))
		var mu sync.Mutex
		ok, shed := map[string]int{}, map[string]int{}
		var wg sync.WaitGroup
		maxQueued := 0.0
		for i := range 200 {
			classes := []string{"free", "free", "free"}
			if i%4 == 0 {
				classes = append(classes, "premium")
			}
			for _, class := range classes {
				wg.Go(func() {
					var roles []string
					if class == "premium" {
						roles = []string{"premium"}
					}
					rec := policytest.ServeAs(h, httptest.NewRequest("GET", "/", nil), &exchange.Exchange{Roles: roles})
					mu.Lock()
					if rec.Code == 200 {
						ok[class]++
					} else {
						shed[class]++
					}
					mu.Unlock()
				})
			}
			if i%10 == 5 {
				synctest.Wait()
				maxQueued = max(maxQueued, gaugeValue(m.ConcQueued.WithLabelValues("c")))
			}
			time.Sleep(10 * time.Millisecond)
		}
		wg.Wait()
		t.Logf("premium: %d served, %d shed; free: %d served, %d shed", ok["premium"], shed["premium"], ok["free"], shed["free"])
		if shed["premium"] != 0 || ok["premium"] != 50 {
			t.Errorf("premium: %d served, %d shed; want all 50 served", ok["premium"], shed["premium"])
		}
		if shed["free"] < 400 || ok["free"] < 20 {
			t.Errorf("free: %d served, %d shed; want the spare capacity served and the rest shed", ok["free"], shed["free"])
		}
		if maxQueued == 0 || gaugeValue(m.ConcLimit.WithLabelValues("c")) != 2 {
			t.Errorf("gauges: max queued %v, limit %v", maxQueued, gaugeValue(m.ConcLimit.WithLabelValues("c")))
		}
		if v := gaugeValue(m.ConcInFlight.WithLabelValues("c")); v != 0 {
			t.Errorf("in flight gauge %v after the load, want 0", v)
		}
	})
}

func gaugeValue(g interface{ Write(*dto.Metric) error }) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		return -1
	}
	return m.GetGauge().GetValue()
}

// The adaptive limit converges on what the upstream sustains within the
// target latency, falls when the upstream gets slower and recovers when
// it is fast again. The upstream serves 8 requests at once at its base
// latency and slows down linearly beyond; 60 clients keep it busy
// (synctest: fake time, so the figures are exact and the test is quick).
func TestAdaptiveConverges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := telemetry.NewMetrics()
		s := policytest.Spec(t, "policies:\n  c:\n    type: concurrency_limit\n    adaptive: {min: 4, max: 200, target_latency: 50ms}\n", "c")
		s.Metrics = m
		p, err := New(s)
		if err != nil {
			t.Fatal(err)
		}
		sem := p.(*Limit).sem
		if sem.Limit() != 4 {
			t.Fatalf("starts at %d, want min 4", sem.Limit())
		}
		var base atomic.Int64
		var running atomic.Int64
		h := p.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
			n := running.Add(1)
			defer running.Add(-1)
			time.Sleep(time.Duration(base.Load()) * time.Duration(max(8, n)) / 8)
		}))
		var stop atomic.Bool
		var wg sync.WaitGroup
		for range 60 {
			wg.Go(func() {
				for !stop.Load() {
					if rec, _ := policytest.Serve(h, httptest.NewRequest("GET", "/", nil)); rec.Code != 200 {
						time.Sleep(5 * time.Millisecond)
					}
				}
			})
		}
		// phase runs the upstream at latency for 5s and returns the mean
		// limit over its last second.
		phase := func(latency time.Duration) float64 {
			base.Store(int64(latency))
			time.Sleep(4 * time.Second)
			sum := 0
			for range 100 {
				time.Sleep(10 * time.Millisecond)
				sum += sem.Limit()
			}
			return float64(sum) / 100
		}
		// 10ms at 8 in flight: within 50ms up to 40 in flight.
		fast := phase(10 * time.Millisecond)
		// 40ms: within 50ms only up to 10.
		slow := phase(40 * time.Millisecond)
		again := phase(10 * time.Millisecond)
		stop.Store(true)
		wg.Wait()
		t.Logf("mean limit: fast %.1f, slow %.1f, fast again %.1f", fast, slow, again)
		if fast < 30 || fast > 50 {
			t.Errorf("fast upstream: limit %.1f, want about 40", fast)
		}
		if slow < 7 || slow > 14 {
			t.Errorf("slow upstream: limit %.1f, want about 10", slow)
		}
		if again < 30 || again > 50 {
			t.Errorf("fast again: limit %.1f, want about 40 (recovered)", again)
		}
		if g := gaugeValue(m.ConcLimit.WithLabelValues("c")); g != float64(sem.Limit()) {
			t.Errorf("limit gauge %v, limit %d", g, sem.Limit())
		}
	})
}
