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

	// InFlight counts requests currently sent to this target. The proxy
	// increments it before the exchange and decrements it after.
	InFlight atomic.Int64
}

// Balancer picks a target for a request. Pick returns nil only when the
// balancer has no targets. Implementations are safe for concurrent use.
type Balancer interface {
	Pick(r *http.Request) *Target
}

// Config selects and parameterises a balancer.
type Config struct {
	// Kind is round_robin (default), random, and whatever else New knows.
	Kind string
	// HashKey is the request property hashing balancers key on.
	HashKey string
}

// New builds the balancer named by cfg.Kind over targets. It refuses kinds
// it does not know.
func New(cfg Config, targets []*Target) (Balancer, error) {
	switch cfg.Kind {
	case "", "round_robin":
		return NewRoundRobin(targets), nil
	case "random":
		return NewRandom(targets), nil
	}
	return nil, fmt.Errorf("unsupported balancer %q", cfg.Kind)
}
