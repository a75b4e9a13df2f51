package apikey

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/url"
	"strings"

	"github.com/rampart-gw/rampart/internal/exchange"
	"github.com/rampart-gw/rampart/internal/policy"
)

// APIKey is a compiled `api_key` policy.
type APIKey struct {
	header    string // canonical
	query     string
	forward   string // canonical; "" for none
	byHash    map[[32]byte]*consumer
	challenge []string
}

type consumer struct {
	hash  [32]byte
	name  string
	roles []string
}

var _ policy.Policy = (*APIKey)(nil)

// New compiles an `api_key` policy, indexing the consumers by key hash.
func New(s policy.Spec) (policy.Policy, error) {
	var c Config
	if err := policy.Load(s, &c); err != nil {
		return nil, err
	}
	p := &APIKey{header: http.CanonicalHeaderKey(c.Header), query: c.Query, forward: DefaultConsumerHeader,
		byHash: map[[32]byte]*consumer{}, challenge: []string{`ApiKey realm="rampart"`}}
	if p.header == "" {
		p.header = http.CanonicalHeaderKey(DefaultHeader)
	}
	if f := c.ForwardConsumerHeader; f != nil {
		p.forward = http.CanonicalHeaderKey(*f)
		if *f == "off" || *f == "" {
			p.forward = ""
		}
	}
	if s.Config == nil {
		return p, nil
	}
	for _, cs := range s.Config.Consumers {
		roles := append([]string(nil), cs.Roles...)
		for _, k := range cs.APIKeys {
			h, _ := ParseKey(k)
			p.byHash[h] = &consumer{hash: h, name: cs.Name, roles: roles}
		}
	}
	return p, nil
}

// Extract returns the key a request carries and where: "header", "query"
// or "" when there is none. Several values of the header, or of the query
// parameter, make the key ambiguous: ok is false.
func (p *APIKey) Extract(r *http.Request) (key, from string, ok bool) {
	if vv := r.Header[p.header]; len(vv) > 0 {
		if len(vv) > 1 {
			return "", "header", false
		}
		k := strings.TrimSpace(vv[0])
		return k, "header", k != ""
	}
	if p.query != "" && r.URL != nil {
		k, n := QueryValue(r.URL.RawQuery, p.query)
		if n == 0 {
			return "", "", false
		}
		return k, "query", n == 1 && k != ""
	}
	return "", "", false
}

// lookup returns the consumer whose key is key, or nil.
func (p *APIKey) lookup(key string) *consumer {
	h := sha256.Sum256([]byte(key))
	c := p.byHash[h]
	// The map is keyed by hash, so its comparison can only leak facts
	// about hashes; the final check is constant time all the same.
	if c == nil || subtle.ConstantTimeCompare(h[:], c.hash[:]) != 1 {
		return nil
	}
	return c
}

// Wrap authenticates the request and records its consumer.
func (p *APIKey) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.forward != "" {
			delete(r.Header, p.forward) // the client must not name itself
		}
		key, from, ok := p.Extract(r)
		if !ok {
			p.refuse(w, r, from == "")
			return
		}
		c := p.lookup(key)
		if c == nil {
			p.refuse(w, r, false)
			return
		}
		if ex := exchange.From(r.Context()); ex != nil {
			ex.Consumer, ex.Roles = c.name, c.roles
		}
		delete(r.Header, p.header)
		if p.query != "" {
			r.URL.RawQuery = RemoveParam(r.URL.RawQuery, p.query)
		}
		if p.forward != "" {
			r.Header[p.forward] = []string{c.name}
		}
		next.ServeHTTP(w, r)
	})
}

func (p *APIKey) refuse(w http.ResponseWriter, r *http.Request, missing bool) {
	w.Header()["Www-Authenticate"] = p.challenge
	msg := "invalid API key"
	if missing {
		msg = "missing API key (send it in the " + p.header + " header)"
	}
	exchange.Error(w, r, http.StatusUnauthorized, "unauthenticated", msg)
}

// QueryValue returns the unescaped value of the parameter name in the raw
// query and how many times the parameter occurs. A value that cannot be
// unescaped counts as empty.
func QueryValue(raw, name string) (value string, n int) {
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(part, "=")
		if k != name {
			if uk, err := url.QueryUnescape(k); err != nil || uk != name {
				continue
			}
		}
		n++
		uv, err := url.QueryUnescape(v)
		if err != nil {
			uv = ""
		}
		value = uv
	}
	return value, n
}

// RemoveParam returns raw without every occurrence of the parameter name,
// leaving the other parameters exactly as they were written.
func RemoveParam(raw, name string) string {
	if name == "" || raw == "" {
		return raw
	}
	var b strings.Builder
	removed := false
	rest := raw
	for rest != "" {
		var part string
		part, rest, _ = strings.Cut(rest, "&")
		k, _, _ := strings.Cut(part, "=")
		if k == name {
			removed = true
			continue
		}
		if uk, err := url.QueryUnescape(k); err == nil && uk == name {
			removed = true
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(part)
	}
	if !removed {
		return raw
	}
	return b.String()
}
