package grpcweb

import (
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/policy"
)

// Config is the `grpc_web` policy's settings: it has none.
type Config struct{}

// Validate has nothing to check (unknown keys are refused by the decoder).
func (c *Config) Validate(policy.Spec) config.Errors { return nil }
