package cors

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/rampart-gw/rampart/internal/exchange"
	"github.com/rampart-gw/rampart/internal/policy"
)

// CORS is a compiled `cors` policy.
type CORS struct {
	anyOrigin   bool
	origins     map[string]bool // lower-cased
	methods     []string        // upper-cased
	methodsList string
	anyHeader   bool
	headers     map[string]bool // lower-cased
	headersList string
	expose      string
	credentials bool
	maxAge      string
}

var _ policy.Policy = (*CORS)(nil)

// safelisted are request headers a preflight never needs to list
// (Fetch, "CORS-safelisted request-header").
var safelisted = map[string]bool{"accept": true, "accept-language": true, "content-language": true, "content-type": true, "range": true}

// New compiles a `cors` policy.
func New(s policy.Spec) (policy.Policy, error) {
	var c Config
	if err := policy.Load(s, &c); err != nil {
		return nil, err
	}
	p := &CORS{origins: map[string]bool{}, headers: map[string]bool{}, credentials: c.AllowCredentials}
	for _, o := range c.AllowOrigins {
		if o == "*" {
			p.anyOrigin = true
			continue
		}
		p.origins[strings.ToLower(o)] = true
	}
	methods := c.AllowMethods
	if len(methods) == 0 {
		methods = []string{"GET", "HEAD", "POST"}
	}
	for _, m := range methods {
		m = strings.ToUpper(m)
		if !slices.Contains(p.methods, m) {
			p.methods = append(p.methods, m)
		}
	}
	p.methodsList = strings.Join(p.methods, ", ")
	var hl []string
	for _, h := range c.AllowHeaders {
		if h == "*" {
			p.anyHeader = true
			continue
		}
		p.headers[strings.ToLower(h)] = true
		hl = append(hl, http.CanonicalHeaderKey(h))
	}
	p.headersList = strings.Join(hl, ", ")
	el := make([]string, len(c.ExposeHeaders))
	for i, h := range c.ExposeHeaders {
		el[i] = http.CanonicalHeaderKey(h)
	}
	p.expose = strings.Join(el, ", ")
	if d := c.MaxAge.D(); d > 0 {
		p.maxAge = strconv.FormatInt(int64((d+999_999_999)/1e9), 10)
	}
	return p, nil
}

func (p *CORS) originAllowed(o string) bool {
	return p.anyOrigin || p.origins[strings.ToLower(o)]
}

// Wrap answers preflights and decorates other responses.
func (p *CORS) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if r.Method == http.MethodOptions && origin != "" && r.Header.Get("Access-Control-Request-Method") != "" {
			p.preflight(w, r, origin)
			return
		}
		allowed := origin != "" && p.originAllowed(origin)
		w = policy.HeaderHook(w, func(h http.Header, _ int) {
			for k := range h {
				if strings.HasPrefix(k, "Access-Control-") {
					delete(h, k)
				}
			}
			addVary(h, "Origin")
			if allowed {
				p.allowOrigin(h, origin)
				if p.expose != "" {
					h.Set("Access-Control-Expose-Headers", p.expose)
				}
			}
		})
		next.ServeHTTP(w, r)
	})
}

func (p *CORS) allowOrigin(h http.Header, origin string) {
	if p.anyOrigin && !p.credentials {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Set("Access-Control-Allow-Origin", origin)
	}
	if p.credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
}

// preflight answers an OPTIONS preflight without calling the upstream.
func (p *CORS) preflight(w http.ResponseWriter, r *http.Request, origin string) {
	h := w.Header()
	addVary(h, "Origin")
	addVary(h, "Access-Control-Request-Method")
	addVary(h, "Access-Control-Request-Headers")
	if !p.originAllowed(origin) {
		exchange.Error(w, r, http.StatusForbidden, "forbidden", "CORS preflight refused: origin "+origin+" is not allowed")
		return
	}
	method := r.Header.Get("Access-Control-Request-Method")
	if !slices.Contains(p.methods, method) {
		exchange.Error(w, r, http.StatusForbidden, "forbidden", "CORS preflight refused: method "+method+" is not allowed")
		return
	}
	reqHeaders := r.Header.Values("Access-Control-Request-Headers")
	var asked []string
	for _, v := range reqHeaders {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			asked = append(asked, f)
			lf := strings.ToLower(f)
			if !p.anyHeader && !p.headers[lf] && !safelisted[lf] {
				exchange.Error(w, r, http.StatusForbidden, "forbidden", "CORS preflight refused: header "+f+" is not allowed")
				return
			}
		}
	}
	p.allowOrigin(h, origin)
	h.Set("Access-Control-Allow-Methods", p.methodsList)
	switch {
	case p.anyHeader && len(asked) > 0:
		// "*" is not a wildcard for requests with credentials (Fetch), so
		// the asked headers are echoed.
		h.Set("Access-Control-Allow-Headers", strings.Join(asked, ", "))
	case p.headersList != "":
		h.Set("Access-Control-Allow-Headers", p.headersList)
	}
	if p.maxAge != "" {
		h.Set("Access-Control-Max-Age", p.maxAge)
	}
	w.WriteHeader(http.StatusNoContent)
}

// addVary adds v to the Vary header unless it is listed already.
func addVary(h http.Header, v string) {
	for _, have := range h.Values("Vary") {
		for _, f := range strings.Split(have, ",") {
			if f = strings.TrimSpace(f); f == "*" || strings.EqualFold(f, v) {
				return
			}
		}
	}
	h.Add("Vary", v)
}
