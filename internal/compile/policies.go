package compile

import (
	"maps"
	"reflect"

	"github.com/rampart-gw/rampart/internal/policy"
	"github.com/rampart-gw/rampart/internal/policy/apikey"
	"github.com/rampart-gw/rampart/internal/policy/clientcert"
	"github.com/rampart-gw/rampart/internal/policy/concurrency"
	"github.com/rampart-gw/rampart/internal/policy/cors"
	"github.com/rampart-gw/rampart/internal/policy/grpcweb"
	"github.com/rampart-gw/rampart/internal/policy/headers"
	"github.com/rampart-gw/rampart/internal/policy/ipfilter"
	"github.com/rampart-gw/rampart/internal/policy/jwt"
	"github.com/rampart-gw/rampart/internal/policy/ratelimit"
	"github.com/rampart-gw/rampart/internal/policy/requirerole"
	"github.com/rampart-gw/rampart/internal/policy/sanitize"
	"github.com/rampart-gw/rampart/internal/policy/waf"
)

// factory is one policy type: what builds it, and the Config struct its
// keys decode into (which package schema describes).
type factory struct {
	new    policy.Factory
	config reflect.Type
}

// factories is the one list of policy types this build knows, by the name
// used in `type:`. Adding a policy means adding its folder under
// internal/policy and one line here. Types the config accepts but this
// list lacks (none today) are refused at compile time as "policy
// type X is not available in this release".
var factories = map[string]factory{
	"api_key":           {apikey.New, reflect.TypeFor[apikey.Config]()},
	"client_cert":       {clientcert.New, reflect.TypeFor[clientcert.Config]()},
	"grpc_web":          {grpcweb.New, reflect.TypeFor[grpcweb.Config]()},
	"concurrency_limit": {concurrency.New, reflect.TypeFor[concurrency.Config]()},
	"cors":              {cors.New, reflect.TypeFor[cors.Config]()},
	"headers":           {headers.New, reflect.TypeFor[headers.Config]()},
	"ip_filter":         {ipfilter.New, reflect.TypeFor[ipfilter.Config]()},
	"jwt":               {jwt.New, reflect.TypeFor[jwt.Config]()},
	"rate_limit":        {ratelimit.New, reflect.TypeFor[ratelimit.Config]()},
	"require_role":      {requirerole.New, reflect.TypeFor[requirerole.Config]()},
	"sanitize":          {sanitize.New, reflect.TypeFor[sanitize.Config]()},
	"waf":               {waf.New, reflect.TypeFor[waf.Config]()},
}

// PolicyConfigs returns the policy types this build knows, each with the
// Config struct its keys (all but type) decode into.
func PolicyConfigs() map[string]reflect.Type {
	m := make(map[string]reflect.Type, len(factories))
	for name, f := range maps.All(factories) {
		m[name] = f.config
	}
	return m
}
