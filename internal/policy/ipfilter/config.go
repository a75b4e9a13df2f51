package ipfilter

import (
	"strconv"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/policy"
)

// Config is the `ip_filter` policy's settings.
type Config struct {
	// Allow lists the admitted prefixes ("10.0.0.0/8") or addresses; empty
	// admits every address not denied.
	Allow []string `yaml:"allow" json:"allow,omitempty"`
	// Deny lists refused prefixes or addresses; deny wins over allow.
	Deny []string `yaml:"deny" json:"deny,omitempty"`
	// TrustForwarded is how many proxies in front of the gateway append to
	// X-Forwarded-For. Default 0: the TCP peer is the client.
	TrustForwarded int `yaml:"trust_forwarded" json:"trust_forwarded,omitempty"`
}

// Validate checks every prefix and that the policy filters something.
func (c *Config) Validate(s policy.Spec) config.Errors {
	var errs config.Errors
	if len(c.Allow) == 0 && len(c.Deny) == 0 {
		errs = append(errs, s.Errorf("", "ip_filter needs allow or deny (or both)"))
	}
	for _, l := range []struct {
		key  string
		list []string
	}{{"allow", c.Allow}, {"deny", c.Deny}} {
		for i, v := range l.list {
			if _, err := config.ParsePrefix(v); err != nil {
				errs = append(errs, s.Errorf(l.key+"["+strconv.Itoa(i)+"]", "%v", err))
			}
		}
	}
	if c.TrustForwarded < 0 || c.TrustForwarded > 64 {
		errs = append(errs, s.Errorf("trust_forwarded", "trust_forwarded must be between 0 and 64"))
	}
	return errs
}
