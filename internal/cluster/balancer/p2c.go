package balancer

import "math/rand/v2"

// p2c draws the two candidates of a power-of-two-choices pick (Mitzenmacher,
// "The Power of Two Choices in Randomized Load Balancing"), each with
// probability proportional to its weight, so that when the candidates tie on
// load the weights still set the proportions.
type p2c struct {
	targets []*Target
	weight  []int64 // per target, at least 1
	cum     []int   // cumulative weights; nil when all weights are equal
	total   int
}

func newP2C(targets []*Target) p2c {
	p := p2c{targets: targets, weight: make([]int64, len(targets))}
	uniform := true
	for i, t := range targets {
		w := weightOf(t)
		p.weight[i] = int64(w)
		p.total += w
		if w != weightOf(targets[0]) {
			uniform = false
		}
	}
	if !uniform {
		p.cum = make([]int, len(targets))
		sum := 0
		for i, w := range p.weight {
			sum += int(w)
			p.cum[i] = sum
		}
	}
	return p
}

// two returns the indices of two distinct candidates; n must be at least 2.
// The first is drawn by weight, the second by weight from the others.
func (p *p2c) two() (int, int) {
	n := len(p.targets)
	if p.cum == nil {
		i := rand.IntN(n)
		j := rand.IntN(n - 1)
		if j >= i {
			j++
		}
		return i, j
	}
	i := p.index(rand.IntN(p.total))
	// Draw from the total weight less i's and skip i's interval, so that j
	// never equals i: with re-draws instead, a heavy target would often be
	// compared with itself.
	wi := int(p.weight[i])
	x := rand.IntN(p.total - wi)
	if x >= p.cum[i]-wi {
		x += wi
	}
	return i, p.index(x)
}

// index returns the target whose cumulative weight interval holds x, for x
// in [0, total).
func (p *p2c) index(x int) int {
	lo, hi := 0, len(p.cum)-1
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if p.cum[m] > x {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}
