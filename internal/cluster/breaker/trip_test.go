package breaker

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// t0 is the tests' clock origin; it has no monotonic reading, so the Trip
// measures on the wall clock, which the tests drive.
var t0 = time.Unix(1_700_000_000, 0)

func at(d time.Duration) time.Time { return t0.Add(d) }

// step is n attempts with result r, made at time at (all at once).
type step struct {
	at time.Duration
	r  Result
	n  int
}

// run makes the attempts of steps; each must be admitted.
func run(t *testing.T, tr *Trip, steps []step) {
	t.Helper()
	for _, s := range steps {
		for range s.n {
			tk, ok, ra := tr.Allow(at(s.at))
			if !ok {
				t.Fatalf("at %v: refused (retry after %v) while closed", s.at, ra)
			}
			tk.Done(s.r, at(s.at))
		}
	}
}

// record returns an OnChange that appends to *log.
func record(log *[]Transition) func(Transition) {
	return func(tr Transition) { *log = append(*log, tr) }
}

func TestTripOpensOnConsecutiveFailures(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		want  State
	}{
		{"four failures stay closed", []step{{0, Failure, 4}}, StateClosed},
		{"five failures open", []step{{0, Failure, 5}}, StateOpen},
		{"a success resets the run", []step{{0, Failure, 4}, {0, Success, 1}, {0, Failure, 4}}, StateClosed},
		{"ignored neither counts nor resets", []step{{0, Failure, 4}, {0, Ignored, 3}, {0, Failure, 1}}, StateOpen},
		{"spread over time", []step{{0, Failure, 2}, {time.Minute, Failure, 2}, {time.Hour, Failure, 1}}, StateOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log []Transition
			tr := NewTrip(TripConfig{ConsecutiveFailures: 5, MinRequests: 1000, OnChange: record(&log)})
			run(t, tr, tt.steps)
			if s, _ := tr.State(); s != tt.want {
				t.Fatalf("state %v, want %v", s, tt.want)
			}
			if tt.want == StateOpen && (len(log) != 1 || log[0].Reason != ConsecutiveFailures || log[0].Failures != 5) {
				t.Errorf("transitions %+v, want one for 5 consecutive failures", log)
			}
		})
	}
}

func TestTripOpensOnFailureRatio(t *testing.T) {
	alternate := func(at time.Duration, pairs int) []step {
		var s []step
		for range pairs {
			s = append(s, step{at, Success, 1}, step{at, Failure, 1})
		}
		return s
	}
	tests := []struct {
		name  string
		cfg   TripConfig
		steps []step
		want  State
	}{
		{"half failed at min requests", TripConfig{}, alternate(0, 10), StateOpen},
		{"half failed below min requests", TripConfig{}, alternate(0, 9), StateClosed},
		{"below the ratio", TripConfig{}, append([]step{{0, Success, 2}}, alternate(0, 9)...), StateClosed},
		{"exact tenth", TripConfig{FailureRatio: 0.1}, []step{{0, Success, 27}, {0, Failure, 3}}, StateOpen},
		{"expired buckets slide out", TripConfig{}, []step{{0, Failure, 4}, {0, Success, 1}, {0, Failure, 4}, {0, Success, 1}, {0, Failure, 4}, {0, Success, 1}, {0, Failure, 4}, {0, Success, 1}, {11 * time.Second, Failure, 1}}, StateClosed},
		{"inside the window they count", TripConfig{}, []step{{0, Failure, 4}, {0, Success, 1}, {0, Failure, 4}, {0, Success, 1}, {0, Failure, 4}, {0, Success, 1}, {0, Failure, 4}, {0, Success, 1}, {9 * time.Second, Failure, 1}}, StateOpen},
		{"ratio 1 needs every request failed", TripConfig{FailureRatio: 1, MinRequests: 5}, []step{{0, Success, 1}, {0, Failure, 4}, {time.Second, Failure, 4}}, StateClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log []Transition
			cfg := tt.cfg
			cfg.ConsecutiveFailures = 1000
			cfg.OnChange = record(&log)
			tr := NewTrip(cfg)
			run(t, tr, tt.steps)
			if s, _ := tr.State(); s != tt.want {
				t.Fatalf("state %v, want %v (stats %+v)", s, tt.want, tr.Stats(at(0)))
			}
			if tt.want == StateOpen && (len(log) != 1 || log[0].Reason != FailureRatio || log[0].Requests < 20) {
				t.Errorf("transitions %+v, want one for the failure ratio", log)
			}
		})
	}
}

