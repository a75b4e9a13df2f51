package config

import (
	"maps"
	"slices"
	"strconv"
)

// Reserved lists the config keys that are part of the format (CONTRACT.md)
// but not built yet. A config that sets one is refused by Validate, and so
// by `rampart validate`, `rampart run`, reloads and the admin API alike,
// with the key's position and "not available in this release": a key is
// never accepted and then ignored. When the issue that builds a key lands,
// it deletes the key's line here and its entry in the "Not available in
// this release" list of docs/configuration.md.
//
// Policy types without an implementation (jwt, waf, sanitize) are not
// listed here: compile refuses them, positioned, from the list of
// registered policy factories.
var Reserved = []ReservedKey{
	// Built for tcp listeners (the PROXY protocol); trusting
	// X-Forwarded-For on http listeners is not planned yet (rate_limit
	// and ip_filter have trust_forwarded).
	{Key: "listeners[].trusted_proxies (http)", find: func(c *Config) []hit {
		var hs []hit
		for i, l := range c.Listeners {
			if l.Protocol != "tcp" && len(l.TrustedProxies) > 0 {
				hs = append(hs, hit{path: idx("listeners", i) + ".trusted_proxies", what: "trusted_proxies on an http listener",
					hint: "set trust_forwarded on the rate_limit and ip_filter policies"})
			}
		}
		return hs
	}},
	{Key: "upstreams.*.discovery", Issue: 17, find: func(c *Config) []hit {
		var hs []hit
		for _, name := range slices.Sorted(maps.Keys(c.Upstreams)) {
			// Type static is the targets list, which is built.
			if u := c.Upstreams[name]; u != nil && u.Discovery != nil && u.Discovery.Type != "static" {
				hs = append(hs, hit{path: "upstreams." + name + ".discovery", what: "discovery type " + strconv.Quote(u.Discovery.Type), hint: "list the targets instead"})
			}
		}
		return hs
	}},
	{Key: "routes[].mirror", Issue: 18, find: func(c *Config) []hit {
		var hs []hit
		for i, r := range c.Routes {
			if r.Mirror != nil {
				hs = append(hs, hit{path: idx("routes", i) + ".mirror", what: "mirror"})
			}
		}
		return hs
	}},
	{Key: "routes[].aggregate", Issue: 18, find: func(c *Config) []hit {
		var hs []hit
		for i, r := range c.Routes {
			if r.Aggregate != nil {
				hs = append(hs, hit{path: idx("routes", i) + ".aggregate", what: "aggregate"})
			}
		}
		return hs
	}},
	{Key: "cluster.redis", Issue: 12, find: func(c *Config) []hit {
		if c.Cluster.Redis == nil {
			return nil
		}
		return []hit{{path: "cluster.redis", what: "cluster.redis"}}
	}},
	{Key: "observability.tracing", Issue: 13, find: func(c *Config) []hit {
		if c.Observability.Tracing == nil {
			return nil
		}
		return []hit{{path: "observability.tracing", what: "tracing"}}
	}},
}

// ReservedKey is one config key that is not built yet.
type ReservedKey struct {
	// Key names the key as docs/configuration.md lists it.
	Key string
	// Issue is the project issue that builds it; 0 when none is planned.
	Issue int
	// find returns where c sets the key.
	find func(c *Config) []hit
}

// hit is one use of a reserved key: the path of its value, what to call it
// in the error and, optionally, what to do instead.
type hit struct {
	path, what, hint string
}

// reserved refuses every use of a reserved key, positioned at its value.
func (v *validator) reserved() {
	for _, k := range Reserved {
		for _, h := range k.find(v.c) {
			if h.hint != "" {
				v.errorf(h.path, "%s is not available in this release; %s", h.what, h.hint)
				continue
			}
			v.errorf(h.path, "%s is not available in this release", h.what)
		}
	}
}
