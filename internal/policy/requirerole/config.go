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
}

// Validate checks that roles are listed and not empty.
func (c *Config) Validate(s policy.Spec) config.Errors {
	var errs config.Errors
	if len(c.AnyOf) == 0 {
		errs = append(errs, s.Errorf("any_of", "any_of needs at least one role"))
	}
	for i, r := range c.AnyOf {
		if r == "" {
			errs = append(errs, s.Errorf("any_of["+strconv.Itoa(i)+"]", "role must not be empty"))
		}
	}
	return errs
}
