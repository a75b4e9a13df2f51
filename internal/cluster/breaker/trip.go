package breaker

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
)

// Defaults for a zero TripConfig field: config's circuit_breaker.trip
// defaults (package config is their home, issue 16).
const (
	DefaultConsecutiveFailures = config.DefaultTripConsecutiveFailures
	DefaultFailureRatio        = config.DefaultTripFailureRatio
	DefaultMinRequests         = config.DefaultTripMinRequests
	DefaultWindow              = time.Duration(config.DefaultTripWindow)
	DefaultOpenFor             = time.Duration(config.DefaultTripOpenFor)
	DefaultMaxOpenFor          = time.Duration(config.DefaultTripMaxOpenFor)
	DefaultHalfOpenRequests    = config.DefaultTripHalfOpenRequests
)

// HalfOpenRetryAfter is the retryAfter of a request refused while the
// circuit is half-open and every probe slot is taken: the probes decide
// within about a request's time whether the circuit closes.
const HalfOpenRetryAfter = time.Second

// numBuckets is the resolution of the sliding window: Window is kept as
// this many buckets of Window/numBuckets each.
const numBuckets = 10

// TripConfig configures a Trip. A zero field takes its default; NewTrip
// does not validate (package config does) but keeps every value usable.
type TripConfig struct {
	// ConsecutiveFailures opens the circuit after this many failures in a
	// row while closed. Default 5.
	ConsecutiveFailures int
	// FailureRatio opens the circuit when failures are at least this share
	// of the requests in Window, once there are MinRequests of them.
	// Default 0.5; above 1 it is taken as 1.
	FailureRatio float64
	// MinRequests is the number of requests in Window below which
	// FailureRatio is not applied. Default 20.
	MinRequests int
	// Window is the span of FailureRatio, a ring of 10 buckets of
	// Window/10: the window slides by a tenth at a time. Default 10 s.
	Window time.Duration
	// OpenFor is the first open period. Default 5 s.
	OpenFor time.Duration
	// MaxOpenFor caps OpenFor × 2^n, the open period after n failed
	// half-open probes in a row. Default 60 s, or OpenFor if longer.
	MaxOpenFor time.Duration
	// HalfOpenRequests is the number of probes let through while
	// half-open; all must succeed for the circuit to close. Default 3.
	HalfOpenRequests int
	// OnChange, if set, is called once per transition, in order. It runs
	// with the Trip's lock held: it must be quick (a log line, a gauge)
	// and must not call the Trip.
	OnChange func(Transition)
}

// State is the state of a Trip.
type State uint8

// The states. The zero State is StateClosed.
const (
	// StateClosed lets every request through and counts failures.
	StateClosed State = iota
	// StateOpen refuses every request until the open period ends.
	StateOpen
	// StateHalfOpen lets HalfOpenRequests probes through and refuses the
	// rest.
	StateHalfOpen
)

var stateNames = [...]string{"closed", "open", "half_open"}

// String returns the snake_case name used in the admin API and logs.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// MarshalText writes the name of s, so that JSON shows "open".
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Result is the outcome of one admitted upstream attempt.
type Result uint8

// The outcomes. Which responses are failures is decided by the caller; a
// StatusSet classifies statuses.
const (
	// Success is a response that is not a failure (any status not in the
	// StatusSet, 4xx included: the upstream is answering).
	Success Result = iota
	// Failure is a failing status, a connect failure, a reset or a
	// timeout.
	Failure
	// Ignored is an attempt that proves nothing about the upstream, such
	// as one abandoned because the client went away. It is not counted;
	// a half-open probe's slot is given back.
	Ignored
)

// Reason says why a transition happened.
type Reason uint8

// The reasons.
const (
	// ConsecutiveFailures: closed → open, ConsecutiveFailures in a row.
	ConsecutiveFailures Reason = iota + 1
	// FailureRatio: closed → open, FailureRatio reached over Window.
	FailureRatio
	// OpenElapsed: open → half-open, the open period is over.
	OpenElapsed
	// ProbeFailed: half-open → open, a probe failed.
	ProbeFailed
	// ProbesSucceeded: half-open → closed, every probe succeeded.
	ProbesSucceeded
	// ProbeTimeout: half-open → open, the probes had not all reported
	// MaxOpenFor after the circuit became half-open (an upstream that
	// hangs, with no route timeout); counted as a failed probe.
	ProbeTimeout
)

