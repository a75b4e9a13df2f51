package requirerole

import (
	"strconv"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/policy"
)

// Config is the `require_role` policy's settings.
type Config struct {
	// AnyOf lists the roles that admit a request; at least one is
	// required.
	AnyOf []string `yaml:"any_of" json:"any_of"`
	// Claim, when set, takes the roles from this claim of the request's
	// verified token (set by a jwt policy listed before): an array of
	// strings, or a string of space-separated roles (as OAuth's scope).
	// Default: the roles the authentication policy recorded (api_key's
	// consumer roles, jwt's roles_claim).
	Claim *string `yaml:"claim" json:"claim,omitempty"`
}

// Validate checks that roles are listed and not empty.
func (c *Config) Validate(s policy.Spec) config.Errors {
	var errs config.Errors
	if len(c.AnyOf) == 0 {
		errs = append(errs, s.Errorf("any_of", "any_of needs at least one role"))
	}
	if c.Claim != nil && *c.Claim == "" {
		errs = append(errs, s.Errorf("claim", "claim must name a claim"))
	}
	for i, r := range c.AnyOf {
		if r == "" {
			errs = append(errs, s.Errorf("any_of["+strconv.Itoa(i)+"]", "role must not be empty"))
		}
	}
	return errs
}