// trip opens tr at now with consecutive failures.
func trip(t *testing.T, tr *Trip, now time.Time) {
	t.Helper()
	for i := 0; ; i++ {
		tk, ok, _ := tr.Allow(now)
		if !ok {
			return
		}
		if i > 1000 {
			t.Fatal("does not trip")
		}
		tk.Done(Failure, now)
	}
}

func TestTripOpenRefuses(t *testing.T) {
	tr := NewTrip(TripConfig{})
	trip(t, tr, at(0))
	for _, tt := range []struct {
		at      time.Duration
		ok      bool
		after   time.Duration
		seconds int
	}{
		{0, false, 5 * time.Second, 5},
		{800 * time.Millisecond, false, 4200 * time.Millisecond, 5},
		{4 * time.Second, false, time.Second, 1},
		{5*time.Second - time.Nanosecond, false, time.Nanosecond, 1},
		{5 * time.Second, true, 0, 0},
	} {
		tk, ok, ra := tr.Allow(at(tt.at))
		if ok != tt.ok || ra != tt.after {
			t.Fatalf("Allow(+%v) = ok %v, retry after %v; want %v, %v", tt.at, ok, ra, tt.ok, tt.after)
		}
		if !ok && RetryAfterSeconds(ra) != tt.seconds {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", ra, RetryAfterSeconds(ra), tt.seconds)
		}
		if ok != tk.Probe() {
			t.Errorf("+%v: Probe() = %v", tt.at, tk.Probe())
		}
	}
	if s, _ := tr.State(); s != StateHalfOpen {
		t.Errorf("state %v after the open period, want half_open", s)
	}
}

func TestTripHalfOpenProbes(t *testing.T) {
	var log []Transition
	tr := NewTrip(TripConfig{HalfOpenRequests: 3, OnChange: record(&log)})
	trip(t, tr, at(0))
	now := at(5 * time.Second)
	var probes []Ticket
	for range 3 {
		tk, ok, _ := tr.Allow(now)
		if !ok || !tk.Probe() {
			t.Fatal("probe refused")
		}
		probes = append(probes, tk)
	}
	if _, ok, ra := tr.Allow(now); ok || ra != HalfOpenRetryAfter {
		t.Fatalf("4th request while 3 probes are out: ok %v, retry after %v", ok, ra)
	}
	if st := tr.Stats(now); st.State != StateHalfOpen || st.Probes != 3 {
		t.Errorf("Stats = %+v", st)
	}
	probes[0].Done(Success, now)
	probes[1].Done(Success, now)
	if s, _ := tr.State(); s != StateHalfOpen {
		t.Fatalf("closed after 2 of 3 probes: %v", s)
	}
	// Probe slots are not reused once taken: still refused.
	if _, ok, _ := tr.Allow(now); ok {
		t.Fatal("admitted a 4th probe")
	}
	probes[2].Done(Success, now)
	if s, _ := tr.State(); s != StateClosed {
		t.Fatalf("state %v after every probe succeeded, want closed", s)
	}
	// Counters were reset: four failures do not trip a fresh circuit.
	run(t, tr, []step{{6 * time.Second, Failure, 4}})
	if st := tr.Stats(at(6 * time.Second)); st.State != StateClosed || st.ConsecutiveFailures != 4 || st.Requests != 4 || st.Reopens != 0 {
		t.Errorf("after closing and 4 failures: %+v", st)
	}
	if n := len(log); n != 3 || log[2].Reason != ProbesSucceeded || log[2].To != StateClosed {
		t.Errorf("transitions %+v", log)
	}
}

func TestTripIgnoredProbeFreesItsSlot(t *testing.T) {
	tr := NewTrip(TripConfig{HalfOpenRequests: 1})
	trip(t, tr, at(0))
	now := at(5 * time.Second)
	tk, ok, _ := tr.Allow(now)
	if !ok {
		t.Fatal("probe refused")
	}
	if _, ok, _ := tr.Allow(now); ok {
		t.Fatal("second probe admitted")
	}
	tk.Done(Ignored, now)
	tk, ok, _ = tr.Allow(now)
	if !ok {
		t.Fatal("slot of an ignored probe not given back")
	}
	tk.Done(Success, now)
	if s, _ := tr.State(); s != StateClosed {
		t.Fatalf("state %v", s)
	}
}

