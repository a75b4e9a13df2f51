package ipfilter

import (
	"net/http"
	"net/netip"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/exchange"
	"github.com/rampart-gw/rampart/internal/policy"
)

// Filter is a compiled `ip_filter` policy.
type Filter struct {
	allow, deny []netip.Prefix
	trust       int
}

var _ policy.Policy = (*Filter)(nil)

// New compiles an `ip_filter` policy.
func New(s policy.Spec) (policy.Policy, error) {
	var c Config
	if err := policy.Load(s, &c); err != nil {
		return nil, err
	}
	f := &Filter{trust: c.TrustForwarded}
	for _, v := range c.Allow {
		p, _ := config.ParsePrefix(v)
		f.allow = append(f.allow, p)
	}
	for _, v := range c.Deny {
		p, _ := config.ParsePrefix(v)
		f.deny = append(f.deny, p)
	}
	return f, nil
}

// Allowed reports whether a may pass: not denied, and allowed when an allow
// list exists.
func (f *Filter) Allowed(a netip.Addr) bool {
	for _, p := range f.deny {
		if p.Contains(a) {
			return false
		}
	}
	if len(f.allow) == 0 {
		return true
	}
	for _, p := range f.allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Wrap refuses requests from addresses that may not pass with 403
// ip_denied. A request whose client address cannot be read is refused.
func (f *Filter) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := policy.ClientAddr(r, f.trust)
		if !ok || !f.Allowed(a) {
			exchange.Error(w, r, http.StatusForbidden, "ip_denied", "your address is not allowed on this route")
			return
		}
		next.ServeHTTP(w, r)
	})
}
