package balancer

import (
	"net/http"
	"sync"
)

// RoundRobin is smooth weighted round robin (the nginx algorithm): over any
// cycle of sum(weights) picks each target is chosen exactly weight times, and
// heavier targets are interleaved with lighter ones instead of bunched.
type RoundRobin struct {
	mu      sync.Mutex
	targets []*Target
	current []int
	total   int
	uniform bool
	next    uint64
}

var _ Balancer = (*RoundRobin)(nil)

// NewRoundRobin returns a smooth weighted round robin over targets.
func NewRoundRobin(targets []*Target) *RoundRobin {
	rr := &RoundRobin{targets: targets, current: make([]int, len(targets)), uniform: true}
	for _, t := range targets {
		rr.total += t.Weight
		if t.Weight != targets[0].Weight {
			rr.uniform = false
		}
	}
	return rr
}

// Pick returns the next target in the smooth weighted sequence.
func (rr *RoundRobin) Pick(*http.Request) *Target {
	n := len(rr.targets)
	switch n {
	case 0:
		return nil
	case 1:
		return rr.targets[0]
	}
	rr.mu.Lock()
	if rr.uniform {
		t := rr.targets[rr.next%uint64(n)]
		rr.next++
		rr.mu.Unlock()
		return t
	}
	best := 0
	for i, t := range rr.targets {
		rr.current[i] += t.Weight
		if rr.current[i] > rr.current[best] {
			best = i
		}
	}
	rr.current[best] -= rr.total
	t := rr.targets[best]
	rr.mu.Unlock()
	return t
}
