package cache

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func entry(body string, ttl, sie time.Duration) *Entry {
	return &Entry{
		Status:       200,
		Header:       http.Header{"Content-Type": {"text/plain"}},
		Body:         []byte(body),
		StoredAt:     t0,
		TTL:          ttl,
		StaleIfError: sie,
	}
}

func TestGetFreshness(t *testing.T) {
	tests := []struct {
		name             string
		ttl, sie, at     time.Duration
		wantOK, wantFres bool
	}{
		{"fresh at store time", 30 * time.Second, 5 * time.Minute, 0, true, true},
		{"fresh just before ttl", 30 * time.Second, 5 * time.Minute, 30*time.Second - 1, true, true},
		{"stale at ttl", 30 * time.Second, 5 * time.Minute, 30 * time.Second, true, false},
		{"stale inside stale_if_error", 30 * time.Second, 5 * time.Minute, 5 * time.Minute, true, false},
		{"gone after stale_if_error", 30 * time.Second, 5 * time.Minute, 5*time.Minute + 30*time.Second, false, false},
		{"gone after ttl without stale_if_error", 30 * time.Second, 0, 31 * time.Second, false, false},
		{"clock before StoredAt counts as fresh", 30 * time.Second, 0, -time.Second, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(Config{})
			if !c.Put("k", entry("hello", tt.ttl, tt.sie)) {
				t.Fatal("Put refused")
			}
			e, fresh, ok := c.Get("k", t0.Add(tt.at))
			if ok != tt.wantOK || fresh != tt.wantFres {
				t.Fatalf("Get = fresh %v ok %v, want fresh %v ok %v", fresh, ok, tt.wantFres, tt.wantOK)
			}
			if ok && string(e.Body) != "hello" {
				t.Fatalf("body %q", e.Body)
			}
			if !ok && c.Len() != 0 {
				t.Fatalf("expired entry kept: Len = %d", c.Len())
			}
		})
	}
}

func TestPutRefuses(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		e    *Entry
	}{
		{"nil entry", Config{}, nil},
		{"no ttl and no stale", Config{}, entry("x", 0, 0)},
		{"over the per-entry cap", Config{MaxEntryBytes: 1000}, entry(strings.Repeat("x", 1000), time.Minute, 0)},
		{"over the default per-entry cap", Config{}, entry(strings.Repeat("x", DefaultMaxEntryBytes), time.Minute, 0)},
		{"entry cap capped by total", Config{MaxBytes: 500, MaxEntryBytes: 10000}, entry(strings.Repeat("x", 600), time.Minute, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(tt.cfg)
			if c.Put("k", tt.e) {
				t.Fatal("Put accepted")
			}
			if c.Len() != 0 || c.Bytes() != 0 {
				t.Fatalf("Len %d Bytes %d after a refused Put", c.Len(), c.Bytes())
			}
		})
	}
}

func TestLRUEvictionByBytes(t *testing.T) {
	body := strings.Repeat("x", 1000)
	size := entry(body, time.Minute, 0).size("k0")
	c := New(Config{MaxBytes: 3 * size})
	for i := range 3 {
		c.Put(fmt.Sprintf("k%d", i), entry(body, time.Minute, 0))
	}
	if c.Len() != 3 || c.Bytes() != 3*size {
		t.Fatalf("Len %d Bytes %d, want 3 and %d", c.Len(), c.Bytes(), 3*size)
	}
	c.Get("k0", t0) // k0 is now the most recently used; k1 the least
	c.Put("k3", entry(body, time.Minute, 0))
	for key, want := range map[string]bool{"k0": true, "k1": false, "k2": true, "k3": true} {
		if _, _, ok := c.Get(key, t0); ok != want {
			t.Errorf("Get(%s) ok = %v, want %v", key, ok, want)
		}
	}
	if c.Bytes() > 3*size {
		t.Errorf("Bytes %d over the limit %d", c.Bytes(), 3*size)
	}
}

func TestReplaceAndDelete(t *testing.T) {
	c := New(Config{})
	c.Put("k", entry("one", time.Minute, 0))
	c.Put("k", entry("three", time.Minute, 0))
	if c.Len() != 1 {
		t.Fatalf("Len %d after replace", c.Len())
	}
	if want := entry("three", time.Minute, 0).size("k"); c.Bytes() != want {
		t.Fatalf("Bytes %d, want %d", c.Bytes(), want)
	}
	e, _, _ := c.Get("k", t0)
	if string(e.Body) != "three" {
		t.Fatalf("body %q", e.Body)
	}
	c.Delete("k")
	c.Delete("missing")
	if c.Len() != 0 || c.Bytes() != 0 {
		t.Fatalf("Len %d Bytes %d after Delete", c.Len(), c.Bytes())
	}
}

func TestServe(t *testing.T) {
	e := entry("hello", time.Minute, 0)
	rec := httptest.NewRecorder()
	if err := e.Serve(rec, t0.Add(42*time.Second+500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 200 || rec.Body.String() != "hello" || rec.Header().Get("Age") != "42" ||
		rec.Header().Get("Content-Type") != "text/plain" || rec.Header().Get("Content-Length") != "5" {
		t.Fatalf("got %d %q %v", rec.Code, rec.Body, rec.Header())
	}
}

func TestKey(t *testing.T) {
	tests := []struct {
		name   string
		route  string
		method string
		target string
		want   string
	}{
		{"path and query", "users", "GET", "http://API.example.com/u/1?x=2", "users GET api.example.com /u/1?x=2"},
		{"root", "r", "HEAD", "http://h/", "r HEAD h /"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.target, nil)
			if got := Key(tt.route, r); got != tt.want {
				t.Errorf("Key = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestConcurrent(t *testing.T) {
	c := New(Config{MaxBytes: 50 * 1024})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				key := fmt.Sprintf("k%d", (i*7+g)%200)
				if i%3 == 0 {
					c.Put(key, entry(strings.Repeat("y", 100+i%500), time.Minute, time.Minute))
				} else {
					c.Get(key, t0.Add(time.Duration(i)*time.Millisecond*50))
				}
			}
		})
	}
	wg.Wait()
	if c.Bytes() > 50*1024 {
		t.Fatalf("Bytes %d over the limit", c.Bytes())
	}
	// The byte count must match the entries actually held.
	var sum int64
	c.mu.Lock()
	for k, n := range c.items {
		sum += n.e.size(k)
	}
	c.mu.Unlock()
	if sum != c.Bytes() {
		t.Fatalf("accounted %d, actual %d", c.Bytes(), sum)
	}
}
