// Package balancer chooses a target of an upstream for each request.
//
// A Balancer is built over one fixed set of targets (the healthy ones) and is
// immutable in that set: when health changes, the owning cluster builds a new
// Balancer and swaps it in atomically, the way Envoy rebuilds its load
// balancers on host-set updates. Per-target state that must outlive a
// rebuild or a config reload (in-flight count, latency estimate) lives on
// Target, which the cluster keeps keyed by address.
package balancer

import (
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
)

// Target is one upstream instance as seen by balancers.
type Target struct {
	// Addr is host:port.
	Addr string
	// Weight is relative to the other targets; at least 1.
	Weight int
	// Zone is the target's locality, if known.
	Zone string
	// Priority is the target's priority group (SRV discovery): the
	// cluster balances over the lowest group with a healthy target.
	// Balancers ignore it. Static targets are all priority 0.
	Priority int

	// InFlight counts requests currently sent to this target. The proxy
	// increments it before the exchange and decrements it after.
	InFlight atomic.Int64

	// rtt is the peak-EWMA latency estimate, packed for lock-free update:
	// see Observe.
	rtt atomic.Uint64
}

// Balancer picks a target for a request. Pick returns nil only when the
// balancer has no targets. Implementations are safe for concurrent use.
type Balancer interface {
	Pick(r *http.Request) *Target
}

// Config selects and parameterises a balancer.
type Config struct {
	// Kind is one of Kinds; empty means round_robin.
	Kind string
	// HashKey is the request property ring_hash and maglev key on: ip,
	// path, header:NAME, cookie:NAME or query:NAME (see ParseHashKey).
	// Empty means ip. Requests without the property get a weighted random
	// target.
	HashKey string
	// BoundedLoad is the factor c of consistent hashing with bounded loads
	// for ring_hash and maglev: no target takes more than
	// ceil(c × (in-flight requests + 1) × weight / total weight) requests;
	// a key whose target is full moves on to the next one. 0 (default)
	// turns it off; otherwise it must be at least 1 (1.25 is typical).
	BoundedLoad float64
	// LocalZone is the gateway's own zone. When set and at least one of
	// the targets has this Zone, only those targets are balanced over; when
	// none has (the cluster passes healthy targets only), all are.
	LocalZone string
}

// Kinds lists the balancer kinds New knows, in the order documented.
func Kinds() []string {
	return []string{"round_robin", "random", "least_request", "ring_hash", "maglev", "ewma"}
}

// ErrBoundedLoad is returned for a BoundedLoad that is neither 0 nor at
// least 1: below 1 the targets together could not take the load.
var ErrBoundedLoad = errors.New("bounded load factor must be 0 (off) or at least 1")

// New builds the balancer named by cfg.Kind over targets. It refuses kinds
// it does not know and invalid settings.
func New(cfg Config, targets []*Target) (Balancer, error) {
	if cfg.BoundedLoad != 0 && !(cfg.BoundedLoad >= 1) {
		return nil, fmt.Errorf("new balancer: %w, got %v", ErrBoundedLoad, cfg.BoundedLoad)
	}
	targets = localZone(targets, cfg.LocalZone)
	switch cfg.Kind {
	case "", "round_robin":
		return NewRoundRobin(targets), nil
	case "random":
		return NewRandom(targets), nil
	case "least_request":
		return NewLeastRequest(targets), nil
	case "ring_hash":
		return NewRingHash(cfg, targets)
	case "maglev":
		return NewMaglev(cfg, targets)
	case "ewma":
		return NewEWMA(targets), nil
	}
	return nil, fmt.Errorf("unsupported balancer %q", cfg.Kind)
}

// localZone returns the targets in zone, or all targets when zone is empty
// or none of them is in it: traffic spills over to the other zones only
// when the local one has no healthy target.
func localZone(targets []*Target, zone string) []*Target {
	if zone == "" {
		return targets
	}
	n := 0
	for _, t := range targets {
		if t.Zone == zone {
			n++
		}
	}
	if n == 0 || n == len(targets) {
		return targets
	}
	local := make([]*Target, 0, n)
	for _, t := range targets {
		if t.Zone == zone {
			local = append(local, t)
		}
	}
	return local
}

// weightOf returns t's weight, treating anything below 1 as 1.
func weightOf(t *Target) int {
	if t.Weight < 1 {
		return 1
	}
	return t.Weight
}
