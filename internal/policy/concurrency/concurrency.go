package concurrency

import (
	"context"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/rampart-gw/rampart/internal/exchange"
	"github.com/rampart-gw/rampart/internal/policy"
)

// Limit is a compiled `concurrency_limit` policy.
type Limit struct {
	sem     *Semaphore
	timeout time.Duration
}

var _ policy.Policy = (*Limit)(nil)

// Semaphore counts in-flight requests and waiting ones; it outlives config
// snapshots (claimed in the registry, see policy.Claim).
type Semaphore struct {
	slots    chan struct{}
	queued   atomic.Int64
	maxQueue int64
}

// NewSemaphore returns a semaphore of n slots and a queue of q.
func NewSemaphore(n, q int) *Semaphore {
	return &Semaphore{slots: make(chan struct{}, n), maxQueue: int64(q)}
}

// Acquire takes a slot, waiting in the queue for up to timeout when there
// is room in it. It reports whether a slot was taken; Release gives it back.
func (s *Semaphore) Acquire(ctx context.Context, timeout time.Duration) bool {
	select {
	case s.slots <- struct{}{}:
		return true
	default:
	}
	if s.maxQueue == 0 || timeout <= 0 {
		return false
	}
	if s.queued.Add(1) > s.maxQueue {
		s.queued.Add(-1)
		return false
	}
	defer s.queued.Add(-1)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case s.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// Release gives back a slot taken by Acquire.
func (s *Semaphore) Release() { <-s.slots }

// InFlight returns the number of slots taken.
func (s *Semaphore) InFlight() int { return len(s.slots) }

// Queued returns the number of requests waiting.
func (s *Semaphore) Queued() int { return int(s.queued.Load()) }

// New compiles a `concurrency_limit` policy.
func New(s policy.Spec) (policy.Policy, error) {
	var c Config
	if err := policy.Load(s, &c); err != nil {
		return nil, err
	}
	key := "concurrency_limit|" + s.Name + "|" + strconv.Itoa(c.MaxInFlight) + "|" + strconv.Itoa(c.MaxQueue)
	l := &Limit{timeout: c.QueueTimeout.D()}
	policy.Claim(s.Claims, key, func() *Semaphore { return NewSemaphore(c.MaxInFlight, c.MaxQueue) },
		func(sem *Semaphore) { l.sem = sem })
	if l.timeout == 0 && c.MaxQueue > 0 {
		l.timeout = DefaultQueueTimeout
	}
	return l, nil
}

var retryAfter = []string{"1"}

// Wrap sheds requests over the limit with 503 overloaded.
func (l *Limit) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !l.sem.Acquire(r.Context(), l.timeout) {
			w.Header()["Retry-After"] = retryAfter
			exchange.Error(w, r, http.StatusServiceUnavailable, "overloaded", "too many requests in flight; retry shortly")
			return
		}
		defer l.sem.Release() // also on panic (http.ErrAbortHandler from the proxy)
		next.ServeHTTP(w, r)
	})
}
