package config

// Reserved lists the config keys that are part of the format (CONTRACT.md)
// but not built yet. A config that sets one is refused by Validate, and so
// by `rampart validate`, `rampart run`, reloads and the admin API alike,
// with the key's position and "not available in this release": a key is
// never accepted and then ignored. When the issue that builds a key lands,
// it deletes the key's line here and its entry in the "Not available in
// this release" list of docs/configuration.md.
//
// Policy types without an implementation (waf) are not
// listed here: compile refuses them, positioned, from the list of
// registered policy factories.
var Reserved = []ReservedKey{}

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
