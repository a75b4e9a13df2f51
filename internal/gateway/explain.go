package gateway

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/rampart-gw/rampart/internal/cluster/retry"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/router"
)

// ExplainHeader is the request header that asks a listener with
// explain: true for the explanation of the request, and the response
// header that carries it.
const ExplainHeader = "X-Rampart-Explain"

// maxNearest bounds the routes that did not match listed in an
// explanation.
const maxNearest = 10

// Explanation says which route a request gets and why, and what happens
// to it there: the admin API's GET /api/v1/explain, and the
// X-Rampart-Explain response header (docs/routing.md).
type Explanation struct {
	Version string         `json:"version"`
	Request ExplainRequest `json:"request"`
	// Route is the winner, null when no route matches.
	Route *ExplainedRoute `json:"route"`
	// Candidates are the other routes that match and lose, best first,
	// each with the reason it lost.
	Candidates []Candidate `json:"candidates"`
	// Nearest are routes that do not match, nearest first (most
	// conditions holding), each with what fails; at most maxNearest.
	Nearest []Candidate `json:"nearest"`
	// Upstreams are where the route forwards: one for upstream:, one per
	// branch for split:, each with its targets' health and its failover
	// chain.
	Upstreams []ExplainedUpstream `json:"upstreams,omitempty"`
	// Policies run in this order before the request is forwarded.
	Policies []ExplainedPolicy `json:"policies,omitempty"`
	// Budget is the route's timeout and retry policy.
	Budget *Budget `json:"budget,omitempty"`
	// UpstreamPath is the path and query the upstream receives, after
	// strip_prefix / rewrite.
	UpstreamPath string `json:"upstream_path,omitempty"`
}

// ExplainRequest is the request explained, after path normalization;
// Header is filled in by the admin API only (a real request's headers are
// not echoed).
type ExplainRequest struct {
	Method   string      `json:"method"`
	Host     string      `json:"host"`
	Path     string      `json:"path"`
	RawQuery string      `json:"query,omitempty"`
	Header   http.Header `json:"headers,omitempty"`
}

// Candidate is one route's verdict.
type Candidate struct {
	Route string `json:"route"`
	router.Verdict
}

// ExplainedRoute is the winning route: its verdict and its conditions.
type ExplainedRoute struct {
	Candidate
	Match config.Match `json:"match"`
}

// ExplainedUpstream is one upstream a route forwards to.
type ExplainedUpstream struct {
	// Weight and Percent are the branch's share of a split.
	Weight  int     `json:"weight,omitempty"`
	Percent float64 `json:"percent,omitempty"`
	UpstreamView
	// FailoverChain holds the upstreams that take over, in order, while
	// this one has no healthy target or its circuit is open.
	FailoverChain []UpstreamView `json:"failover_chain,omitempty"`
}

// ExplainedPolicy is one policy of the route with its effective
// settings, secrets redacted as in GET /api/v1/config.
type ExplainedPolicy struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Settings any    `json:"settings"`
}

// Budget is a route's time and retry budget.
type Budget struct {
	// Timeout bounds the whole upstream exchange up to the response
	// head, retries and backoff included ("0s": none).
	Timeout  string `json:"timeout"`
	Attempts int    `json:"attempts"`
	// PerTryTimeout bounds one attempt ("" none).
	PerTryTimeout string   `json:"per_try_timeout,omitempty"`
	RetryOn       []string `json:"retry_on,omitempty"`
	BackoffBase   string   `json:"backoff_base,omitempty"`
	BackoffMax    string   `json:"backoff_max,omitempty"`
	// BackoffTotalMax is the most all retries can wait in backoff (full
	// jitter: each wait is drawn below its ceiling), Retry-After aside.
	BackoffTotalMax string         `json:"backoff_total_max,omitempty"`
	RetryBudget     *config.Budget `json:"retry_budget,omitempty"`
	NonIdempotent   bool           `json:"non_idempotent,omitempty"`
}

