package headers

import (
	"net/http"
	"slices"
	"strconv"

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
}

type kv struct{ k, v string }

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
		e.set = append(e.set, kv{ck, c.Set[k]})
	}
	for _, k := range sortedKeys(c.Add) {
		e.add = append(e.add, kv{http.CanonicalHeaderKey(k), c.Add[k]})
	}
	return e
}

func (e *edits) empty() bool {
	return len(e.remove) == 0 && len(e.set) == 0 && len(e.add) == 0 && e.host == ""
}

func (e *edits) apply(h http.Header) {
	for _, k := range e.remove {
		delete(h, k)
	}
	for _, p := range e.set {
		h[p.k] = []string{p.v}
	}
	for _, p := range e.add {
		h[p.k] = append(h[p.k], p.v)
	}
}

// Wrap applies the request edits, then the response edits once the response
// header is about to be sent.
func (p *Headers) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.req.apply(r.Header)
		if p.req.host != "" {
			r.Host = p.req.host
		}
		if !p.resp.empty() {
			w = policy.HeaderHook(w, func(h http.Header, _ int) { p.resp.apply(h) })
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
