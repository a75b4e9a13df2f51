package concurrency

import (
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/policy"
)

// Config is the `concurrency_limit` policy's settings.
type Config struct {
	// MaxInFlight is how many requests may run at once. Required, >= 1.
	MaxInFlight int `yaml:"max_in_flight" json:"max_in_flight"`
	// MaxQueue is how many more may wait for a slot. Default 0 (no queue).
	MaxQueue int `yaml:"max_queue" json:"max_queue,omitempty"`
	// QueueTimeout is the longest a request waits in the queue. Default 1s.
	QueueTimeout config.Duration `yaml:"queue_timeout" json:"queue_timeout,omitempty"`
}

// DefaultQueueTimeout applies when queue_timeout is not set.
const DefaultQueueTimeout = time.Second

// Validate checks the bounds.
func (c *Config) Validate(s policy.Spec) config.Errors {
	var errs config.Errors
	if c.MaxInFlight < 1 {
		errs = append(errs, s.Errorf("max_in_flight", "max_in_flight is required and must be at least 1"))
	} else if c.MaxInFlight > 1<<24 {
		errs = append(errs, s.Errorf("max_in_flight", "max_in_flight must be at most %d", 1<<24))
	}
	if c.MaxQueue < 0 {
		errs = append(errs, s.Errorf("max_queue", "max_queue must not be negative"))
	}
	if c.QueueTimeout > 0 && c.MaxQueue == 0 {
		errs = append(errs, s.Errorf("queue_timeout", "queue_timeout needs max_queue > 0"))
	}
	return errs
}
