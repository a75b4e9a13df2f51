package outlier

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
)

// Defaults for a zero Config field: config's (package config is their
// home, issue 16), so a zero field and a key left out of the config mean
// the same.
const (
	DefaultConsecutive5xx             = config.DefaultConsecutive5xx
	DefaultConsecutiveConnectFailures = config.DefaultConsecutiveConnectFailures
	DefaultInterval                   = time.Duration(config.DefaultOutlierInterval)
	DefaultBaseEjectionTime           = time.Duration(config.DefaultBaseEjectionTime)
	DefaultMaxEjectionTime            = time.Duration(config.DefaultMaxEjectionTime)
	DefaultMaxEjectionPercent         = config.DefaultMaxEjectionPercent
)

// Config is the passive health check of one upstream.
type Config struct {
	// Consecutive5xx is the number of consecutive 5xx responses (connect
	// failures included) that eject a target. Default 5
	// (DefaultConsecutive5xx); negative disables.
	Consecutive5xx int
	// ConsecutiveConnectFailures is the number of consecutive connect
	// failures that eject a target (they also count towards
	// Consecutive5xx). Default 5 (DefaultConsecutiveConnectFailures);
	// negative: no separate threshold.
	ConsecutiveConnectFailures int
	// Interval is the period over which the ejection multiplier decays by
	// one. Default 10 s (DefaultInterval).
	Interval time.Duration
	// BaseEjectionTime is the length of a first ejection. Default 30 s
	// (DefaultBaseEjectionTime).
	BaseEjectionTime time.Duration
	// MaxEjectionTime caps an ejection. Default 300 s
	// (DefaultMaxEjectionTime), or BaseEjectionTime if that is longer.
	MaxEjectionTime time.Duration
	// MaxEjectionPercent is the share of targets that may be ejected at
	// once, 0-100; one target may always be ejected. Default 50
	// (DefaultMaxEjectionPercent); negative: none may be ejected.
	MaxEjectionPercent int
}

// Result is the outcome of one request to a target.
type Result uint8

// The outcomes Report understands.
const (
	// Success is any response below 500.
	Success Result = iota
	// ServerError is a 5xx response.
	ServerError
	// ConnectFailure means no connection could be made (refused, timed
	// out while connecting).
	ConnectFailure
)

// Deps are the Detector's collaborators; all optional.
type Deps struct {
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// OnChange is told when a target is ejected (true) or re-admitted.
	OnChange func(addr string, ejected bool)
	// Logger receives ejections and re-admissions at Info. Default: none.
	Logger *slog.Logger
}

type target struct {
	addr    string
	c5xx    atomic.Int64
	cConn   atomic.Int64
	ejected atomic.Bool
	until   atomic.Int64 // UnixNano of re-admission while ejected

	// Guarded by Detector.mu.
	times int  // ejection multiplier
	gone  bool // removed by Update
}

func (t *target) resetCounters() {
	t.c5xx.Store(0)
	t.cConn.Store(0)
}

// Detector tracks the targets of one upstream. Report, Ejected and
// EjectedUntil are lock-free and allocation-free; the rest take a mutex.
type Detector struct {
	max5xx, maxConn int64
	interval        time.Duration
	base, maxEject  time.Duration
	maxTimes        int
	percent         int
	now             func() time.Time
	onChange        func(string, bool)
	log             *slog.Logger

	targets atomic.Pointer[map[string]*target]
	wake    chan struct{} // tells Run an ejection happened

	mu        sync.Mutex
	nejected  int
	nextDecay time.Time
}