func TestTripProbeTimeout(t *testing.T) {
	var log []Transition
	tr := NewTrip(TripConfig{OpenFor: time.Second, MaxOpenFor: 4 * time.Second, HalfOpenRequests: 1, OnChange: record(&log)})
	trip(t, tr, at(0))
	hung, ok, _ := tr.Allow(at(time.Second)) // half-open from 1s, deadline 5s
	if !ok {
		t.Fatal("no probe")
	}
	if _, ok, ra := tr.Allow(at(5*time.Second - 1)); ok || ra != HalfOpenRetryAfter {
		t.Fatalf("before the probe deadline: %v, %v", ok, ra)
	}
	// At the deadline the hung probe counts as failed: open for 2s.
	if _, ok, ra := tr.Allow(at(5 * time.Second)); ok || ra != 2*time.Second {
		t.Fatalf("at the probe deadline: %v, %v", ok, ra)
	}
	if s, until := tr.State(); s != StateOpen || !until.Equal(at(7*time.Second)) {
		t.Fatalf("state %v until %v", s, until)
	}
	if last := log[len(log)-1]; last.Reason != ProbeTimeout || last.From != StateHalfOpen {
		t.Errorf("last transition %+v", last)
	}
	hung.Done(Success, at(6*time.Second)) // too late: not counted
	if st := tr.Stats(at(6 * time.Second)); st.State != StateOpen || st.Reopens != 1 {
		t.Errorf("after the late probe: %+v", st)
	}
}

func TestTripReopenBackoff(t *testing.T) {
	tr := NewTrip(TripConfig{OpenFor: 5 * time.Second, MaxOpenFor: 60 * time.Second, HalfOpenRequests: 1})
	now := at(0)
	trip(t, tr, now)
	for i, want := range []time.Duration{5, 10, 20, 40, 60, 60, 60} {
		want *= time.Second
		s, until := tr.State()
		if s != StateOpen || until.Sub(now) != want {
			t.Fatalf("open %d: state %v for %v, want open for %v", i, s, until.Sub(now), want)
		}
		if _, ok, ra := tr.Allow(now); ok || ra != want {
			t.Fatalf("open %d: Allow = %v, %v", i, ok, ra)
		}
		now = until
		tk, ok, _ := tr.Allow(now)
		if !ok || !tk.Probe() {
			t.Fatalf("open %d: no probe at the end of the period", i)
		}
		tk.Done(Failure, now)
	}
	if st := tr.Stats(now); st.Reopens != 7 {
		t.Errorf("Reopens = %d", st.Reopens)
	}
	// A successful probe closes and resets the exponent.
	_, until := tr.State()
	now = until
	tk, _, _ := tr.Allow(now)
	tk.Done(Success, now)
	trip(t, tr, now)
	if _, until := tr.State(); until.Sub(now) != 5*time.Second {
		t.Errorf("open for %v after closing, want 5s", until.Sub(now))
	}
}

func TestTripStaleTicketsIgnored(t *testing.T) {
	tr := NewTrip(TripConfig{HalfOpenRequests: 2})
	// Admitted while closed, reported after the circuit opened.
	late, _, _ := tr.Allow(at(0))
	trip(t, tr, at(0))
	late.Done(Failure, at(time.Second))
	late.Done(Success, at(time.Second))
	if st := tr.Stats(at(time.Second)); st.State != StateOpen || st.Reopens != 0 {
		t.Fatalf("a closed-period ticket changed an open circuit: %+v", st)
	}

	// A probe of the first half-open period reported in the second.
	now := at(5 * time.Second)
	p1, _, _ := tr.Allow(now)
	p2, _, _ := tr.Allow(now)
	p2.Done(Failure, now) // reopens for 10s
	now = now.Add(10 * time.Second)
	q1, ok, _ := tr.Allow(now)
	if !ok {
		t.Fatal("no probe in the second half-open period")
	}
	p1.Done(Success, now)
	p1.Done(Success, now)
	if st := tr.Stats(now); st.State != StateHalfOpen || st.Probes != 1 {
		t.Fatalf("an earlier probe counted: %+v", st)
	}
	q2, _, _ := tr.Allow(now)
	q1.Done(Success, now)
	q2.Done(Success, now)
	if s, _ := tr.State(); s != StateClosed {
		t.Fatalf("state %v", s)
	}
	// A ticket of an earlier closed period does not count in this one.
	late.Done(Failure, now)
	if st := tr.Stats(now); st.ConsecutiveFailures != 0 || st.Requests != 0 {
		t.Errorf("a ticket of an earlier closed period counted: %+v", st)
	}
	// The zero Ticket, from a refusal, may be Done.
	Ticket{}.Done(Failure, now)
}

