package compile

import "github.com/rampart-gw/rampart/internal/policy"

// factories is the one list of policy types this build knows, by the name
// used in `type:`. Adding a policy means adding its folder under
// internal/policy and one line here.
var factories = map[string]policy.Factory{}
