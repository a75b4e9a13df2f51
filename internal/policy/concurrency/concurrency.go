package concurrency

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/rampart-gw/rampart/internal/telemetry"

	"github.com/rampart-gw/rampart/internal/exchange"
	"github.com/rampart-gw/rampart/internal/policy"
)

// Limit is a compiled `concurrency_limit` policy.
type Limit struct {
	sem     *Semaphore
	timeout time.Duration
	// byRole and def give a request's class (priority); nil: class 0.
	byRole map[string]int
	def    int
	// adaptive: each request's latency adjusts the limit.
	adaptive bool
}

var _ policy.Policy = (*Limit)(nil)

// New compiles a `concurrency_limit` policy.
func New(s policy.Spec) (policy.Policy, error) {
	var c Config
	if err := policy.Load(s, &c); err != nil {
		return nil, err
	}
	l := &Limit{timeout: c.QueueTimeout.D()}
	// caps[i] is the queue cap of class i (classes are dense from 0 to
	// the worst used; unused ones hold nobody).
	caps := []int{c.MaxQueue}
	if p := c.Priority; p != nil {
		l.byRole, l.def = p.ByRole, p.defaultClass()
		cls := p.classes()
		caps = make([]int, cls[len(cls)-1]+1)
		for i := range caps {
			caps[i] = p.queueCap(i, c.MaxQueue)
		}
	}
	limit := c.MaxInFlight
	key := "concurrency_limit|" + s.Name + "|" + strconv.Itoa(c.MaxInFlight) + "|" + strconv.Itoa(c.MaxQueue)
	if c.Priority != nil {
		key += fmt.Sprintf("|queues=%v", caps)
	}
	var ad *aimd
	if a := c.Adaptive; a != nil {
		limit, l.adaptive = a.Min, true
		key += fmt.Sprintf("|adaptive|%d|%d|%d", a.Min, a.Max, a.TargetLatency)
		ad = &aimd{min: a.Min, max: a.Max, target: a.TargetLatency.D()}
	}
	policy.Claim(s.Claims, key, func() *Semaphore {
		sem := NewSemaphore(limit, caps)
		if ad != nil {
			a := *ad
			sem.adaptive = &a
		}
		if s.Metrics != nil {
			sem.gauges = newGauges(s.Metrics, s.Name, sem)
			sem.show()
		}
		return sem
	}, func(sem *Semaphore) { l.sem = sem })
	if l.timeout == 0 && slices.Max(caps) > 0 {
		l.timeout = DefaultQueueTimeout
	}
	return l, nil
}

// class is the request's priority class: the best of its consumer's
// listed roles, else the default.
func (l *Limit) class(r *http.Request) int {
	if l.byRole == nil {
		return 0
	}
	best := -1
	if ex := exchange.From(r.Context()); ex != nil {
		for _, role := range ex.Roles {
			if cl, ok := l.byRole[role]; ok && (best < 0 || cl < best) {
				best = cl
			}
		}
	}
	if best < 0 {
		return l.def
	}
	return best
}

var retryAfter = []string{"1"}

// Wrap sheds requests over the limit with 503 overloaded.
func (l *Limit) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !l.sem.Acquire(r.Context(), l.class(r), l.timeout) {
			w.Header()["Retry-After"] = retryAfter
			exchange.Error(w, r, http.StatusServiceUnavailable, "overloaded", "too many requests in flight; retry shortly")
			return
		}
		if !l.adaptive {
			defer l.sem.Release() // also on panic (http.ErrAbortHandler from the proxy)
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		defer func() { l.sem.Done(start, time.Since(start)) }()
		next.ServeHTTP(w, r)
	})
}

// owners maps a policy's series to the semaphore that last claimed them,
// so that a retired semaphore drops them only if no newer one (a reload
// with changed settings) updates them.
var owners sync.Map // ownerKey -> *Semaphore

type ownerKey struct {
	m    *telemetry.Metrics
	name string
}

func newGauges(m *telemetry.Metrics, name string, sem *Semaphore) *gauges {
	k := ownerKey{m, name}
	owners.Store(k, sem)
	return &gauges{
		inFlight: m.ConcInFlight.WithLabelValues(name),
		queued:   m.ConcQueued.WithLabelValues(name),
		limit:    m.ConcLimit.WithLabelValues(name),
		drop: func() {
			if owners.CompareAndDelete(k, sem) {
				m.ConcInFlight.DeleteLabelValues(name)
				m.ConcQueued.DeleteLabelValues(name)
				m.ConcLimit.DeleteLabelValues(name)
			}
		},
	}
}
