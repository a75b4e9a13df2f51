package outlier

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type event struct {
	addr    string
	ejected bool
}

type recorder struct {
	mu     sync.Mutex
	events []event
}

func (r *recorder) OnChange(addr string, ejected bool) {
	r.mu.Lock()
	r.events = append(r.events, event{addr, ejected})
	r.mu.Unlock()
}

func (r *recorder) take() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.events
	r.events = nil
	return e
}

const (
	S = Success
	E = ServerError
	C = ConnectFailure
)

func TestThresholds(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		results []Result
		want    bool
	}{
		{"five 5xx eject by default", Config{}, []Result{E, E, E, E, E}, true},
		{"four 5xx do not", Config{}, []Result{E, E, E, E}, false},
		{"a success resets the count", Config{}, []Result{E, E, E, E, S, E, E, E, E}, false},
		{"connect failures count as 5xx", Config{}, []Result{C, E, C, E, C}, true},
		{"separate connect threshold", Config{ConsecutiveConnectFailures: 2}, []Result{C, C}, true},
		{"a 5xx resets connect failures", Config{ConsecutiveConnectFailures: 2}, []Result{C, E, C}, false},
		{"custom 5xx threshold", Config{Consecutive5xx: 2}, []Result{E, E}, true},
		{"5xx detection disabled", Config{Consecutive5xx: -1}, []Result{E, E, E, E, E, E, E, E}, false},
		{"disabled 5xx still ejects on connect threshold", Config{Consecutive5xx: -1, ConsecutiveConnectFailures: 3}, []Result{C, C, C}, true},
		{"zero percent never ejects", Config{MaxEjectionPercent: -1}, []Result{E, E, E, E, E}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			d := New(tt.cfg, Deps{Now: clk.Now})
			d.Update([]string{"a:1", "b:1"})
			for _, r := range tt.results {
				d.Report("a:1", r)
			}
			if got := d.Ejected("a:1"); got != tt.want {
				t.Fatalf("Ejected = %v, want %v", got, tt.want)
			}
			if d.Ejected("b:1") {
				t.Fatal("b ejected without reports")
			}
			d.Report("unknown:1", E) // must not panic
		})
	}
}

func TestMaxEjectionPercent(t *testing.T) {
	tests := []struct {
		name    string
		targets int
		percent int
		want    int
	}{
		{"half of ten", 10, 50, 5},
		{"default half of ten", 10, 0, 5},
		{"at least one of two at ten percent", 2, 10, 1},
		{"the only target", 1, 50, 1},
		{"half of four", 4, 50, 2},
		{"half of three rounds down but keeps one", 3, 50, 1},
		{"all of five at 100", 5, 100, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			d := New(Config{Consecutive5xx: 1, MaxEjectionPercent: tt.percent}, Deps{Now: clk.Now})
			var addrs []string
			for i := range tt.targets {
				addrs = append(addrs, fmt.Sprintf("10.0.0.%d:80", i))
			}
			d.Update(addrs)
			for range 3 {
				for _, a := range addrs {
					d.Report(a, E)
				}
			}
			got := 0
			for _, a := range addrs {
				if d.Ejected(a) {
					got++
				}
			}
			if got != tt.want {
				t.Fatalf("%d ejected, want %d", got, tt.want)
			}
		})
	}
}