func TestTripTransitions(t *testing.T) {
	var log []Transition
	tr := NewTrip(TripConfig{ConsecutiveFailures: 3, MinRequests: 4, FailureRatio: 0.5, HalfOpenRequests: 1, OnChange: record(&log)})
	trip(t, tr, at(0))                       // closed → open, 3 in a row
	p, _, _ := tr.Allow(at(5 * time.Second)) // open → half-open
	p.Done(Failure, at(5*time.Second))       // half-open → open for 10s
	p, _, _ = tr.Allow(at(15 * time.Second)) // open → half-open
	p.Done(Success, at(15*time.Second))      // half-open → closed
	run(t, tr, []step{{16 * time.Second, Failure, 2}, {16 * time.Second, Success, 1}, {16 * time.Second, Failure, 1}})
	want := []Transition{
		{From: StateClosed, To: StateOpen, Reason: ConsecutiveFailures, At: at(0), Until: at(5 * time.Second), Failures: 3},
		{From: StateOpen, To: StateHalfOpen, Reason: OpenElapsed, At: at(5 * time.Second)},
		{From: StateHalfOpen, To: StateOpen, Reason: ProbeFailed, At: at(5 * time.Second), Until: at(15 * time.Second)},
		{From: StateOpen, To: StateHalfOpen, Reason: OpenElapsed, At: at(15 * time.Second)},
		{From: StateHalfOpen, To: StateClosed, Reason: ProbesSucceeded, At: at(15 * time.Second)},
		{From: StateClosed, To: StateOpen, Reason: FailureRatio, At: at(16 * time.Second), Until: at(21 * time.Second), Failures: 3, Requests: 4},
	}
	if len(log) != len(want) {
		t.Fatalf("got %d transitions %+v, want %d", len(log), log, len(want))
	}
	for i := range want {
		if !log[i].At.Equal(want[i].At) || !log[i].Until.Equal(want[i].Until) {
			t.Errorf("transition %d times: got %v/%v, want %v/%v", i, log[i].At, log[i].Until, want[i].At, want[i].Until)
		}
		log[i].At, log[i].Until, want[i].At, want[i].Until = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if log[i] != want[i] {
			t.Errorf("transition %d: got %+v, want %+v", i, log[i], want[i])
		}
	}
}

func TestTripSetConfigKeepsState(t *testing.T) {
	tr := NewTrip(TripConfig{ConsecutiveFailures: 100})
	run(t, tr, []step{{0, Failure, 3}, {0, Success, 7}})
	tr.SetConfig(TripConfig{ConsecutiveFailures: 100})
	if st := tr.Stats(at(0)); st.Requests != 10 || st.Failures != 3 {
		t.Fatalf("same window: counts not kept: %+v", st)
	}
	tr.SetConfig(TripConfig{ConsecutiveFailures: 100, Window: time.Minute})
	if st := tr.Stats(at(0)); st.Requests != 0 {
		t.Fatalf("new window length: counts kept: %+v", st)
	}
	tr.SetConfig(TripConfig{ConsecutiveFailures: 2})
	trip(t, tr, at(0))
	tr.SetConfig(TripConfig{OpenFor: time.Hour, MaxOpenFor: 3 * time.Hour})
	if s, until := tr.State(); s != StateOpen || !until.Equal(at(5*time.Second)) {
		t.Fatalf("reload changed an open period: %v until %v", s, until)
	}
	// The new settings apply from the next transition.
	p, _, _ := tr.Allow(at(5 * time.Second))
	p.Done(Failure, at(5*time.Second))
	if _, until := tr.State(); until.Sub(at(5*time.Second)) != 2*time.Hour {
		t.Errorf("reopened until +%v, want 2h (OpenFor 1h × 2)", until.Sub(at(5*time.Second)))
	}
}

