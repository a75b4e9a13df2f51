package concurrency

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rampart-gw/rampart/internal/policy"
	"github.com/rampart-gw/rampart/internal/policy/policytest"
	"github.com/rampart-gw/rampart/internal/registry"
)

func TestConfigErrors(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"valid", "max_in_flight: 2\n    max_queue: 3\n    queue_timeout: 50ms", ""},
		{"missing", "max_queue: 3", "max_in_flight is required"},
		{"negative queue", "max_in_flight: 1\n    max_queue: -1", "must not be negative"},
		{"timeout without queue", "max_in_flight: 1\n    queue_timeout: 1s", "needs max_queue"},
		{"not a number", "max_in_flight: many", "expected an integer"},
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
	sem.Acquire(context.Background(), 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool)
	go func() { done <- sem.Acquire(ctx, time.Hour) }()
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
