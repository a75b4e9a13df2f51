package concurrency

import (
	"slices"
	"strconv"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/policy"
)

// Config is the `concurrency_limit` policy's settings.
type Config struct {
	// MaxInFlight is how many requests may run at once. Required, >= 1,
	// unless adaptive finds the limit.
	MaxInFlight int `yaml:"max_in_flight" json:"max_in_flight,omitempty"`
	// MaxQueue is how many more may wait for a slot (in each priority
	// class, with priority). Default 0 (no queue).
	MaxQueue int `yaml:"max_queue" json:"max_queue,omitempty"`
	// QueueTimeout is the longest a request waits in the queue. Default 1s.
	QueueTimeout config.Duration `yaml:"queue_timeout" json:"queue_timeout,omitempty"`
	// Priority sorts waiting requests into classes by the consumer's
	// roles: a freed slot goes to the best class that has a waiter.
	Priority *Priority `yaml:"priority" json:"priority,omitempty"`
	// Adaptive finds the in-flight limit from measured latency instead of
	// max_in_flight (AIMD).
	Adaptive *Adaptive `yaml:"adaptive" json:"adaptive,omitempty"`
}

// Adaptive bounds the limit and says what latency is too slow.
type Adaptive struct {
	// Min is the lowest limit and where it starts. Required, >= 1.
	Min int `yaml:"min" json:"min"`
	// Max is the highest limit. Required, >= min.
	Max int `yaml:"max" json:"max"`
	// TargetLatency: a request that took longer (from its slot to its
	// response) lowers the limit. Required.
	TargetLatency config.Duration `yaml:"target_latency" json:"target_latency"`
}

// Priority maps consumer roles to classes, 0 being served first.
type Priority struct {
	// ByRole gives a role's class; a consumer with several listed roles
	// gets the best (lowest) class. Required.
	ByRole map[string]int `yaml:"by_role" json:"by_role"`
	// Default is the class of requests with no listed role (anonymous
	// ones too). Default: the worst (highest) class of by_role.
	Default *int `yaml:"default" json:"default,omitempty"`
	// MaxQueue caps one class's queue (the key is the class), overriding
	// max_queue for it.
	MaxQueue map[string]int `yaml:"max_queue" json:"max_queue,omitempty"`
}

// DefaultQueueTimeout applies when queue_timeout is not set.
const DefaultQueueTimeout = time.Second

// maxLimit bounds max_in_flight and adaptive.max.
const maxLimit = 1 << 24

// maxClass bounds the priority classes: 0 to maxClass.
const maxClass = 15

// Validate checks the bounds.
func (c *Config) Validate(s policy.Spec) config.Errors {
	var errs config.Errors
	switch a := c.Adaptive; {
	case a != nil:
		if hasKey(s, "max_in_flight") || c.MaxInFlight != 0 {
			errs = append(errs, s.Errorf("max_in_flight", "max_in_flight and adaptive are exclusive: adaptive finds the limit between its min and max"))
		}
		if a.Min < 1 || a.Min > maxLimit {
			errs = append(errs, s.Errorf("adaptive.min", "min is required, between 1 and %d", maxLimit))
		}
		if a.Max < max(1, a.Min) || a.Max > maxLimit {
			errs = append(errs, s.Errorf("adaptive.max", "max is required, between min and %d", maxLimit))
		}
		if a.TargetLatency <= 0 {
			errs = append(errs, s.Errorf("adaptive.target_latency", "target_latency is required and must be positive"))
		}
	case c.MaxInFlight < 1:
		errs = append(errs, s.Errorf("max_in_flight", "max_in_flight is required and must be at least 1 (or use adaptive)"))
	case c.MaxInFlight > maxLimit:
		errs = append(errs, s.Errorf("max_in_flight", "max_in_flight must be at most %d", maxLimit))
	}
	if c.MaxQueue < 0 {
		errs = append(errs, s.Errorf("max_queue", "max_queue must not be negative"))
	}
	queued := c.MaxQueue > 0
	if p := c.Priority; p != nil {
		if len(p.ByRole) == 0 {
			errs = append(errs, s.Errorf("priority.by_role", "priority needs by_role (role: class, 0 served first)"))
		}
		for _, role := range sortedKeys(p.ByRole) {
			if role == "" {
				errs = append(errs, s.Errorf("priority.by_role", "role must not be empty"))
			} else if cl := p.ByRole[role]; cl < 0 || cl > maxClass {
				errs = append(errs, s.Errorf("priority.by_role."+role, "class %d out of range 0-%d", cl, maxClass))
			}
		}
		if p.Default != nil && (*p.Default < 0 || *p.Default > maxClass) {
			errs = append(errs, s.Errorf("priority.default", "class %d out of range 0-%d", *p.Default, maxClass))
		}
		for _, k := range sortedKeys(p.MaxQueue) {
			path := "priority.max_queue." + k
			cl, err := strconv.Atoi(k)
			switch {
			case err != nil:
				errs = append(errs, s.Errorf(path, "invalid class %q (want a number 0-%d)", k, maxClass))
			case cl < 0 || cl > maxClass:
				errs = append(errs, s.Errorf(path, "class %d out of range 0-%d", cl, maxClass))
			case !slices.Contains(p.classes(), cl):
				errs = append(errs, s.Errorf(path, "class %d is not used by by_role or default", cl))
			case p.MaxQueue[k] < 0:
				errs = append(errs, s.Errorf(path, "max_queue must not be negative"))
			case p.MaxQueue[k] > 0:
				queued = true
			}
		}
	}
	if c.QueueTimeout > 0 && !queued {
		errs = append(errs, s.Errorf("queue_timeout", "queue_timeout needs max_queue > 0"))
	}
	return errs
}

// classes returns the classes used, sorted.
func (p *Priority) classes() []int {
	var out []int
	for _, cl := range p.ByRole {
		out = append(out, cl)
	}
	out = append(out, p.defaultClass())
	slices.Sort(out)
	return slices.Compact(out)
}

// queueCap returns class's queue cap: its own, or max_queue.
func (p *Priority) queueCap(class, maxQueue int) int {
	for k, n := range p.MaxQueue {
		if cl, err := strconv.Atoi(k); err == nil && cl == class {
			return n
		}
	}
	return maxQueue
}

// defaultClass is Default, or the worst class of by_role.
func (p *Priority) defaultClass() int {
	if p.Default != nil {
		return *p.Default
	}
	worst := 0
	for _, cl := range p.ByRole {
		worst = max(worst, cl)
	}
	return worst
}

func sortedKeys[K int | string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// hasKey reports whether the policy's mapping has key (written, even as 0).
func hasKey(s policy.Spec, key string) bool {
	n := s.RawNode()
	for i := 0; n != nil && i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}
