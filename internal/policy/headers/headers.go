package headers

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/rampart-gw/rampart/internal/capture"
	"github.com/rampart-gw/rampart/internal/exchange"
	"github.com/rampart-gw/rampart/internal/policy"
)

// Headers is a compiled `headers` policy.
type Headers struct {
	req, resp edits
}

var _ policy.Policy = (*Headers)(nil)

// edits are Changes with canonical names, in a fixed order.
type edits struct {
	remove []string
	set    []kv
	add    []kv
	host   string // request side: a Host to set
	params bool   // some value has placeholders
}

// kv is one header value; t, when set, is its placeholders ({id},
// {query.NAME}), filled in per request.
type kv struct {
	k, v string
	t    *capture.Subst
}

func newKV(k, v string) kv {
	p := kv{k: k, v: v}
	if t, err := capture.Parse(v); err == nil && !t.Literal() {
		p.t = t
	}
	return p
}

func (p kv) value(ex *exchange.Exchange, rawQuery string) string {
	if p.t == nil {
		return p.v
	}
	var params []exchange.Param
	if ex != nil {
		params = ex.Params
	}
	return p.t.ExpandString(params, rawQuery, capture.Header)
}

// New compiles a `headers` policy.
func New(s policy.Spec) (policy.Policy, error) {
	var c Config
	if err := policy.Load(s, &c); err != nil {
		return nil, err
	}
	return &Headers{req: compileEdits(c.Request), resp: compileEdits(c.Response)}, nil
}

func compileEdits(c Changes) edits {
	var e edits
	for _, k := range c.Remove {
		e.remove = append(e.remove, http.CanonicalHeaderKey(k))
	}
	for _, k := range sortedKeys(c.Set) {
		ck := http.CanonicalHeaderKey(k)
		if ck == "Host" {
			e.host = c.Set[k]
			continue
		}
		e.set = append(e.set, newKV(ck, c.Set[k]))
	}
	for _, k := range sortedKeys(c.Add) {
		e.add = append(e.add, newKV(http.CanonicalHeaderKey(k), c.Add[k]))
	}
	for _, p := range append(slices.Clip(e.set), e.add...) {
		e.params = e.params || p.t != nil
	}
	return e
}

func (e *edits) empty() bool {
	return len(e.remove) == 0 && len(e.set) == 0 && len(e.add) == 0 && e.host == ""
}

func (e *edits) apply(h http.Header, r *http.Request) {
	for _, k := range e.remove {
		delete(h, k)
	}
	var ex *exchange.Exchange
	if e.params {
		ex = exchange.From(r.Context())
	}
	for _, p := range e.set {
		h[p.k] = []string{p.value(ex, r.URL.RawQuery)}
	}
	for _, p := range e.add {
		h[p.k] = append(h[p.k], p.value(ex, r.URL.RawQuery))
	}
}

// names returns the capture names the edits use.
func (e *edits) names() []string {
	var out []string
	for _, p := range append(slices.Clip(e.set), e.add...) {
		if p.t != nil {
			for _, n := range p.t.Names() {
				if !slices.Contains(out, n) {
					out = append(out, n)
				}
			}
		}
	}
	return out
}

// CaptureNames returns the path captures the policy's values use ({id});
// compile checks that every route listing it supplies them.
func (p *Headers) CaptureNames() []string {
	out := p.req.names()
	for _, n := range p.resp.names() {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// Wrap applies the request edits, then the response edits once the response
// header is about to be sent.
func (p *Headers) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.req.apply(r.Header, r)
		if p.req.host != "" {
			r.Host = p.req.host
		}
		if !p.resp.empty() {
			w = policy.HeaderHook(w, func(h http.Header, _ int) { p.resp.apply(h, r) })
		}
		next.ServeHTTP(w, r)
	})
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func itoa(i int) string { return strconv.Itoa(i) }
