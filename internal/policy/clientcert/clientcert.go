package clientcert

import (
	"net/http"
	"strings"

	"github.com/rampart-gw/rampart/internal/certid"
	"github.com/rampart-gw/rampart/internal/exchange"
	"github.com/rampart-gw/rampart/internal/policy"
)

// ClientCert is a compiled `client_cert` policy.
type ClientCert struct {
	allow      []string
	byPrint    map[string]*consumer
	requireCon bool
}

type consumer struct {
	name  string
	roles []string
}

var _ policy.Policy = (*ClientCert)(nil)

// New compiles a `client_cert` policy, indexing consumers by fingerprint.
func New(s policy.Spec) (policy.Policy, error) {
	var c Config
	if err := policy.Load(s, &c); err != nil {
		return nil, err
	}
	p := &ClientCert{allow: c.AllowSANs, requireCon: c.RequireConsumer, byPrint: map[string]*consumer{}}
	if s.Config != nil {
		for _, cs := range s.Config.Consumers {
			roles := append([]string(nil), cs.Roles...)
			for _, fp := range cs.ClientCerts {
				hex, _ := strings.CutPrefix(strings.ToLower(fp), "sha256:")
				p.byPrint[hex] = &consumer{name: cs.Name, roles: roles}
			}
		}
	}
	return p, nil
}

// Wrap admits requests with a verified client certificate that the policy
// allows, and records the consumer it identifies.
func (p *ClientCert) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaf := certid.Leaf(r.TLS)
		if leaf == nil {
			exchange.Error(w, r, http.StatusUnauthorized, "unauthenticated", "a verified client certificate is required")
			return
		}
		if len(p.allow) > 0 && !p.allowed(certid.SANs(leaf)) {
			exchange.Error(w, r, http.StatusForbidden, "forbidden", "the client certificate's names are not allowed on this route")
			return
		}
		c := p.byPrint[certid.SHA256(leaf)]
		if c == nil && p.requireCon {
			exchange.Error(w, r, http.StatusForbidden, "forbidden", "the client certificate belongs to no consumer")
			return
		}
		if c != nil {
			if ex := exchange.From(r.Context()); ex != nil {
				ex.Consumer, ex.Roles = c.name, c.roles
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (p *ClientCert) allowed(sans []string) bool {
	for _, pat := range p.allow {
		for _, s := range sans {
			if certid.Match(pat, s) {
				return true
			}
		}
	}
	return false
}