var reasonNames = [...]string{"", "consecutive_failures", "failure_ratio", "open_elapsed", "probe_failed", "probes_succeeded", "probe_timeout"}

// String returns the snake_case name of r.
func (r Reason) String() string {
	if int(r) < len(reasonNames) && r != 0 {
		return reasonNames[r]
	}
	return "unknown"
}

// Transition describes one change of state, for OnChange.
type Transition struct {
	From, To State
	Reason   Reason
	// At is the now of the call that made the change.
	At time.Time
	// Until is when the open period ends, when To is StateOpen.
	Until time.Time
	// Failures and Requests are what tripped the circuit: for
	// ConsecutiveFailures the run of failures (Requests 0), for
	// FailureRatio the counts over the window.
	Failures, Requests int
}

// tripParams is a TripConfig with defaults applied, swapped atomically by
// SetConfig.
type tripParams struct {
	consecutive int64
	ratio       float64
	minRequests uint64
	window      time.Duration
	width       int64 // nanoseconds per bucket, at least 1
	openFor     time.Duration
	maxOpenFor  time.Duration
	halfOpen    int
	onChange    func(Transition)
}

func newParams(cfg TripConfig) *tripParams {
	p := &tripParams{
		consecutive: int64(cfg.ConsecutiveFailures),
		ratio:       cfg.FailureRatio,
		window:      cfg.Window,
		openFor:     cfg.OpenFor,
		maxOpenFor:  cfg.MaxOpenFor,
		halfOpen:    cfg.HalfOpenRequests,
		onChange:    cfg.OnChange,
	}
	if p.consecutive <= 0 {
		p.consecutive = DefaultConsecutiveFailures
	}
	if !(p.ratio > 0) {
		p.ratio = DefaultFailureRatio
	}
	p.ratio = min(p.ratio, 1)
	p.minRequests = DefaultMinRequests
	if cfg.MinRequests > 0 {
		p.minRequests = uint64(cfg.MinRequests)
	}
	if p.window <= 0 {
		p.window = DefaultWindow
	}
	p.width = max(int64(p.window)/numBuckets, 1)
	if p.openFor <= 0 {
		p.openFor = DefaultOpenFor
	}
	if p.maxOpenFor <= 0 {
		p.maxOpenFor = max(DefaultMaxOpenFor, p.openFor)
	}
	p.maxOpenFor = max(p.maxOpenFor, p.openFor)
	if p.halfOpen <= 0 {
		p.halfOpen = DefaultHalfOpenRequests
	}
	return p
}

// openPeriod is OpenFor × 2^n capped at MaxOpenFor.
func (p *tripParams) openPeriod(n int) time.Duration {
	d := p.openFor
	for range n {
		if d >= p.maxOpenFor {
			break
		}
		d *= 2
	}
	return min(d, p.maxOpenFor)
}

// The state word holds the State in its low bits and a generation above
// them, bumped on every transition, so that a Ticket issued in one period
// cannot count in another.
const (
	stateBits = 2
	stateMask = 1<<stateBits - 1
)

func stateOf(w uint64) State { return State(w & stateMask) }