// New returns a Detector with no targets; call Update.
func New(cfg Config, deps Deps) *Detector {
	d := &Detector{
		max5xx:   int64(cfg.Consecutive5xx),
		maxConn:  int64(cfg.ConsecutiveConnectFailures),
		interval: cfg.Interval,
		base:     cfg.BaseEjectionTime,
		maxEject: cfg.MaxEjectionTime,
		percent:  cfg.MaxEjectionPercent,
		now:      deps.Now,
		onChange: deps.OnChange,
		log:      deps.Logger,
		wake:     make(chan struct{}, 1),
	}
	if d.max5xx == 0 {
		d.max5xx = DefaultConsecutive5xx
	}
	switch {
	case d.maxConn == 0:
		d.maxConn = DefaultConsecutiveConnectFailures
	case d.maxConn < 0:
		d.maxConn = 0 // no separate threshold
	}
	if d.interval <= 0 {
		d.interval = DefaultInterval
	}
	if d.base <= 0 {
		d.base = DefaultBaseEjectionTime
	}
	if d.maxEject <= 0 {
		d.maxEject = max(DefaultMaxEjectionTime, d.base)
	}
	if d.percent == 0 {
		d.percent = DefaultMaxEjectionPercent
	}
	d.percent = min(max(d.percent, 0), 100)
	// The multiplier stops growing once it reaches the cap, so that it
	// decays back within a bounded number of intervals.
	d.maxTimes = int((d.maxEject + d.base - 1) / d.base)
	if d.now == nil {
		d.now = time.Now
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.nextDecay = d.now().Add(d.interval)
	empty := map[string]*target{}
	d.targets.Store(&empty)
	return d
}

// Update replaces the set of targets. Targets present before and after
// keep their counters, multiplier and ejection; new ones start healthy;
// removed ones are forgotten without an OnChange.
func (d *Detector) Update(addrs []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	old := *d.targets.Load()
	next := make(map[string]*target, len(addrs))
	for _, a := range addrs {
		if t := old[a]; t != nil {
			next[a] = t
		} else {
			next[a] = &target{addr: a}
		}
	}
	for a, t := range old {
		if next[a] == nil {
			t.gone = true
			if t.ejected.Load() {
				d.nejected--
			}
		}
	}
	d.targets.Store(&next)
}

// Report records the outcome of one request to addr. It is meant for the
// request path: an unknown addr is ignored, and unless the report ejects
// the target it only touches atomics.
func (d *Detector) Report(addr string, r Result) {
	t := (*d.targets.Load())[addr]
	if t == nil {
		return
	}
	switch r {
	case Success:
		// Load first: most reports are successes on a healthy target and
		// must not bounce the cache line between cores with stores.
		if t.c5xx.Load() != 0 {
			t.c5xx.Store(0)
		}
		if t.cConn.Load() != 0 {
			t.cConn.Store(0)
		}
	case ServerError:
		if t.cConn.Load() != 0 {
			t.cConn.Store(0)
		}
		if n := t.c5xx.Add(1); d.max5xx > 0 && n >= d.max5xx && !t.ejected.Load() {
			d.eject(t)
		}
	case ConnectFailure:
		n5, nc := t.c5xx.Add(1), t.cConn.Add(1)
		if ((d.max5xx > 0 && n5 >= d.max5xx) || (d.maxConn > 0 && nc >= d.maxConn)) && !t.ejected.Load() {
			d.eject(t)
		}
	}
}

// allowEject applies MaxEjectionPercent to one more ejection. d.mu held.
func (d *Detector) allowEject(total int) bool {
	if d.percent <= 0 {
		return false
	}
	if d.nejected == 0 {
		return true
	}
	return (d.nejected+1)*100 <= d.percent*total
}

func (d *Detector) eject(t *target) {
	now := d.now()
	d.mu.Lock()
	if t.gone || t.ejected.Load() || !d.allowEject(len(*d.targets.Load())) {
		d.mu.Unlock()
		return
	}
	t.times = min(t.times+1, d.maxTimes)
	dur := min(d.base*time.Duration(t.times), d.maxEject)
	until := now.Add(dur)
	t.until.Store(until.UnixNano())
	t.ejected.Store(true)
	t.resetCounters()
	d.nejected++
	times := t.times
	d.mu.Unlock()

	d.log.Info("outlier ejected", "target", t.addr, "for", dur, "times", times)
	select {
	case d.wake <- struct{}{}:
	default:
	}
	if d.onChange != nil {
		d.onChange(t.addr, true)
	}
}

// Ejected reports whether addr is currently ejected.
func (d *Detector) Ejected(addr string) bool {
	t := (*d.targets.Load())[addr]
	return t != nil && t.ejected.Load()
}

// EjectedUntil returns when an ejected addr will be re-admitted, or the
// zero time when it is not ejected.
func (d *Detector) EjectedUntil(addr string) time.Time {
	t := (*d.targets.Load())[addr]
	if t == nil || !t.ejected.Load() {
		return time.Time{}
	}
	return time.Unix(0, t.until.Load())
}

// Sweep re-admits the targets whose ejection has run out and, once per
// Interval, decays the multiplier of every target not ejected. It returns
// how long until it has work again. Run calls it; tests with an injected
// clock call it directly.
func (d *Detector) Sweep() time.Duration {
	now := d.now()
	var back []string
	d.mu.Lock()
	m := *d.targets.Load()
	if !now.Before(d.nextDecay) {
		for _, t := range m {
			if !t.ejected.Load() && t.times > 0 {
				t.times--
			}
		}
		d.nextDecay = now.Add(d.interval)
	}
	next := d.nextDecay
	nowNano := now.UnixNano()
	for _, t := range m {
		if !t.ejected.Load() {
			continue
		}
		if until := t.until.Load(); nowNano >= until {
			t.ejected.Store(false)
			t.until.Store(0)
			t.resetCounters()
			d.nejected--
			back = append(back, t.addr)
		} else if u := time.Unix(0, until); u.Before(next) {
			next = u
		}
	}
	d.mu.Unlock()

	slices.Sort(back) // deterministic callback order
	for _, a := range back {
		d.log.Info("outlier re-admitted", "target", a)
		if d.onChange != nil {
			d.onChange(a, false)
		}
	}
	return max(next.Sub(now), time.Millisecond)
}

// Run calls Sweep whenever there is work, until ctx is done. Start it once
// per Detector in a goroutine owned by the upstream.
func (d *Detector) Run(ctx context.Context) {
	defer func() {
		if r := recover(); r != nil {
			d.log.Error("outlier detector panicked", "panic", r)
		}
	}()
	timer := time.NewTimer(d.Sweep())
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-d.wake:
		}
		timer.Reset(d.Sweep())
	}
}

// Status is one target's outlier state, for the admin API.
type Status struct {
	Addr           string    `json:"address"`
	Ejected        bool      `json:"ejected"`
	EjectedUntil   time.Time `json:"ejected_until,omitzero"`
	TimesEjected   int       `json:"ejection_multiplier"`
	Consecutive5xx int64     `json:"consecutive_5xx"`
}

// Snapshot returns the state of every target, sorted by address.
func (d *Detector) Snapshot() []Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := *d.targets.Load()
	out := make([]Status, 0, len(m))
	for a, t := range m {
		s := Status{Addr: a, Ejected: t.ejected.Load(), TimesEjected: t.times, Consecutive5xx: t.c5xx.Load()}
		if s.Ejected {
			s.EjectedUntil = time.Unix(0, t.until.Load())
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Addr, b.Addr) })
	return out
}
