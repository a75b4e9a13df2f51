package balancer

import "net/http"

// LeastRequest is power of two choices over in-flight requests: it draws two
// targets at random (by weight) and sends the request to the one with fewer
// in-flight requests per unit of weight. It evens out load almost as well as
// a full least-loaded scan at the cost of two atomic loads, and unlike a full
// scan it does not send a burst of requests to the same momentarily idle
// target. With equal weights it is plain P2C.
type LeastRequest struct {
	p2c
}

var _ Balancer = (*LeastRequest)(nil)

// NewLeastRequest returns a least-request balancer over targets.
func NewLeastRequest(targets []*Target) *LeastRequest {
	return &LeastRequest{p2c: newP2C(targets)}
}

// Pick returns the less loaded of two random targets.
func (lr *LeastRequest) Pick(*http.Request) *Target {
	switch len(lr.targets) {
	case 0:
		return nil
	case 1:
		return lr.targets[0]
	}
	i, j := lr.two()
	a, b := lr.targets[i], lr.targets[j]
	// Compare InFlight/Weight without dividing. On a tie the first
	// candidate wins; it was drawn by weight, so idle targets receive
	// traffic in proportion to their weights.
	if b.InFlight.Load()*lr.weight[i] < a.InFlight.Load()*lr.weight[j] {
		return b
	}
	return a
}
