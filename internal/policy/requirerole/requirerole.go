package requirerole

import (
	"net/http"
	"slices"
	"strings"

	"github.com/rampart-gw/rampart/internal/exchange"
	"github.com/rampart-gw/rampart/internal/policy"
)

// Require is a compiled `require_role` policy.
type Require struct {
	anyOf []string
	list  string
	claim string // "" for the recorded roles
}

var (
	_ policy.Policy      = (*Require)(nil)
	_ policy.ClaimReader = (*Require)(nil)
)

// New compiles a `require_role` policy.
func New(s policy.Spec) (policy.Policy, error) {
	var c Config
	if err := policy.Load(s, &c); err != nil {
		return nil, err
	}
	p := &Require{anyOf: slices.Clone(c.AnyOf), list: strings.Join(c.AnyOf, ", ")}
	if c.Claim != nil {
		p.claim = *c.Claim
	}
	return p, nil
}

// ReadsClaims names the claim the roles come from, if any (see
// policy.ClaimReader).
func (p *Require) ReadsClaims() string {
	if p.claim == "" {
		return ""
	}
	return "claim " + p.claim
}

// Allowed reports whether roles hold one of the required roles.
func (p *Require) Allowed(roles []string) bool {
	for _, r := range roles {
		if slices.Contains(p.anyOf, r) {
			return true
		}
	}
	return false
}

// Wrap refuses requests without a required role with 403 forbidden.
func (p *Require) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var roles []string
		if ex := exchange.From(r.Context()); ex != nil {
			roles = ex.Roles
			if p.claim != "" {
				roles = policy.ClaimStrings(ex.Claims[p.claim])
			}
		}
		if !p.Allowed(roles) {
			exchange.Error(w, r, http.StatusForbidden, "forbidden", "this route requires one of the roles: "+p.list)
			return
		}
		next.ServeHTTP(w, r)
	})
}
