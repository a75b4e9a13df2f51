package ratelimit

import (
	"encoding/json"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/rampart-gw/rampart/internal/exchange"
	"github.com/rampart-gw/rampart/internal/policy/policytest"
	"github.com/rampart-gw/rampart/internal/registry"
	"github.com/rampart-gw/rampart/internal/telemetry"
)

func TestConfigErrors(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"valid", "key: [consumer, route, header:X-Tenant]\n    rate: 10/s\n    burst: 5\n    by_role: {free: 1/s}", ""},
		{"missing rate", "key: ip", "rate is required"},
		{"bad rate", "rate: 10/d", "unit must be s, m or h"},
		{"redis without cluster.redis", "rate: 1/s\n    store: redis", "test.yaml:5:12: policies.l.store: store redis needs cluster.redis (where Redis is)"},
		{"on_failure with local", "rate: 1/s\n    on_failure: deny", "test.yaml:5:17: policies.l.on_failure: on_failure applies only to store redis"},
		{"unknown store", "rate: 1/s\n    store: memcached", "unknown store"},
		{"sync lease with local", "rate: 1/s\n    sync: lease", "test.yaml:5:11: policies.l.sync: sync applies only to store redis"},
		{"sync plain with local", "rate: 1/s\n    store: local\n    sync: plain", "test.yaml:6:11: policies.l.sync: sync applies only to store redis"},
		{"claim", "rate: 1/s\n    key: claim:sub", ""},
		{"claim in list", "rate: 1/s\n    key: [ip, claim:tenant]", ""},
		{"claim without name", "rate: 1/s\n    key: [ip, \"claim:\"]", `policies.l.key[1]: key "claim:" names no claim`},
		{"bad key", "rate: 1/s\n    key: cookie:x", `invalid key "cookie:x"`},
		{"bad header", "rate: 1/s\n    key: \"header:a b\"", "invalid header name"},
		{"dup key", "rate: 1/s\n    key: [ip, ip]", "listed twice"},
		{"empty list", "rate: 1/s\n    key: []", "must not be empty"},
		{"mapping key", "rate: 1/s\n    key: {a: b}", "string or a list"},
		{"negative burst", "rate: 1/s\n    burst: -1", "burst must be between"},
		{"too slow", "rate: 1/h\n    burst: 100000", "over a year"},
		{"bad role rate", "rate: 1/s\n    by_role: {free: fast}", "invalid rate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(policytest.Spec(t, "policies:\n  l:\n    type: rate_limit\n    "+tc.body+"\n", "l"))
			policytest.WantError(t, err, tc.want)
		})
	}
}

func TestDefaultBurst(t *testing.T) {
	tests := []struct {
		rate  string
		burst int
	}{{"10/s", 10}, {"1000/m", 17}, {"60/m", 1}, {"10/h", 1}, {"2.5/s", 3}}
	for _, tc := range tests {
		t.Run(tc.rate, func(t *testing.T) {
			p, err := New(policytest.Spec(t, "policies:\n  l:\n    type: rate_limit\n    rate: "+tc.rate+"\n", "l"))
			if err != nil {
				t.Fatal(err)
			}
			if got := p.(*Limit).base.store.Burst(); got != tc.burst {
				t.Fatalf("burst %d, want %d", got, tc.burst)
			}
		})
	}
}

// fakeClock is an injected clock in nanoseconds.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() int64              { return c.ns.Load() }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func TestStore(t *testing.T) {
	type step struct {
		advance   time.Duration
		allowed   bool
		remaining int
		reset     time.Duration
		retry     time.Duration
	}
	tests := []struct {
		name      string
		perSecond float64
		burst     int
		steps     []step
	}{
		{"burst then refill", 2, 3, []step{
			{0, true, 2, 500 * time.Millisecond, 0},
			{0, true, 1, time.Second, 0},
			{0, true, 0, 1500 * time.Millisecond, 0},
			{0, false, 0, 1500 * time.Millisecond, 500 * time.Millisecond},
			{500 * time.Millisecond, true, 0, 1500 * time.Millisecond, 0},
			{10 * time.Second, true, 2, 500 * time.Millisecond, 0},
		}},
		{"one per minute", 1.0 / 60, 1, []step{
			{0, true, 0, time.Minute, 0},
			{30 * time.Second, false, 0, 30 * time.Second, 30 * time.Second},
			{30 * time.Second, true, 0, time.Minute, 0},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var clk fakeClock
			clk.advance(time.Hour)
			s := NewStore(tc.perSecond, tc.burst, 100, clk.now)
			for i, st := range tc.steps {
				clk.advance(st.advance)
				d := s.Take("k")
				want := Decision{Allowed: st.allowed, Remaining: st.remaining, Reset: st.reset, RetryAfter: st.retry}
				if d != want {
					t.Fatalf("step %d: %+v, want %+v", i, d, want)
				}
			}
		})
	}
}

