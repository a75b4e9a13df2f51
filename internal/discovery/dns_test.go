package discovery

import (
	"bytes"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/discovery/dnstest"
)

// syncBuf is a log sink safe for the watcher's goroutine.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) count(sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), sub)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func addrs(eps []Endpoint) []string {
	out := make([]string, len(eps))
	for i, e := range eps {
		out[i] = e.Addr
	}
	return out
}

func start(t *testing.T, cfg Config) (*Watcher, *syncBuf) {
	t.Helper()
	log := &syncBuf{}
	cfg.Log = slog.New(slog.NewTextHandler(log, nil))
	if cfg.Timeout == 0 {
		cfg.Timeout = 300 * time.Millisecond
	}
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	w.Start()
	return w, log
}

// TestDNSLookup resolves A and AAAA records from a real DNS server: every
// address is an endpoint with the configured port, in address order.
func TestDNSLookup(t *testing.T) {
	tests := []struct {
		name string
		ips  []string
		want []string
	}{
		{"one v4", []string{"127.0.0.1"}, []string{"127.0.0.1:8080"}},
		{"several v4", []string{"127.0.0.3", "127.0.0.1", "127.0.0.2"}, []string{"127.0.0.1:8080", "127.0.0.2:8080", "127.0.0.3:8080"}},
		{"v4 and v6", []string{"::1", "127.0.0.1"}, []string{"127.0.0.1:8080", "[::1]:8080"}},
		{"repeated", []string{"127.0.0.1", "127.0.0.1"}, []string{"127.0.0.1:8080"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := dnstest.Start(t)
			srv.SetA("users.test", tt.ips...)
			w, _ := start(t, Config{Type: "dns", Name: "users.test", Port: 8080, Refresh: time.Hour, Resolver: srv.Addr})
			if got := addrs(w.Endpoints()); !slices.Equal(got, tt.want) {
				t.Errorf("endpoints %v, want %v", got, tt.want)
			}
			st := w.Status()
			if !st.Succeeded() || st.LastError != "" || st.Targets != len(tt.want) {
				t.Errorf("status %+v", st)
			}
			if want := "dns users.test:8080 via " + srv.Addr; st.Source != want {
				t.Errorf("source %q, want %q", st.Source, want)
			}
		})
	}
}

// TestDNSFailureKeepsLastSet makes the server fail in each way after a
// good answer: the last set stays, the error is reported, the failure is
// logged once however many lookups fail, and the recovery once.
func TestDNSFailureKeepsLastSet(t *testing.T) {
	tests := []struct {
		name  string
		fail  func(*dnstest.Server)
		error string // in Status.LastError
	}{
		{"servfail", func(s *dnstest.Server) { s.SetMode(dnstest.ServFail) }, "SERVFAIL"},
		{"nxdomain", func(s *dnstest.Server) { s.SetA("users.test") }, "NXDOMAIN"},
		{"garbage", func(s *dnstest.Server) { s.SetMode(dnstest.Garbage) }, "users.test"},
		{"timeout", func(s *dnstest.Server) { s.SetMode(dnstest.Silent) }, "timeout"},
		{"wrong id", func(s *dnstest.Server) { s.SetMode(dnstest.WrongID) }, "users.test"},
		{"empty answer", func(s *dnstest.Server) {
			s.SetA("users.test")
			s.SetSRV("users.test", dnstest.SRV{Port: 1, Target: "x.test"})
		}, "no address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := dnstest.Start(t)
			srv.SetA("users.test", "127.0.0.1", "127.0.0.2")
			var changes sync.Map
			n := 0
			var mu sync.Mutex
			w, log := start(t, Config{Type: "dns", Name: "users.test", Port: 80, Refresh: 50 * time.Millisecond,
				Timeout: 100 * time.Millisecond, Resolver: srv.Addr,
				OnChange: func(eps []Endpoint) { mu.Lock(); n++; changes.Store(n, addrs(eps)); mu.Unlock() }})
			want := []string{"127.0.0.1:80", "127.0.0.2:80"}
			if got := addrs(w.Endpoints()); !slices.Equal(got, want) {
				t.Fatalf("endpoints %v, want %v", got, want)
			}
			tt.fail(srv)
			before := w.Status().Failures
			waitFor(t, "three failed lookups", func() bool { return w.Status().Failures >= before+3 })
			st := w.Status()
			if got := addrs(w.Endpoints()); !slices.Equal(got, want) {
				t.Errorf("endpoints after failure %v, want the last good %v", got, want)
			}
			if !strings.Contains(st.LastError, tt.error) || st.Targets != 2 {
				t.Errorf("status %+v, want an error with %q and 2 targets", st, tt.error)
			}
			if c := log.count("discovery failed"); c != 1 {
				t.Errorf("failure logged %d times, want once", c)
			}
			// Recovery with a new set.
			srv.SetMode(dnstest.Answer)
			srv.SetSRV("users.test")
			srv.SetA("users.test", "127.0.0.3")
			waitFor(t, "recovery", func() bool { return slices.Equal(addrs(w.Endpoints()), []string{"127.0.0.3:80"}) })
			waitFor(t, "recovery logged", func() bool { return log.count("discovery recovered") == 1 })
			if st := w.Status(); st.LastError != "" {
				t.Errorf("last error %q after recovery", st.LastError)
			}
			mu.Lock()
			if n != 2 {
				t.Errorf("OnChange called %d times, want 2 (first set, recovered set)", n)
			}
			mu.Unlock()
		})
	}
}