// TestTripSynctest drives a breaker with the real time API inside a
// synctest bubble, whose clock only moves when every goroutine sleeps.
func TestTripSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log []Transition
		tr := NewTrip(TripConfig{OpenFor: 2 * time.Second, MaxOpenFor: 3 * time.Second, HalfOpenRequests: 2, OnChange: record(&log)})
		for range 5 {
			tk, _, _ := tr.Allow(time.Now())
			time.Sleep(10 * time.Millisecond) // the attempt
			tk.Done(Failure, time.Now())
		}
		start := time.Now()
		if _, ok, ra := tr.Allow(start); ok || ra != 2*time.Second {
			t.Fatalf("Allow after tripping = %v, %v", ok, ra)
		}
		time.Sleep(1500 * time.Millisecond)
		if _, ok, ra := tr.Allow(time.Now()); ok || ra != 500*time.Millisecond {
			t.Fatalf("Allow 1.5s into the open period = %v, %v", ok, ra)
		}
		time.Sleep(500 * time.Millisecond)
		probe, ok, _ := tr.Allow(time.Now())
		if !ok {
			t.Fatal("no probe after open_for")
		}
		probe.Done(Failure, time.Now())
		// Reopened for 4s capped at 3s.
		if _, until := tr.State(); until.Sub(time.Now()) != 3*time.Second {
			t.Fatalf("reopened for %v, want 3s", until.Sub(time.Now()))
		}
		time.Sleep(3 * time.Second)
		var wg sync.WaitGroup
		for range 2 {
			tk, ok, _ := tr.Allow(time.Now())
			if !ok {
				t.Fatal("probe refused")
			}
			wg.Go(func() {
				time.Sleep(20 * time.Millisecond)
				tk.Done(Success, time.Now())
			})
		}
		synctest.Wait()
		if s, _ := tr.State(); s != StateHalfOpen {
			t.Fatalf("state %v while probes are out", s)
		}
		wg.Wait()
		if s, _ := tr.State(); s != StateClosed {
			t.Fatalf("state %v after the probes", s)
		}
		if len(log) != 5 {
			t.Errorf("transitions: %+v", log)
		}
	})
}

// TestTripConcurrent hammers a breaker that keeps tripping and recovering
// from many goroutines, under -race, on a shared clock that they advance.
// Half-open probes out at once never exceed HalfOpenRequests, and the
// transitions form one chain.
func TestTripConcurrent(t *testing.T) {
	const probesMax = 3
	var (
		mu  sync.Mutex
		log []Transition
	)
	tr := NewTrip(TripConfig{
		ConsecutiveFailures: 5, MinRequests: 10, Window: time.Second,
		OpenFor: 20 * time.Millisecond, MaxOpenFor: 200 * time.Millisecond, HalfOpenRequests: probesMax,
		OnChange: func(x Transition) { mu.Lock(); log = append(log, x); mu.Unlock() },
	})
	var clk atomic.Int64
	var admitted, refused atomic.Int64
	// Probes out, per half-open period (a probe of an earlier period may
	// still be out when the next period admits its own).
	var (
		pmu  sync.Mutex
		out  = map[uint64]int{}
		peak int
	)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for range 5000 {
				now := at(time.Duration(clk.Add(int64(50 * time.Microsecond))))
				tk, ok, ra := tr.Allow(now)
				if !ok {
					if ra <= 0 {
						t.Errorf("refused with retry after %v", ra)
					}
					refused.Add(1)
					continue
				}
				admitted.Add(1)
				if tk.Probe() {
					pmu.Lock()
					out[tk.state]++
					peak = max(peak, out[tk.state])
					pmu.Unlock()
				}
				// Failing phases alternate with healthy ones.
				failP := 0.05
				if (clk.Load()/int64(100*time.Millisecond))%2 == 0 {
					failP = 0.9
				}
				r := Success
				switch x := rng.Float64(); {
				case x < failP:
					r = Failure
				case x < failP+0.02:
					r = Ignored
				}
				if tk.Probe() {
					pmu.Lock()
					tk.Done(r, at(time.Duration(clk.Load())))
					out[tk.state]--
					pmu.Unlock()
					continue
				}
				tk.Done(r, at(time.Duration(clk.Load())))
			}
		})
	}
	wg.Wait()
	if peak > probesMax || peak == 0 {
		t.Errorf("%d probes out at once in one period, want 1 to %d", peak, probesMax)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(log) < 6 {
		t.Errorf("only %d transitions (admitted %d, refused %d): the test did not exercise the cycle", len(log), admitted.Load(), refused.Load())
	}
	prev := StateClosed
	for i, x := range log {
		if x.From != prev || x.From == x.To {
			t.Fatalf("transition %d %v → %v after %v", i, x.From, x.To, prev)
		}
		prev = x.To
	}
	if s, _ := tr.State(); s != prev {
		t.Errorf("state %v, last transition to %v", s, prev)
	}
	t.Logf("%d transitions, %d admitted, %d refused, peak probes %d", len(log), admitted.Load(), refused.Load(), peak)
}