func TestStoreBoundedMemory(t *testing.T) {
	var clk fakeClock
	s := NewStore(1, 1, 6400, clk.now)
	for i := range 10_000 {
		s.Take("key-" + itoa(i))
	}
	if n := s.Len(); n > 6400 {
		t.Fatalf("held %d keys, cap 6400", n)
	}
	// Once every bucket is full again, the next insert into each shard
	// sweeps it.
	clk.advance(10 * time.Second)
	for i := range 1280 {
		s.Take("new-" + itoa(i))
	}
	if n := s.Len(); n > 1280+200 {
		t.Fatalf("idle buckets not swept: %d keys", n)
	}
	// A hot key that keeps its bucket drained survives eviction pressure
	// better than most (sampled LRU): it is not guaranteed, so only check
	// that the store still answers.
	if d := s.Take("hot"); !d.Allowed {
		t.Fatal("fresh key refused")
	}
}

func TestWrap(t *testing.T) {
	doc := `policies:
  l:
    type: rate_limit
    key: [consumer, route]
    rate: 2/s
    burst: 2
    by_role: {premium: 10/s}
`
	m := telemetry.NewMetrics()
	spec := policytest.Spec(t, doc, "l")
	spec.Metrics = m
	p, err := New(spec)
	if err != nil {
		t.Fatal(err)
	}
	up := &policytest.Upstream{}
	h := p.Wrap(up)
	serve := func(consumer, route string, roles ...string) (int, string, string, string, string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "192.0.2.1:1234"
		rec := policytest.ServeAs(h, r, &exchange.Exchange{Consumer: consumer, Route: route, Roles: roles})
		hd := rec.Header()
		return rec.Code, hd.Get("RateLimit-Limit"), hd.Get("RateLimit-Remaining"), hd.Get("RateLimit-Reset"), hd.Get("Retry-After")
	}
	tests := []struct {
		name, consumer, route string
		roles                 []string
		code                  int
		limit, remaining      string
		retry                 string
	}{
		{"first", "acme", "a", nil, 200, "2", "1", ""},
		{"second", "acme", "a", nil, 200, "2", "0", ""},
		{"third limited", "acme", "a", nil, 429, "2", "0", "1"},
		{"other route", "acme", "b", nil, 200, "2", "1", ""},
		{"other consumer", "beta", "a", nil, 200, "2", "1", ""},
		{"premium role", "gold", "a", []string{"free", "premium"}, 200, "10", "9", ""},
		{"anonymous by ip", "", "a", nil, 200, "2", "1", ""},
		{"anonymous by ip again", "", "a", nil, 200, "2", "0", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, limit, remaining, reset, retry := serve(tc.consumer, tc.route, tc.roles...)
			if code != tc.code || limit != tc.limit || remaining != tc.remaining || retry != tc.retry {
				t.Fatalf("got %d limit=%s remaining=%s retry=%q, want %d %s %s %q", code, limit, remaining, retry, tc.code, tc.limit, tc.remaining, tc.retry)
			}
			if reset == "" {
				t.Fatal("no RateLimit-Reset")
			}
		})
	}
	if got := counter(m.RateLimitDecisions.WithLabelValues("l", "limited")); got != 1 {
		t.Errorf("limited decisions %v, want 1", got)
	}
	if got := counter(m.RateLimitDecisions.WithLabelValues("l", "allowed")); got != 7 {
		t.Errorf("allowed decisions %v, want 7", got)
	}
}

