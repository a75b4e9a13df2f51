package compile

import (
	"github.com/rampart-gw/rampart/internal/policy"
	"github.com/rampart-gw/rampart/internal/policy/apikey"
	"github.com/rampart-gw/rampart/internal/policy/concurrency"
	"github.com/rampart-gw/rampart/internal/policy/cors"
	"github.com/rampart-gw/rampart/internal/policy/headers"
	"github.com/rampart-gw/rampart/internal/policy/ipfilter"
	"github.com/rampart-gw/rampart/internal/policy/jwt"
	"github.com/rampart-gw/rampart/internal/policy/ratelimit"
	"github.com/rampart-gw/rampart/internal/policy/requirerole"
)

// factories is the one list of policy types this build knows, by the name
// used in `type:`. Adding a policy means adding its folder under
// internal/policy and one line here. Types the config accepts but this
// list lacks (waf, sanitize) are refused at compile time as "policy
// type X is not available in this release".
var factories = map[string]policy.Factory{
	"api_key":           apikey.New,
	"concurrency_limit": concurrency.New,
	"cors":              cors.New,
	"headers":           headers.New,
	"ip_filter":         ipfilter.New,
	"jwt":               jwt.New,
	"rate_limit":        ratelimit.New,
	"require_role":      requirerole.New,
}