// TestDNSNeverSucceeded: a server that never answers leaves the watcher
// without endpoints, and Start returns after one lookup's timeout.
func TestDNSNeverSucceeded(t *testing.T) {
	srv := dnstest.Start(t)
	srv.SetMode(dnstest.Silent)
	began := time.Now()
	w, log := start(t, Config{Type: "dns", Name: "users.test", Port: 80, Refresh: time.Hour, Timeout: 200 * time.Millisecond, Resolver: srv.Addr})
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("Start took %s", d)
	}
	st := w.Status()
	if st.Succeeded() || w.Endpoints() != nil || !strings.Contains(st.LastError, "timeout") {
		t.Errorf("status %+v, endpoints %v", st, w.Endpoints())
	}
	if log.count("discovery failed") != 1 {
		t.Errorf("log: %s", log.b.String())
	}
}

// TestDNSRefreshAtTTL: with refresh: ttl the name is resolved again at
// the answer's TTL (1s here), so a change shows although no fixed period
// would have refreshed it within the test.
func TestDNSRefreshAtTTL(t *testing.T) {
	srv := dnstest.Start(t)
	srv.SetTTL(1)
	srv.SetA("users.test", "127.0.0.1")
	w, _ := start(t, Config{Type: "dns", Name: "users.test", Port: 80, TTL: true, Resolver: srv.Addr})
	if got := addrs(w.Endpoints()); !slices.Equal(got, []string{"127.0.0.1:80"}) {
		t.Fatalf("endpoints %v", got)
	}
	srv.SetA("users.test", "127.0.0.9")
	waitFor(t, "the change at the TTL", func() bool { return slices.Equal(addrs(w.Endpoints()), []string{"127.0.0.9:80"}) })
}

// TestSystemResolver resolves localhost through Go's resolver, which reads
// /etc/hosts.
func TestSystemResolver(t *testing.T) {
	w, _ := start(t, Config{Type: "dns", Name: "localhost", Port: 80, Refresh: time.Hour, Timeout: time.Second})
	got := addrs(w.Endpoints())
	if !slices.Contains(got, "127.0.0.1:80") && !slices.Contains(got, "[::1]:80") {
		t.Errorf("endpoints %v, want localhost's address", got)
	}
	if st := w.Status(); !strings.HasSuffix(st.Source, "via the system resolver") {
		t.Errorf("source %q", st.Source)
	}
}