// Explain explains r, whose path is already normalized as the handler
// does it (pathnorm.Request), against s. It is for the admin API and for
// listeners with explain: true; it allocates freely.
func (s *Snapshot) Explain(r *http.Request) *Explanation {
	e := &Explanation{Version: s.Version, Candidates: []Candidate{}, Nearest: []Candidate{},
		Request: ExplainRequest{Method: r.Method, Host: r.Host, Path: r.URL.Path, RawQuery: r.URL.RawQuery}}
	x := s.Router.Explain(r.Host, r.URL.Path, r.Method, r.Header, r.URL.RawQuery)
	name := func(i int) string {
		if i >= 0 && i < len(s.Routes) {
			return s.Routes[i].Name
		}
		return ""
	}
	for _, v := range x.Verdicts {
		c := Candidate{Route: name(v.Index), Verdict: v}
		switch {
		case v.Index == x.Winner:
		case v.Matched:
			e.Candidates = append(e.Candidates, c)
		case len(e.Nearest) < maxNearest:
			e.Nearest = append(e.Nearest, c)
		}
	}
	if x.Winner < 0 {
		return e
	}
	rt := s.Routes[x.Winner]
	rc := rt.Config
	e.Route = &ExplainedRoute{Candidate: Candidate{Route: rt.Name, Verdict: x.Verdicts[0]}, Match: rc.Match}
	switch {
	case rc.Upstream != "":
		e.Upstreams = []ExplainedUpstream{s.explainUpstream(rc.Upstream)}
	case len(rc.Split) > 0:
		total := 0
		for _, b := range rc.Split {
			total += b.Weight
		}
		for _, b := range rc.Split {
			eu := s.explainUpstream(b.Upstream)
			eu.Weight = b.Weight
			if total > 0 {
				eu.Percent = float64(b.Weight) * 100 / float64(total)
			}
			e.Upstreams = append(e.Upstreams, eu)
		}
	}
	if len(rc.Policies) > 0 {
		var pols map[string]any
		if m, err := s.Config.Redacted(); err == nil {
			pols, _ = m["policies"].(map[string]any)
		}
		for _, p := range rc.Policies {
			ep := ExplainedPolicy{Name: p}
			if pc := s.Config.Policies[p]; pc != nil {
				ep.Type = pc.Type
			}
			if spec, ok := pols[p].(map[string]any); ok {
				delete(spec, "type")
				ep.Settings = spec
			}
			e.Policies = append(e.Policies, ep)
		}
	}
	e.Budget = budget(rc)
	if rt.Forward != nil {
		u := rt.Forward.OutboundURL(r.URL)
		e.UpstreamPath = u.RequestURI()
	}
	return e
}

// explainUpstream is the upstream name with its failover chain.
func (s *Snapshot) explainUpstream(name string) ExplainedUpstream {
	eu := ExplainedUpstream{UpstreamView: s.UpstreamView(name)}
	seen := []string{name}
	for next := eu.Failover; next != "" && !slices.Contains(seen, next) && len(seen) <= 4; {
		seen = append(seen, next)
		v := s.UpstreamView(next)
		eu.FailoverChain = append(eu.FailoverChain, v)
		next = v.Failover
	}
	return eu
}

// budget reads the route's effective (defaulted) timeout and retry.
func budget(rc *config.Route) *Budget {
	b := &Budget{Timeout: rc.Timeout.D().String(), Attempts: 1}
	rr := rc.Retry
	if rr == nil {
		return b
	}
	b.Attempts = max(rr.Attempts, 1)
	if d := rr.PerTryTimeout.D(); d > 0 {
		b.PerTryTimeout = d.String()
	}
	b.RetryOn = rr.On
	base, bmax := rr.Backoff.Base.D(), rr.Backoff.Max.D()
	if base > 0 {
		b.BackoffBase, b.BackoffMax = base.String(), max(bmax, base).String()
		var total time.Duration
		for n := 0; n < b.Attempts-1; n++ {
			// The ceilings the proxy draws below (cluster's backoff).
			total += retry.Backoff(n, base, max(bmax, base), func() float64 { return 1 })
		}
		b.BackoffTotalMax = total.String()
	}
	b.RetryBudget = rr.Budget
	b.NonIdempotent = rr.NonIdempotent
	return b
}

// explainInto answers a request that asks for it (X-Rampart-Explain: 1)
// with its explanation, compact, in the X-Rampart-Explain response header,
// and drops the request header so that the upstream never sees it. Only
// listeners with explain: true call it.
func explainInto(w http.ResponseWriter, r *http.Request, s *Snapshot) {
	vv := r.Header[ExplainHeader]
	if len(vv) == 0 {
		return
	}
	delete(r.Header, ExplainHeader)
	if len(vv) != 1 || vv[0] != "1" {
		return
	}
	b, err := json.Marshal(s.Explain(r))
	if err != nil {
		return
	}
	w.Header()[ExplainHeader] = []string{string(b)}
}
