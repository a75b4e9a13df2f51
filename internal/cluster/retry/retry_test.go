package retry

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
)

func TestBackoff(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name      string
		attempt   int
		base, max time.Duration
		rnd       float64
		want      time.Duration
	}{
		{"first retry upper end", 0, 25 * ms, time.Second, 0.999999, 25 * ms},
		{"first retry lower end", 0, 25 * ms, time.Second, 0, 0},
		{"doubles", 2, 25 * ms, time.Second, 0.5, 50 * ms},
		{"capped by max", 10, 25 * ms, time.Second, 0.5, 500 * ms},
		{"huge attempt does not overflow", 1000, 25 * ms, time.Second, 0.5, 500 * ms},
		{"no max doubles without cap", 3, time.Second, 0, 0.5, 4 * time.Second},
		{"negative attempt is first", -3, 100 * ms, time.Second, 0.5, 50 * ms},
		{"zero base", 3, 0, time.Second, 0.5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Backoff(tt.attempt, tt.base, tt.max, func() float64 { return tt.rnd })
			if diff := got - tt.want; diff < -time.Microsecond || diff > time.Microsecond {
				t.Errorf("Backoff = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBackoffNoMaxNeverOverflows(t *testing.T) {
	for _, attempt := range []int{62, 63, 64, 1000, 1 << 30} {
		if d := Backoff(attempt, time.Second, 0, func() float64 { return 0.999 }); d <= 0 {
			t.Errorf("attempt %d: %v, want positive", attempt, d)
		}
	}
}

func TestBackoffDefaultRandInRange(t *testing.T) {
	for attempt := range 8 {
		ceil := min(10*time.Millisecond<<attempt, 500*time.Millisecond)
		for range 100 {
			if d := Backoff(attempt, 10*time.Millisecond, 500*time.Millisecond, nil); d < 0 || d >= ceil {
				t.Fatalf("attempt %d: %v outside [0, %v)", attempt, d, ceil)
			}
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"delta seconds", "120", 2 * time.Minute, true},
		{"zero", "0", 0, true},
		{"spaces", "  5 ", 5 * time.Second, true},
		{"http date", "Sun, 01 Jun 2025 12:00:30 GMT", 30 * time.Second, true},
		{"rfc850 date", "Sunday, 01-Jun-25 12:01:00 GMT", time.Minute, true},
		{"asctime date", "Sun Jun  1 12:00:10 2025", 10 * time.Second, true},
		{"date in the past", "Sun, 01 Jun 2025 11:00:00 GMT", 0, true},
		{"huge delta saturates", "99999999999999999999999", maxDuration, true},
		{"empty", "", 0, false},
		{"negative", "-5", 0, false},
		{"fraction", "1.5", 0, false},
		{"garbage", "soon", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseRetryAfter(tt.in, now)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"120", "Sun, 01 Jun 2025 12:00:30 GMT", "", "-1", "1e9"} {
		f.Add(s)
	}
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		if d, ok := ParseRetryAfter(s, now); d < 0 || (!ok && d != 0) {
			t.Fatalf("ParseRetryAfter(%q) = %v, %v", s, d, ok)
		}
	})
}

func TestConditions(t *testing.T) {
	type probe struct {
		kind   ErrorKind
		status int
		want   bool
	}
	tests := []struct {
		name   string
		on     []string
		probes []probe
	}{
		{"empty retries nothing", nil, []probe{
			{ConnectFailure, 0, false}, {Response, 503, false},
		}},
		{"contract example", []string{"connect_failure", "reset", "502", "503", "504"}, []probe{
			{ConnectFailure, 0, true}, {Reset, 0, true}, {Timeout, 0, false},
			{Response, 502, true}, {Response, 503, true}, {Response, 504, true},
			{Response, 500, false}, {Response, 200, false},
		}},
		{"5xx covers all 5xx and transport failures", []string{"5xx"}, []probe{
			{Response, 500, true}, {Response, 599, true}, {Response, 499, false},
			{ConnectFailure, 0, true}, {Reset, 0, true}, {Timeout, 0, true},
		}},
		{"gateway_error", []string{"gateway_error"}, []probe{
			{Response, 502, true}, {Response, 503, true}, {Response, 504, true},
			{Response, 500, false}, {ConnectFailure, 0, true},
		}},
		{"retriable_4xx", []string{"connect_failure", "retriable_4xx"}, []probe{
			{ConnectFailure, 0, true}, {Response, 409, true}, {Response, 404, false},
		}},
		{"timeout only", []string{"timeout"}, []probe{
			{Timeout, 0, true}, {Reset, 0, false}, {Response, 504, false},
		}},
		{"out of range status never matches", []string{"5xx"}, []probe{
			{Response, -1, false}, {Response, 700, false}, {ErrorKind(200), 0, false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConditions(tt.on)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range tt.probes {
				if got := c.ShouldRetry(p.kind, p.status); got != p.want {
					t.Errorf("ShouldRetry(%d, %d) = %v, want %v", p.kind, p.status, got, p.want)
				}
			}
		})
	}
}

func TestConditionsGRPC(t *testing.T) {
	tests := []struct {
		on   []string
		code int
		want bool
	}{
		{[]string{"grpc:unavailable"}, 14, true},
		{[]string{"grpc:unavailable"}, 8, false},
		{[]string{"grpc:unavailable", "grpc:resource_exhausted"}, 8, true},
		{[]string{"grpc:cancelled"}, 1, true},
		{[]string{"grpc:unauthenticated"}, 16, true},
		{[]string{"grpc:unavailable"}, 0, false},
		{[]string{"grpc:unavailable"}, 46, false},
		{[]string{"grpc:unavailable"}, -1, false},
		{[]string{"5xx", "reset"}, 14, false}, // HTTP conditions are not gRPC ones
	}
	for _, tt := range tests {
		c, err := ParseConditions(tt.on)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.ShouldRetryGRPC(tt.code); got != tt.want {
			t.Errorf("%v: ShouldRetryGRPC(%d) = %v, want %v", tt.on, tt.code, got, tt.want)
		}
		if c.GRPC() != strings.HasPrefix(tt.on[0], "grpc:") {
			t.Errorf("%v: GRPC() = %v", tt.on, c.GRPC())
		}
		if c.ShouldRetry(Response, 200) || c.ShouldRetry(Response, 14) {
			t.Errorf("%v: a gRPC condition retries an HTTP status", tt.on)
		}
	}
	// Every name config lists is one code, and they are all different.
	seen := map[int]string{}
	for _, n := range config.RetryConditionNames() {
		if !strings.HasPrefix(n, "grpc:") {
			continue
		}
		c, err := ParseConditions([]string{n})
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		code := -1
		for k := 1; k < 32; k++ {
			if c.ShouldRetryGRPC(k) {
				code = k
			}
		}
		if prev, dup := seen[code]; dup || code < 1 || code > 16 {
			t.Errorf("%s: code %d (also %q)", n, code, prev)
		}
		seen[code] = n
	}
	if len(seen) != 16 {
		t.Errorf("%d gRPC names, want 16", len(seen))
	}
}

func TestConditionsErrors(t *testing.T) {
	_, err := ParseConditions([]string{"5xx", "sometimes", "99", "600", "abc", "Connect-Failure", "refused_stream"})
	if !errors.Is(err, config.ErrRetryCondition) {
		t.Fatalf("err = %v, want config.ErrRetryCondition", err)
	}
	for _, bad := range []string{`"sometimes"`, `99`, `600`, `"abc"`, `"Connect-Failure"`, `"refused_stream"`} {
		if !contains(err.Error(), bad) {
			t.Errorf("error %q does not mention %s", err, bad)
		}
	}
	if c, _ := ParseConditions(nil); !c.Empty() {
		t.Error("nil list not Empty")
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// fakeClock is a manually advanced clock safe for concurrent reads.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestBudgetOutage simulates a total outage: every attempt fails and the
// route would retry each request up to attempts-1 times. The budget must
// hold the retries near percent % of the requests plus the reserve.
func TestBudgetOutage(t *testing.T) {
	tests := []struct {
		name         string
		percent, min float64
		requests     int
		rps          int // requests per second of simulated time
		attempts     int
	}{
		{"1000 requests in 10s, 20% + 10/s", 20, 10, 1000, 100, 3},
		{"1000 requests in 10s, 20% no reserve", 20, 0, 1000, 100, 5},
		{"10000 requests in 100s, 20% + 10/s", 20, 10, 10000, 100, 3},
		{"1000 requests in 1s burst, 10% + 1/s", 10, 1, 1000, 1000, 3},
		{"low traffic keeps the reserve", 20, 10, 50, 5, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			b := NewBudget(tt.percent, tt.min, 0, clk.Now)
			step := time.Second / time.Duration(tt.rps)
			retries := 0
			for range tt.requests {
				b.RecordRequest()
				for a := 1; a < tt.attempts; a++ {
					if !b.TryRetry() {
						break
					}
					retries++
				}
				clk.Advance(step)
			}
			// Upper bound: per 10 s window at most percent% of that window's
			// requests plus the reserve; windows are counted generously
			// (one extra for the partial one).
			secs := float64(tt.requests) / float64(tt.rps)
			windows := secs/DefaultWindow.Seconds() + 1
			perWindowReq := min(float64(tt.requests), float64(tt.rps)*DefaultWindow.Seconds())
			upper := windows * (tt.percent/100*perWindowReq + tt.min*DefaultWindow.Seconds())
			upper = min(upper, float64(tt.requests*(tt.attempts-1)))
			// Lower bound: the steady-state allowance must actually be
			// granted (the budget is not stingier than promised).
			lower := 0.9 * min(float64(tt.requests*(tt.attempts-1)),
				tt.percent/100*float64(tt.requests)+tt.min*min(secs, DefaultWindow.Seconds()))
			ratio := float64(retries) / float64(tt.requests)
			t.Logf("%d requests, %d retries (%.1f%%), bounds [%.0f, %.0f]", tt.requests, retries, 100*ratio, lower, upper)
			if float64(retries) > upper || float64(retries) < lower {
				t.Errorf("retries = %d, want within [%.0f, %.0f]", retries, lower, upper)
			}
		})
	}
}

// TestBudget1000 states the headline number directly: 1000 requests within
// one window, 20 % + 10/s, allow exactly 200 + 100 retries.
func TestBudget1000(t *testing.T) {
	clk := newFakeClock()
	b := NewBudget(20, 10, 10*time.Second, clk.Now)
	retries := 0
	for range 1000 {
		b.RecordRequest()
		for range 5 {
			if b.TryRetry() {
				retries++
			}
		}
		clk.Advance(5 * time.Millisecond)
	}
	if retries != 300 {
		t.Fatalf("retries = %d, want 300 (20%% of 1000 + 10/s × 10 s)", retries)
	}
	if req, ret := b.Stats(); req != 1000 || ret != 300 {
		t.Fatalf("Stats() = %d, %d", req, ret)
	}
}

func TestBudgetWindowSlides(t *testing.T) {
	clk := newFakeClock()
	b := NewBudget(50, 0, 10*time.Second, clk.Now)
	for range 10 {
		b.RecordRequest()
	}
	for range 5 {
		if !b.TryRetry() {
			t.Fatal("retry within 50% refused")
		}
	}
	if b.TryRetry() {
		t.Fatal("6th retry for 10 requests at 50% allowed")
	}
	clk.Advance(11 * time.Second) // everything has left the window
	if req, ret := b.Stats(); req != 0 || ret != 0 {
		t.Fatalf("after the window: Stats() = %d, %d, want 0, 0", req, ret)
	}
	if b.TryRetry() {
		t.Fatal("retry without requests and without reserve allowed")
	}
	clk.Advance(-time.Hour) // a clock going backwards must not panic or reset
	b.RecordRequest()
	b.RecordRequest()
	if !b.TryRetry() {
		t.Fatal("retry refused after the clock went backwards")
	}
}

func TestBudgetConcurrent(t *testing.T) {
	b := NewBudget(10, 0, 0, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				b.RecordRequest()
				if b.TryRetry() {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if allowed > 800 {
		t.Fatalf("allowed %d retries for 8000 requests at 10%%", allowed)
	}
}
