package compile

import (
	"github.com/rampart-gw/rampart/internal/policy"
	"github.com/rampart-gw/rampart/internal/policy/headers"
	"github.com/rampart-gw/rampart/internal/policy/ipfilter"
)

// factories is the one list of policy types this build knows, by the name
// used in `type:`. Adding a policy means adding its folder under
// internal/policy and one line here. Types the config accepts but this
// list lacks (jwt, waf, sanitize) are refused at compile time as "not
// available in this release".
var factories = map[string]policy.Factory{
	"headers":   headers.New,
	"ip_filter": ipfilter.New,
}