// Trip is a failure-tripped circuit breaker for one upstream: closed →
// open after ConsecutiveFailures failures in a row, or when failures reach
// FailureRatio of at least MinRequests requests over the sliding Window;
// open refuses every request for OpenFor; then half-open admits at most
// HalfOpenRequests probes: when they all succeed it closes (counters
// reset), when one fails it opens again for OpenFor × 2^n (n failed
// probes in a row), capped at MaxOpenFor. Closing resets n. Probes that
// have not all reported MaxOpenFor into the half-open period count as a
// failed probe (ProbeTimeout), so that probes lost or hanging cannot keep
// the circuit half-open for ever.
//
// Time is passed in (now) rather than read, so that callers reuse the
// time they already took and tests drive it. It is measured on the
// monotonic clock when now carries one (time.Now does).
//
// Allow and Ticket.Done in the closed state are lock-free and
// allocation-free: Allow is one atomic load; Done is a few atomic loads
// and one compare-and-swap on the current window bucket. Transitions, the
// half-open admissions and probe results take a mutex. Safe for concurrent
// use; the zero value is not usable, call NewTrip.
type Trip struct {
	// Read on every call; written only on transitions.
	state atomic.Uint64
	p     atomic.Pointer[tripParams]
	until atomic.Int64 // clock nanoseconds at which an open period ends
	full  atomic.Bool  // half-open with every probe slot taken
	// probeDeadline is when a half-open period whose probes have not all
	// reported counts as failed (clock nanoseconds).
	probeDeadline atomic.Int64
	_             [64]byte // keep the words above off the line reports write

	// Written by reports while closed.
	consec atomic.Int64
	ring   ring

	mu        sync.Mutex
	untilTime time.Time // the end of the open period, as the caller's time
	reopens   int       // n in OpenFor × 2^n
	probes    int       // probes admitted in this half-open period
	probesOK  int       // probes that succeeded in this period
}

// NewTrip returns a closed Trip with cfg's settings (defaults applied).
func NewTrip(cfg TripConfig) *Trip {
	t := &Trip{}
	t.p.Store(newParams(cfg))
	return t
}

// SetConfig replaces the settings and keeps the state, for a config
// reload: an open circuit stays open until the end of its period, and the
// failure counts are kept unless the window's length changed.
func (t *Trip) SetConfig(cfg TripConfig) {
	np := newParams(cfg)
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.p.Swap(np)
	if old.width != np.width {
		t.ring.reset()
	}
	if stateOf(t.state.Load()) == StateHalfOpen {
		t.full.Store(t.probes >= np.halfOpen)
	}
}

// Ticket is the permission for one attempt, from Allow. Report its
// outcome exactly once with Done. The zero Ticket (a refusal) may be
// Done, which does nothing.
type Ticket struct {
	t     *Trip
	state uint64
}

// Done reports the outcome of the attempt the Ticket admitted. An outcome
// reported after the Trip changed state (a request admitted while closed
// that ends after the circuit opened, a probe of an earlier half-open
// period) is not counted.
func (tk Ticket) Done(r Result, now time.Time) {
	if tk.t != nil {
		tk.t.report(tk.state, r, now)
	}
}

// Probe reports whether the Ticket admitted a half-open probe.
func (tk Ticket) Probe() bool { return tk.t != nil && stateOf(tk.state) == StateHalfOpen }

// Allow decides whether one attempt may go to the upstream at now. When
// ok, report the attempt's outcome with tk.Done; every attempt, retries
// included, needs its own Allow. When not ok, send nothing upstream:
// retryAfter (> 0) is how long the circuit stays open (the time left of
// the open period), or HalfOpenRetryAfter while half-open probes are
// out. RetryAfterSeconds turns it into a Retry-After value.
func (t *Trip) Allow(now time.Time) (tk Ticket, ok bool, retryAfter time.Duration) {
	w := t.state.Load()
	switch stateOf(w) {
	case StateClosed:
		return Ticket{t: t, state: w}, true, 0
	case StateOpen:
		if left := t.until.Load() - clock(now); left > 0 {
			return Ticket{}, false, time.Duration(left)
		}
	default:
		if t.full.Load() && clock(now) < t.probeDeadline.Load() {
			return Ticket{}, false, HalfOpenRetryAfter
		}
	}
	return t.allowSlow(now)
}