func TestBucketsSurviveReload(t *testing.T) {
	reg := registry.New()
	defer reg.Close()
	build := func(doc string) *Limit {
		s := policytest.Spec(t, doc, "l")
		s.Claims = &registry.Claims{}
		p, err := New(s)
		if err != nil {
			t.Fatal(err)
		}
		s.Claims.Acquire(reg)
		return p.(*Limit)
	}
	a := build("policies:\n  l:\n    type: rate_limit\n    rate: 5/s\n")
	b := build("policies:\n  l:\n    type: rate_limit\n    rate: 5/s\n    trust_forwarded: 1\n")
	c := build("policies:\n  l:\n    type: rate_limit\n    rate: 6/s\n")
	if a.base.store != b.base.store {
		t.Fatal("unchanged rate settings must keep the buckets")
	}
	if a.base.store == c.base.store {
		t.Fatal("a changed rate must get new buckets")
	}
}

func TestAppendKey(t *testing.T) {
	tests := []struct {
		name string
		key  string
		xff  string
		want string
	}{
		{"ip", "ip", "", "192.0.2.1"},
		{"header", "header:x-tenant", "", "t1"},
		{"combined", "[consumer, route, header:X-Tenant]", "", "acme\x00r1\x00t1"},
		{"missing header", "header:X-None", "", ""},
		{"claim", "claim:sub", "", "user-1"},
		{"numeric claim", "claim:n", "", "42"},
		{"claim and route", "[claim:sub, route]", "", "user-1\x00r1"},
		{"missing claim: per IP", "claim:tenant", "", "\x03192.0.2.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(policytest.Spec(t, "policies:\n  l:\n    type: rate_limit\n    rate: 1/s\n    key: "+tc.key+"\n", "l"))
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = "192.0.2.1:5555"
			r.Header.Set("X-Tenant", "t1")
			l := p.(*Limit)
			ex := &exchange.Exchange{Consumer: "acme", Route: "r1", Claims: map[string]any{"sub": "user-1", "n": json.Number("42")}}
			got := string(AppendKey(nil, l.parts, l.trust, r, ex))
			if got != tc.want {
				t.Fatalf("key %q, want %q", got, tc.want)
			}
		})
	}
	long := strings.Repeat("x", 1000)
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Tenant", long)
	k := AppendKey(nil, []Part{{Kind: partHeader, Name: "X-Tenant"}}, 0, r, nil)
	if len(k) != 33 {
		t.Fatalf("long key not hashed: %d bytes", len(k))
	}
}

var keyPattern = regexp.MustCompile(KeyPattern)

// TestKeyPattern holds the schema's grammar of a key to ParseKeyPart's.
func TestKeyPattern(t *testing.T) {
	for _, spec := range []string{"ip", "consumer", "route", "header:X-Tenant", "header:x_a.b~c", "claim:sub",
		"claim:a b", "claim:", "header:", "header:X Y", "header:X:Y", "IP", "ip ", " route", "tenant", "", "cookie:a", "claim:\n"} {
		_, msg := ParseKeyPart(spec)
		if keyPattern.MatchString(spec) != (msg == "") {
			t.Errorf("KeyPattern matches %q: %v, ParseKeyPart says %q", spec, keyPattern.MatchString(spec), msg)
		}
	}
}

// FuzzKey checks key parsing and extraction on arbitrary input: no panic,
// bounded length, and the same request always gives the same key.
func FuzzKey(f *testing.F) {
	f.Add("header:X-A", "v", "10.0.0.1:80", "1.2.3.4, 5.6.7.8", 1)
	f.Add("claim:sub", "", "[::1]:80", "", 0)
	f.Add("ip", "", "garbage", ",,,", 3)
	f.Fuzz(func(t *testing.T, spec, value, remote, xff string, trust int) {
		p, msg := ParseKeyPart(spec)
		if keyPattern.MatchString(spec) != (msg == "") {
			t.Fatalf("KeyPattern matches %q: %v, ParseKeyPart: %q", spec, keyPattern.MatchString(spec), msg)
		}
		if msg != "" {
			return
		}
		if trust < 0 || trust > 64 {
			trust = 1
		}
		parts := []Part{p, {Kind: partIP}, {Kind: partConsumer}}
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		r.Header["X-Forwarded-For"] = []string{xff}
		if p.Kind == partHeader {
			r.Header[p.Name] = []string{value}
		}
		a := AppendKey(nil, parts, trust, r, nil)
		b := AppendKey(make([]byte, 0, 8), parts, trust, r, nil)
		if string(a) != string(b) || len(a) > maxKeyLen {
			t.Fatalf("unstable or long key %q / %q", a, b)
		}
	})
}

func itoa(i int) string { return string(AppendInt(nil, i)) }

// counter reads a counter's value.
func counter(c interface{ Write(*dto.Metric) error }, _ ...any) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