// TestSRVLookup: SRV records give each endpoint its port, weight and
// priority; targets are resolved from the additional section when it
// has them and by their own query otherwise; "." and weight 0 follow RFC
// 2782.
func TestSRVLookup(t *testing.T) {
	recs := []dnstest.SRV{
		{Priority: 0, Weight: 30, Port: 9001, Target: "a.test"},
		{Priority: 0, Weight: 10, Port: 9002, Target: "b.test"},
		{Priority: 1, Weight: 0, Port: 9003, Target: "c.test"},
		{Priority: 0, Weight: 5, Port: 9004, Target: "."},
		{Priority: 2, Weight: 7, Port: 9005, Target: "127.0.0.9"},
	}
	want := []string{"127.0.0.1:9001/w30/p0", "127.0.0.2:9002/w10/p0", "[::1]:9002/w10/p0", "127.0.0.3:9003/w1/p1", "127.0.0.9:9005/w7/p2"}
	for _, extra := range []bool{false, true} {
		t.Run(fmt.Sprintf("additionals=%v", extra), func(t *testing.T) {
			srv := dnstest.Start(t)
			srv.SetExtra(extra)
			srv.SetSRV("_http._tcp.users.test", recs...)
			srv.SetA("a.test", "127.0.0.1")
			srv.SetA("b.test", "127.0.0.2", "::1")
			srv.SetA("c.test", "127.0.0.3")
			w, _ := start(t, Config{Type: "srv", Name: "_http._tcp.users.test", Refresh: time.Hour, Resolver: srv.Addr})
			var got []string
			for _, e := range w.Endpoints() {
				got = append(got, fmt.Sprintf("%s/w%d/p%d", e.Addr, e.Weight, e.Priority))
			}
			if !slices.Equal(got, want) {
				t.Errorf("endpoints\n got %v\nwant %v", got, want)
			}
		})
	}
}

// TestSRVTargetFailure: an SRV target that does not resolve fails the
// whole lookup, so its endpoints are not dropped from the last set.
func TestSRVTargetFailure(t *testing.T) {
	srv := dnstest.Start(t)
	srv.SetSRV("_h._tcp.u.test", dnstest.SRV{Port: 1, Target: "a.test"}, dnstest.SRV{Port: 2, Target: "b.test"})
	srv.SetA("a.test", "127.0.0.1")
	srv.SetA("b.test", "127.0.0.2")
	w, _ := start(t, Config{Type: "srv", Name: "_h._tcp.u.test", Refresh: 50 * time.Millisecond, Resolver: srv.Addr})
	srv.SetA("b.test")
	before := w.Status().Failures
	waitFor(t, "a failed lookup", func() bool { return w.Status().Failures > before })
	if got := addrs(w.Endpoints()); !slices.Equal(got, []string{"127.0.0.1:1", "127.0.0.2:2"}) {
		t.Errorf("endpoints %v", got)
	}
	if st := w.Status(); !strings.Contains(st.LastError, "b.test") {
		t.Errorf("last error %q", st.LastError)
	}
}

// TestPanicRecovered: a panic in the watcher's goroutine (here in
// OnChange) is recovered at its root, logged and reported, and the
// watcher goes on looking the name up.
func TestPanicRecovered(t *testing.T) {
	srv := dnstest.Start(t)
	srv.SetA("users.test", "127.0.0.1")
	var mu sync.Mutex
	calls := 0
	w, log := start(t, Config{Type: "dns", Name: "users.test", Port: 80, Refresh: 20 * time.Millisecond, Resolver: srv.Addr,
		OnChange: func([]Endpoint) {
			mu.Lock()
			calls++
			n := calls
			mu.Unlock()
			if n == 1 {
				panic("boom")
			}
		}})
	if log.count("discovery panicked; restarting it") != 1 || !strings.Contains(w.Status().LastError, "boom") {
		t.Fatalf("status %+v, log %s", w.Status(), log.b.String())
	}
	srv.SetA("users.test", "127.0.0.2")
	waitFor(t, "lookups after the restart", func() bool { mu.Lock(); defer mu.Unlock(); return calls == 2 })
	if got := addrs(w.Endpoints()); !slices.Equal(got, []string{"127.0.0.2:80"}) {
		t.Errorf("endpoints %v", got)
	}
}
