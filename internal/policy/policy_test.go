package policy

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/registry"
)

func TestClientIP(t *testing.T) {
	tests := []struct {
		name, remote string
		xff          []string
		trust        int
		want         string
	}{
		{"peer v4", "192.0.2.1:1234", nil, 0, "192.0.2.1"},
		{"peer v6", "[2001:db8::1]:443", nil, 0, "2001:db8::1"},
		{"xff ignored without trust", "192.0.2.1:1", []string{"1.1.1.1"}, 0, "192.0.2.1"},
		{"one hop", "10.0.0.1:1", []string{"1.1.1.1, 2.2.2.2"}, 1, "2.2.2.2"},
		{"two hops", "10.0.0.1:1", []string{"1.1.1.1, 2.2.2.2"}, 2, "1.1.1.1"},
		{"several header lines", "10.0.0.1:1", []string{"1.1.1.1", "2.2.2.2, 3.3.3.3"}, 3, "1.1.1.1"},
		{"short chain gives leftmost", "10.0.0.1:1", []string{"2.2.2.2"}, 3, "2.2.2.2"},
		{"empty entries skipped", "10.0.0.1:1", []string{"1.1.1.1, ,"}, 1, "1.1.1.1"},
		{"no xff falls back to peer", "10.0.0.1:1", nil, 1, "10.0.0.1"},
		{"xff entry with port", "10.0.0.1:1", []string{"[2001:db8::2]:80"}, 1, "2001:db8::2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			if tc.xff != nil {
				r.Header["X-Forwarded-For"] = tc.xff
			}
			if got, _ := ClientIP(r, tc.trust); got != tc.want {
				t.Fatalf("ClientIP = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSpecErrorf(t *testing.T) {
	doc := "policies:\n  p:\n    type: x\n    key: [ip, claim:sub]\n    by_role: {free: 1/s}\n"
	cfg, err := config.Parse("f.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	s := Spec{Name: "p", Node: cfg.Policies["p"], File: "f.yaml", Path: "policies.p", Config: cfg}
	tests := []struct{ rel, want string }{
		{"key[1]", "f.yaml:4:15: policies.p.key[1]: m"},
		{"by_role.free", "f.yaml:5:21: policies.p.by_role.free: m"},
		{"missing", "f.yaml:3:5: policies.p.missing: m"},
		{"", "f.yaml:3:5: policies.p: m"},
	}
	for _, tc := range tests {
		t.Run(tc.rel, func(t *testing.T) {
			if got := s.Errorf(tc.rel, "m").Error(); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

type state struct{ n int }

func TestClaim(t *testing.T) {
	reg := registry.New()
	var a, b, c *state
	ca, cb := &registry.Claims{}, &registry.Claims{}
	Claim(ca, "k", func() *state { return &state{1} }, func(s *state) { a = s })
	Claim(cb, "k", func() *state { return &state{2} }, func(s *state) { b = s })
	ca.Acquire(reg)
	cb.Acquire(reg)
	if a == nil || a != b || a.n != 1 {
		t.Fatal("live state not shared")
	}
	ca.Release()
	cb.Release()
	cc := &registry.Claims{}
	Claim(cc, "k", func() *state { return &state{3} }, func(s *state) { c = s })
	cc.Acquire(reg)
	if c.n != 3 {
		t.Fatalf("released state returned: %d", c.n)
	}
	var d *state
	Claim(nil, "k", func() *state { return &state{4} }, func(s *state) { d = s })
	if d.n != 4 {
		t.Fatal("nil claims must build fresh state")
	}
}

func TestHeaderHook(t *testing.T) {
	rec := httptest.NewRecorder()
	calls := 0
	w := HeaderHook(rec, func(h http.Header, status int) {
		calls++
		h.Set("X-Status", http.StatusText(status))
	})
	w.WriteHeader(http.StatusEarlyHints)
	w.Write([]byte("x"))
	w.Write([]byte("y"))
	if calls != 1 || rec.Header().Get("X-Status") != "OK" {
		t.Fatalf("hook ran %d times, header %q", calls, rec.Header().Get("X-Status"))
	}
	if _, ok := w.(interface{ Unwrap() http.ResponseWriter }); !ok {
		t.Fatal("no Unwrap")
	}
}