func (t *Trip) allowSlow(now time.Time) (Ticket, bool, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.state.Load()
	switch stateOf(w) {
	case StateClosed:
		return Ticket{t: t, state: w}, true, 0
	case StateOpen:
		if left := t.until.Load() - clock(now); left > 0 {
			return Ticket{}, false, time.Duration(left)
		}
		t.probes, t.probesOK = 0, 0
		t.full.Store(false)
		t.probeDeadline.Store(clock(now) + int64(t.p.Load().maxOpenFor))
		w = t.setLocked(w, StateHalfOpen, Transition{Reason: OpenElapsed, At: now})
	}
	p := t.p.Load()
	if t.probes >= p.halfOpen && clock(now) >= t.probeDeadline.Load() {
		// The probes out are lost or hang: count the period as failed.
		t.reopens++
		t.openLocked(w, now, Transition{Reason: ProbeTimeout})
		return Ticket{}, false, time.Duration(t.until.Load() - clock(now))
	}
	if t.probes >= p.halfOpen {
		t.full.Store(true)
		return Ticket{}, false, HalfOpenRetryAfter
	}
	t.probes++
	if t.probes >= p.halfOpen {
		t.full.Store(true)
	}
	return Ticket{t: t, state: w}, true, 0
}

func (t *Trip) report(w uint64, r Result, now time.Time) {
	if t.state.Load() != w {
		return
	}
	if stateOf(w) == StateHalfOpen {
		t.probeDone(w, r, now)
		return
	}
	if r == Ignored {
		return
	}
	p := t.p.Load()
	i := floorDiv(clock(now), p.width)
	if r == Success {
		t.ring.add(i, false)
		if t.consec.Load() != 0 {
			t.consec.Store(0)
		}
		return
	}
	t.ring.add(i, true)
	if n := t.consec.Add(1); n >= p.consecutive {
		t.trip(w, now, Transition{Reason: ConsecutiveFailures, Failures: int(n)})
		return
	}
	// fails/total is compared rather than fails >= ratio×total, which is
	// off by a rounding error for ratios such as 0.1 × 30.
	if fails, total := t.ring.sum(i); total >= p.minRequests && float64(fails)/float64(total) >= p.ratio {
		t.trip(w, now, Transition{Reason: FailureRatio, Failures: int(fails), Requests: int(total)})
	}
}

// trip opens a closed circuit, unless another report did first.
func (t *Trip) trip(w uint64, now time.Time, tr Transition) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state.Load() != w {
		return
	}
	t.openLocked(w, now, tr)
}

func (t *Trip) probeDone(w uint64, r Result, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state.Load() != w {
		return
	}
	switch r {
	case Ignored:
		t.probes--
		t.full.Store(false)
	case Failure:
		t.reopens++
		t.openLocked(w, now, Transition{Reason: ProbeFailed})
	default:
		t.probesOK++
		if t.probesOK >= t.p.Load().halfOpen {
			t.consec.Store(0)
			t.ring.reset()
			t.reopens = 0
			t.setLocked(w, StateClosed, Transition{Reason: ProbesSucceeded, At: now})
		}
	}
}

// openLocked opens the circuit for OpenFor × 2^reopens.
func (t *Trip) openLocked(w uint64, now time.Time, tr Transition) {
	d := t.p.Load().openPeriod(t.reopens)
	t.untilTime = now.Add(d)
	t.until.Store(clock(now) + int64(d))
	tr.At, tr.Until = now, t.untilTime
	t.setLocked(w, StateOpen, tr)
}

// setLocked moves from the state in w to to, bumping the generation, and
// tells OnChange. until must be stored before an open state is published.
func (t *Trip) setLocked(w uint64, to State, tr Transition) uint64 {
	nw := (w>>stateBits+1)<<stateBits | uint64(to)
	t.state.Store(nw)
	if f := t.p.Load().onChange; f != nil {
		tr.From, tr.To = stateOf(w), to
		f(tr)
	}
	return nw
}

// State returns the current state and, when open, the end of the open
// period. An open circuit whose period is over becomes half-open on the
// next Allow; until is then in the past.
func (t *Trip) State() (s State, until time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s = stateOf(t.state.Load()); s == StateOpen {
		until = t.untilTime
	}
	return s, until
}

// TripStats is a point-in-time view of a Trip, for the admin API.
type TripStats struct {
	State State `json:"state"`
	// Until is the end of the open period while open.
	Until time.Time `json:"until,omitzero"`
	// ConsecutiveFailures is the current run of failures while closed.
	ConsecutiveFailures int `json:"consecutive_failures"`
	// Failures and Requests are the counts over the window while closed.
	Failures int `json:"window_failures"`
	Requests int `json:"window_requests"`
	// Reopens is n of the open period OpenFor × 2^n: the failed probes in
	// a row since the circuit last closed.
	Reopens int `json:"reopens"`
	// Probes is the number of half-open probes out or succeeded.
	Probes int `json:"probes,omitempty"`
}