func TestTripDefaults(t *testing.T) {
	p := NewTrip(TripConfig{}).p.Load()
	want := tripParams{consecutive: 5, ratio: 0.5, minRequests: 20, window: 10 * time.Second, width: int64(time.Second),
		openFor: 5 * time.Second, maxOpenFor: 60 * time.Second, halfOpen: 3}
	if !reflect.DeepEqual(*p, want) {
		t.Errorf("defaults %+v, want %+v", *p, want)
	}
	p = NewTrip(TripConfig{FailureRatio: 3, OpenFor: 2 * time.Minute, Window: 5}).p.Load()
	if p.ratio != 1 || p.maxOpenFor != 2*time.Minute || p.width != 1 {
		t.Errorf("clamping: %+v", *p)
	}
	p = NewTrip(TripConfig{OpenFor: time.Minute, MaxOpenFor: time.Second}).p.Load()
	if p.maxOpenFor != time.Minute {
		t.Errorf("max_open_for below open_for: %v", p.maxOpenFor)
	}
}

func TestTripNames(t *testing.T) {
	for s, want := range map[State]string{StateClosed: "closed", StateOpen: "open", StateHalfOpen: "half_open", 9: "unknown"} {
		if s.String() != want {
			t.Errorf("State(%d) = %q", s, s.String())
		}
	}
	for r, want := range map[Reason]string{0: "unknown", ConsecutiveFailures: "consecutive_failures", FailureRatio: "failure_ratio", OpenElapsed: "open_elapsed", ProbeFailed: "probe_failed", ProbesSucceeded: "probes_succeeded", ProbeTimeout: "probe_timeout", 99: "unknown"} {
		if r.String() != want {
			t.Errorf("Reason(%d) = %q", r, r.String())
		}
	}
	b, err := json.Marshal(TripStats{State: StateHalfOpen, Probes: 1})
	if err != nil || string(b) != `{"state":"half_open","consecutive_failures":0,"window_failures":0,"window_requests":0,"reopens":0,"probes":1}` {
		t.Errorf("TripStats JSON = %s, %v", b, err)
	}
}

func TestStatusSet(t *testing.T) {
	var s StatusSet
	s.AddRange(500, 500)
	s.AddRange(502, 599)
	s.AddRange(700, 800) // out of range: ignored
	s.AddRange(-5, -1)
	for code, want := range map[int]bool{500: true, 501: false, 502: true, 503: true, 599: true, 499: false, 200: false, 600: false, -1: false, 639: false, 9999: false} {
		if s.Has(code) != want {
			t.Errorf("Has(%d) = %v", code, !want)
		}
	}
	if s.Classify(503) != Failure || s.Classify(404) != Success {
		t.Error("Classify")
	}
}

func TestRing(t *testing.T) {
	var r ring
	for i := range int64(numBuckets) {
		r.add(i, i%2 == 0)
	}
	if f, n := r.sum(numBuckets - 1); f != 5 || n != 10 {
		t.Errorf("full window: %d/%d", f, n)
	}
	// Three buckets later the three oldest have expired.
	if f, n := r.sum(numBuckets + 2); f != 3 || n != 7 {
		t.Errorf("slid by 3: %d/%d", f, n)
	}
	// A bucket written with a slightly later clock still counts.
	r.add(numBuckets, false)
	if _, n := r.sum(numBuckets - 1); n != 10 {
		t.Errorf("with a bucket ahead: %d requests, want 10 (bucket 0 replaced by bucket 10)", n)
	}
	// Negative clock readings (times before the process started).
	var neg ring
	neg.add(-11, true)
	neg.add(-1, true)  // a window later: replaces bucket -11
	neg.add(-11, true) // a window late: dropped
	if f, n := neg.sum(-1); f != 1 || n != 1 {
		t.Errorf("negative indexes: %d/%d", f, n)
	}
	// Counts saturate instead of overflowing into the epoch.
	var sat ring
	sat[0].Store(countMask)
	sat.add(0, true)
	if f, n := sat.sum(0); n != countMask || f != 0 {
		t.Errorf("saturated: %d/%d", f, n)
	}
	if floorDiv(-1, 10) != -1 || floorDiv(-10, 10) != -1 || floorDiv(9, 10) != 0 {
		t.Error("floorDiv")
	}
}