// TestEjectionTimeAndDecay walks one target through repeated ejections:
// the n-th lasts base × n, and the multiplier decays by one per interval
// spent healthy.
func TestEjectionTimeAndDecay(t *testing.T) {
	clk := newClock()
	rec := &recorder{}
	d := New(Config{Consecutive5xx: 1, Interval: 10 * time.Second, BaseEjectionTime: 30 * time.Second, MaxEjectionPercent: 100},
		Deps{Now: clk.Now, OnChange: rec.OnChange})
	d.Update([]string{"a:1", "b:1"})
	start := clk.Now()

	type step struct {
		name    string
		advance time.Duration
		report  bool // a 5xx from a:1 after advancing
		ejected bool
		until   time.Duration // from start; 0 when not ejected
	}
	steps := []step{
		{"first ejection lasts base", 0, true, true, 30 * time.Second},
		{"still ejected just before", 30*time.Second - time.Millisecond, false, true, 30 * time.Second},
		{"re-admitted at the deadline", time.Millisecond, false, false, 0},
		{"second ejection lasts 2 × base", 0, true, true, 90 * time.Second},
		{"re-admitted after 60 s", 60 * time.Second, false, false, 0},
		// The decay sweeps fell at 10 s steps while ejected (no decay) and
		// now run healthy: three intervals bring the multiplier 2 → 0.
		{"healthy for 30 s", 30 * time.Second, false, false, 0},
		{"third ejection is back to base", 0, true, true, 150 * time.Second},
	}
	for _, s := range steps {
		if s.advance > 0 {
			// Sweep at every interval boundary on the way, like Run.
			for left := s.advance; left > 0; {
				dt := min(left, 10*time.Second)
				clk.Advance(dt)
				left -= dt
				d.Sweep()
			}
		}
		if s.report {
			d.Report("a:1", E)
		}
		if got := d.Ejected("a:1"); got != s.ejected {
			t.Fatalf("%s: Ejected = %v, want %v", s.name, got, s.ejected)
		}
		var want time.Time
		if s.until > 0 {
			want = start.Add(s.until)
		}
		if got := d.EjectedUntil("a:1"); !got.Equal(want) {
			t.Fatalf("%s: EjectedUntil = %v, want %v", s.name, got.Sub(start), s.until)
		}
	}
	got := rec.take()
	want := []event{{"a:1", true}, {"a:1", false}, {"a:1", true}, {"a:1", false}, {"a:1", true}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

func TestMaxEjectionTimeCap(t *testing.T) {
	clk := newClock()
	d := New(Config{Consecutive5xx: 1, BaseEjectionTime: 100 * time.Second, MaxEjectionTime: 250 * time.Second, MaxEjectionPercent: 100, Interval: time.Hour},
		Deps{Now: clk.Now})
	d.Update([]string{"a:1"})
	for i, want := range []time.Duration{100, 200, 250, 250, 250} {
		d.Report("a:1", E)
		got := d.EjectedUntil("a:1").Sub(clk.Now())
		if got != want*time.Second {
			t.Fatalf("ejection %d lasts %v, want %vs", i+1, got, want)
		}
		clk.Advance(got)
		d.Sweep()
	}
}

func TestEjectWhenRoomFrees(t *testing.T) {
	clk := newClock()
	d := New(Config{Consecutive5xx: 2, BaseEjectionTime: 10 * time.Second, MaxEjectionPercent: 50, Interval: time.Hour},
		Deps{Now: clk.Now})
	d.Update([]string{"a:1", "b:1", "c:1", "d:1"})
	for _, a := range []string{"a:1", "b:1", "c:1", "d:1"} {
		d.Report(a, E)
		d.Report(a, E)
	}
	if !d.Ejected("a:1") || !d.Ejected("b:1") || d.Ejected("c:1") || d.Ejected("d:1") {
		t.Fatalf("want a, b ejected only: %+v", d.Snapshot())
	}
	clk.Advance(10 * time.Second)
	d.Sweep()
	d.Report("c:1", E) // over its threshold since before; now there is room
	if !d.Ejected("c:1") {
		t.Fatalf("c not ejected once room freed: %+v", d.Snapshot())
	}
}

func TestUpdateKeepsState(t *testing.T) {
	clk := newClock()
	rec := &recorder{}
	d := New(Config{Consecutive5xx: 3, MaxEjectionPercent: 50}, Deps{Now: clk.Now, OnChange: rec.OnChange})
	d.Update([]string{"a:1", "b:1", "c:1", "d:1"})
	for range 3 {
		d.Report("a:1", E)
	}
	d.Report("b:1", E)
	d.Report("b:1", E)
	until := d.EjectedUntil("a:1")

	d.Update([]string{"a:1", "b:1", "e:1", "f:1"}) // a reload: c, d replaced
	if !d.Ejected("a:1") || !d.EjectedUntil("a:1").Equal(until) {
		t.Fatal("a lost its ejection across Update")
	}
	d.Report("b:1", E) // third consecutive 5xx: the count survived
	if !d.Ejected("b:1") {
		t.Fatal("b's consecutive count lost across Update")
	}

	// Removing an ejected target frees its share.
	d.Update([]string{"b:1", "e:1", "f:1", "g:1"})
	if d.Ejected("a:1") {
		t.Fatal("removed target still reported ejected")
	}
	for range 3 {
		d.Report("e:1", E)
	}
	if !d.Ejected("e:1") {
		t.Fatalf("e not ejected: 1 of 4 ejected before: %+v", d.Snapshot())
	}
	if got := rec.take(); len(got) != 3 {
		t.Fatalf("events %v, want 3 ejections and no removal event", got)
	}
}

// TestRunReadmits runs the real loop in a synctest bubble: the fake clock
// jumps straight to the ejection deadline.
func TestRunReadmits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		d := New(Config{Consecutive5xx: 1, BaseEjectionTime: 30 * time.Second, Interval: 10 * time.Second},
			Deps{OnChange: rec.OnChange})
		d.Update([]string{"a:1", "b:1"})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { d.Run(ctx); close(done) }()

		time.Sleep(5 * time.Second) // between interval sweeps
		start := time.Now()
		d.Report("a:1", E)
		synctest.Wait()
		if !d.Ejected("a:1") {
			t.Fatal("not ejected")
		}
		time.Sleep(30*time.Second - time.Nanosecond)
		synctest.Wait()
		if !d.Ejected("a:1") {
			t.Fatal("re-admitted early")
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if d.Ejected("a:1") {
			t.Fatalf("still ejected %v after the deadline", time.Since(start))
		}
		if got := rec.take(); len(got) != 2 || got[1] != (event{"a:1", false}) {
			t.Fatalf("events %v", got)
		}
		cancel()
		<-done
	})
}

func TestConcurrentReports(t *testing.T) {
	clk := newClock()
	d := New(Config{Consecutive5xx: 50, MaxEjectionPercent: 50}, Deps{Now: clk.Now})
	addrs := []string{"a:1", "b:1", "c:1", "d:1"}
	d.Update(addrs)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 5000 {
				a := addrs[(g+i)%len(addrs)]
				d.Report(a, Result(i%3))
				if i%100 == 0 {
					d.Sweep()
					_ = d.Ejected(a)
				}
				if i%1000 == 0 {
					d.Update(addrs)
				}
			}
		})
	}
	// Every target fails hard now: at most half may be ejected.
	for range 100 {
		for _, a := range addrs {
			d.Report(a, E)
		}
	}
	wg.Wait()
	n := 0
	for _, s := range d.Snapshot() {
		if s.Ejected {
			n++
		}
	}
	if n > 2 {
		t.Fatalf("%d of 4 ejected with max 50%%", n)
	}
}