// Stats returns the state and counts at now.
func (t *Trip) Stats(now time.Time) TripStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := TripStats{State: stateOf(t.state.Load()), Reopens: t.reopens}
	switch st.State {
	case StateClosed:
		st.ConsecutiveFailures = int(t.consec.Load())
		f, n := t.ring.sum(floorDiv(clock(now), t.p.Load().width))
		st.Failures, st.Requests = int(f), int(n)
	case StateOpen:
		st.Until = t.untilTime
	case StateHalfOpen:
		st.Probes = t.probes
	}
	return st
}

// clockBase is the origin of the Trip's clock. Subtracting it from a
// time.Time that carries a monotonic reading measures on the monotonic
// clock, so a step of the wall clock does not stretch an open period.
var clockBase = time.Now()

func clock(now time.Time) int64 { return int64(now.Sub(clockBase)) }

// floorDiv is a / b rounded down, for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// ring is the sliding window: numBuckets words, each packing a bucket's
// epoch (its index on the clock, modulo 2^24) with its failure and request
// counts (20 bits each, saturating), so that one compare-and-swap both
// recycles an expired bucket and counts into it.
type ring [numBuckets]atomic.Uint64

const (
	countBits  = 20
	countMask  = 1<<countBits - 1
	failShift  = countBits
	epochShift = 2 * countBits
	epochMask  = 1<<(64-epochShift) - 1
	epochHalf  = 1 << (64 - epochShift - 1)
)

// age is how many buckets epoch e lies behind the bucket epoch cur; a
// bucket ahead of cur (written with a slightly later now) has a negative
// age.
func age(cur, e uint64) int64 {
	d := (cur - e) & epochMask
	if d >= epochHalf {
		return int64(d) - (epochMask + 1)
	}
	return int64(d)
}

// add counts one request, failed or not, into bucket i.
func (r *ring) add(i int64, fail bool) {
	b := &r[((i%numBuckets)+numBuckets)%numBuckets]
	e := uint64(i) & epochMask
	for {
		old := b.Load()
		w := old
		switch a := age(e, old>>epochShift); {
		case a > 0:
			w = e << epochShift // the bucket holds an expired period
		case a <= -numBuckets:
			return // reported a whole window late: outside the window
		}
		if w&countMask == countMask {
			return // saturated: the ratio stands as it is
		}
		w++
		if fail {
			w += 1 << failShift
		}
		if b.CompareAndSwap(old, w) {
			return
		}
	}
}

// sum returns the counts of the buckets within the window ending in
// bucket i.
func (r *ring) sum(i int64) (fails, total uint64) {
	e := uint64(i) & epochMask
	for j := range r {
		w := r[j].Load()
		if a := age(e, w>>epochShift); a < numBuckets && a > -numBuckets {
			total += w & countMask
			fails += w >> failShift & countMask
		}
	}
	return fails, total
}

func (r *ring) reset() {
	for j := range r {
		r[j].Store(0)
	}
}

// StatusSet is a set of HTTP statuses, 0-639, that count as failures.
// The zero value is empty.
type StatusSet [10]uint64

// AddRange adds the statuses lo to hi inclusive; ones outside 0-639 are
// left out.
func (s *StatusSet) AddRange(lo, hi int) {
	for c := max(lo, 0); c <= hi && c < 64*len(s); c++ {
		s[c/64] |= 1 << (c % 64)
	}
}

// Has reports whether status is in s.
func (s *StatusSet) Has(status int) bool {
	return status >= 0 && status < 64*len(s) && s[status/64]&(1<<(status%64)) != 0
}

// Classify returns Failure for a status in s and Success otherwise.
func (s *StatusSet) Classify(status int) Result {
	if s.Has(status) {
		return Failure
	}
	return Success
}

// RetryAfterSeconds rounds a retryAfter from Allow up to whole seconds,
// at least 1, for a Retry-After header.
func RetryAfterSeconds(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}
