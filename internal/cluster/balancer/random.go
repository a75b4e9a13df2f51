package balancer

import (
	"math/rand/v2"
	"net/http"
	"sort"
)

// Random picks a target at random with probability proportional to weight.
type Random struct {
	targets []*Target
	cum     []int // cumulative weights
	total   int
}

var _ Balancer = (*Random)(nil)

// NewRandom returns a weighted random balancer over targets.
func NewRandom(targets []*Target) *Random {
	r := &Random{targets: targets, cum: make([]int, len(targets))}
	for i, t := range targets {
		r.total += t.Weight
		r.cum[i] = r.total
	}
	return r
}

// Pick returns a weighted random target.
func (r *Random) Pick(*http.Request) *Target {
	switch len(r.targets) {
	case 0:
		return nil
	case 1:
		return r.targets[0]
	}
	x := rand.IntN(r.total)
	i := sort.SearchInts(r.cum, x+1)
	return r.targets[i]
}
