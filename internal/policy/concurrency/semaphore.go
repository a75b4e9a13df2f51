package concurrency

import (
	"container/list"
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Semaphore counts in-flight requests against a limit and queues the ones
// waiting for a slot, one FIFO queue per priority class (0 first). A freed
// slot goes to the first waiter of the lowest-numbered class that has one.
// The limit may change while requests run (SetLimit, for the adaptive
// mode). It outlives config snapshots (claimed in the registry, see
// policy.Claim).
type Semaphore struct {
	mu       sync.Mutex
	limit    int
	inFlight int
	queues   []list.List // of *waiter, by class
	caps     []int       // queue cap by class
	queued   int

	gauges   *gauges // nil without metrics
	adaptive *aimd   // nil: a fixed limit
}

// aimd is the adaptive mode's rule (additive increase, multiplicative
// decrease, as TCP and Netflix's concurrency-limits AIMDLimit): a request
// slower than target lowers the limit to 90 %, at most once per round
// trip (only requests that started after the last decrease count, so the
// slow requests already in flight do not each cut it again); requests
// within target raise it by one per limit of them (one per round trip)
// while the limit is at least half used. The limit stays between min and
// max.
type aimd struct {
	min, max int
	target   time.Duration
	lastDrop time.Time
	credit   int // requests within target since the last increase
}

// gauges are a policy's in-flight, queue and limit series.
type gauges struct {
	inFlight, queued, limit prometheus.Gauge
	drop                    func()
}

type waiter struct {
	ready   chan struct{}
	granted bool
	class   int
	elem    *list.Element
}

// NewSemaphore returns a semaphore of limit slots with one queue per
// class, class i holding at most caps[i] waiters.
func NewSemaphore(limit int, caps []int) *Semaphore {
	s := &Semaphore{limit: limit, caps: caps, queues: make([]list.List, len(caps))}
	return s
}

// Acquire takes a slot for a request of class (0 = first served), waiting
// in its class's queue for up to timeout when there is room in it. It
// reports whether a slot was taken; Release gives it back.
func (s *Semaphore) Acquire(ctx context.Context, class int, timeout time.Duration) bool {
	s.mu.Lock()
	if s.inFlight < s.limit && s.queued == 0 {
		s.inFlight++
		s.show()
		s.mu.Unlock()
		return true
	}
	class = min(max(class, 0), len(s.queues)-1)
	if timeout <= 0 || s.queues[class].Len() >= s.caps[class] {
		s.mu.Unlock()
		return false
	}
	w := &waiter{ready: make(chan struct{}), class: class}
	w.elem = s.queues[class].PushBack(w)
	s.queued++
	s.show()
	s.mu.Unlock()

	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-w.ready:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.granted { // a slot came as the wait ended: keep it
		return true
	}
	s.queues[class].Remove(w.elem)
	s.queued--
	s.show()
	return false
}

// Release gives back a slot taken by Acquire; the first waiter of the
// best class takes it.
func (s *Semaphore) Release() {
	s.mu.Lock()
	s.inFlight--
	s.grant()
	s.show()
	s.mu.Unlock()
}

// Done is Release for a request that got its slot at start and held it
// for d; in the adaptive mode it first adjusts the limit (see aimd).
func (s *Semaphore) Done(start time.Time, d time.Duration) {
	s.mu.Lock()
	if a := s.adaptive; a != nil {
		switch {
		case d > a.target:
			if start.After(a.lastDrop) {
				s.limit = max(a.min, s.limit*9/10)
				a.lastDrop = start.Add(d)
			}
		case s.inFlight*2 >= s.limit:
			if a.credit++; a.credit >= s.limit {
				s.limit, a.credit = min(a.max, s.limit+1), 0
			}
		}
	}
	s.inFlight--
	s.grant()
	s.show()
	s.mu.Unlock()
}

// grant hands free slots to waiters, best class first. The caller holds
// the lock.
func (s *Semaphore) grant() {
	for s.inFlight < s.limit && s.queued > 0 {
		for c := range s.queues {
			q := &s.queues[c]
			if e := q.Front(); e != nil {
				w := q.Remove(e).(*waiter)
				s.queued--
				s.inFlight++
				w.granted = true
				close(w.ready)
				break
			}
		}
	}
}

// SetLimit changes the number of slots. A higher limit lets waiters in at
// once; a lower one lets the requests in flight finish.
func (s *Semaphore) SetLimit(n int) {
	s.mu.Lock()
	s.limit = n
	s.grant()
	s.show()
	s.mu.Unlock()
}

// Limit returns the number of slots.
func (s *Semaphore) Limit() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limit
}

// InFlight returns the number of slots taken.
func (s *Semaphore) InFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inFlight
}

// Queued returns the number of requests waiting.
func (s *Semaphore) Queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queued
}

// show updates the gauges. The caller holds the lock.
func (s *Semaphore) show() {
	if g := s.gauges; g != nil {
		g.inFlight.Set(float64(s.inFlight))
		g.queued.Set(float64(s.queued))
		g.limit.Set(float64(s.limit))
	}
}

// Close drops the semaphore's series when its last snapshot retires.
func (s *Semaphore) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g := s.gauges; g != nil {
		g.drop()
		s.gauges = nil
	}
}
