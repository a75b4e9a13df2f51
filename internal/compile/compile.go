// Package compile turns a validated config into an immutable
// gateway.Snapshot: the router, the upstream runtimes and each route's
// handler chain, plus the claims on shared state (internal/registry) the
// snapshot needs. It is pure: no network I/O, no shared state touched, no
// goroutine started, so a config is compiled exactly once per change and
// the same Build serves `rampart validate`, apply, a staged candidate and
// its rollback. Acquiring the claims is the app's later, separate step.
package compile

import (
	"errors"
	"fmt"
	"github.com/rampart-gw/rampart/internal/exchange"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rampart-gw/rampart/internal/capture"
	"github.com/rampart-gw/rampart/internal/cluster"
	"github.com/rampart-gw/rampart/internal/cluster/cache"
	"github.com/rampart-gw/rampart/internal/cluster/retry"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/gateway"
	"github.com/rampart-gw/rampart/internal/policy"
	"github.com/rampart-gw/rampart/internal/proxy"
	"github.com/rampart-gw/rampart/internal/registry"
	"github.com/rampart-gw/rampart/internal/route"
	"github.com/rampart-gw/rampart/internal/router"
	"github.com/rampart-gw/rampart/internal/telemetry"
)

// Deps are the long-lived services a snapshot is built against. Every field
// may be nil (as in `rampart validate`). None of them is changed by Build.
type Deps struct {
	Metrics *telemetry.Metrics
	Log     *slog.Logger
	// Upgraded tracks WebSocket connections for shutdown.
	Upgraded *proxy.ConnSet
}

// builds counts Build calls, so tests can check that each config is
// compiled exactly once per change.
var builds atomic.Int64

// Builds returns how many times Build has run in this process.
func Builds() int64 { return builds.Load() }

// Build compiles cfg, which must have passed Validate. Problems are returned
// as config.Errors with positions. The snapshot serves only once its
// Claims are acquired (gateway.Snapshot.Acquire).
func Build(cfg *config.Config, deps Deps) (*gateway.Snapshot, error) {
	builds.Add(1)
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	var errs config.Errors
	claims := &registry.Claims{}
	snap := &gateway.Snapshot{
		Claims:          claims,
		Config:          cfg,
		Version:         cfg.Version(),
		Upstreams:       make(map[string]*cluster.Upstream, len(cfg.Upstreams)),
		RequestIDHeader: http.CanonicalHeaderKey(cfg.Observability.RequestIDHeader),
		Created:         time.Now(),
	}
	if snap.RequestIDHeader == "" {
		// Only a config built in Go that skipped ApplyDefaults; config
		// holds the default.
		snap.RequestIDHeader = http.CanonicalHeaderKey(config.DefaultRequestIDHeader)
	}

	names := make([]string, 0, len(cfg.Upstreams))
	for name := range cfg.Upstreams {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		u, err := cluster.Build(name, cfg.Upstreams[name], cluster.BuildOptions{Zone: cfg.Cluster.Zone, Metrics: deps.Metrics, Log: deps.Log}, claims)
		if err != nil {
			errs = append(errs, cfg.Errorf("upstreams."+name, "%v", err))
			continue
		}
		snap.Upstreams[name] = u
	}

	for _, name := range names {
		f := cfg.Upstreams[name].Failover
		if u := snap.Upstreams[name]; u != nil && f != "" {
			if u.Failover = snap.Upstreams[f]; u.Failover == nil {
				errs = append(errs, cfg.Errorf("upstreams."+name+".failover", "unknown upstream %q", f))
			}
		}
	}

	policies, perrs := buildPolicies(cfg, deps, claims)
	errs = append(errs, perrs...)

	rules := make([]router.Rule, len(cfg.Routes))
	for i := range cfg.Routes {
		rc := &cfg.Routes[i]
		path := fmt.Sprintf("routes[%d]", i)
		m := rc.Match
		if len(m.Methods) > 0 {
			m.Methods = make([]string, len(rc.Match.Methods))
			for j, meth := range rc.Match.Methods {
				m.Methods[j] = strings.ToUpper(meth)
			}
		}
		rules[i] = router.Rule{Match: m}
		errs = append(errs, claimOrder(cfg, path, rc, policies)...)
		h, fwd, err := buildRoute(cfg, rc, snap, policies, deps, claims)
		if err != nil {
			errs = append(errs, cfg.Errorf(path, "%v", err))
			continue
		}
		perrs, usesParams := captureUse(cfg, path, rc, snap, policies)
		errs = append(errs, perrs...)
		route := &gateway.Route{Name: rc.Name, Config: rc, Handler: h, Params: usesParams, Forward: fwd}
		if deps.Metrics != nil {
			route.Metrics = deps.Metrics.Route(rc.Name)
		}
		snap.Routes = append(snap.Routes, route)
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].Pos.Line < errs[j].Pos.Line })
		return nil, errs
	}
	rt, err := router.New(rules)
	if err != nil {
		return nil, config.Errors{cfg.Errorf("routes", "%v", err)}
	}
	snap.Router = rt
	return snap, nil
}

// buildRoute composes a route's handler: its policies around
// route.Errors, the cache, the split between upstreams and each upstream's
// failover chain, with a proxy per upstream at the core.
func buildRoute(cfg *config.Config, rc *config.Route, snap *gateway.Snapshot, policies map[string]policy.Policy, deps Deps, claims *registry.Claims) (http.Handler, *proxy.Config, error) {
	pc := proxy.Config{
		Route:           rc.Name,
		Prefix:          rewritePrefix(rc.Match.Path),
		StripPrefix:     rc.StripPrefix,
		RequestIDHeader: snap.RequestIDHeader,
		Policy:          cluster.Policy{Route: rc.Name, Timeout: rc.Timeout.D(), Metrics: deps.Metrics, Log: deps.Log},
	}
	if rw := rc.Rewrite; rw != nil && rw.Path != "" {
		t, err := capture.Parse(rw.Path)
		if err != nil {
			return nil, nil, fmt.Errorf("rewrite.path: %w", err)
		}
		pc.RewritePath = t
	} else if rw != nil {
		pc.Rewrite, pc.HasRewrite = rw.Prefix, true
	}
	buffering, err := proxy.ParseBuffering(rc.RequestBuffering)
	if err != nil {
		return nil, nil, err
	}
	pc.Buffering = buffering
	if rr := rc.Retry; rr != nil {
		// config applied the defaults of on and backoff (only where the
		// keys were absent): an explicit `on: []` retries nothing and an
		// explicit zero backoff does not wait.
		on, err := config.ParseRetryOn(rr.On)
		if err != nil {
			return nil, nil, fmt.Errorf("retry.on: %w", err)
		}
		conds := retry.New(on)
		pr := &cluster.Retry{Attempts: max(rr.Attempts, 1), PerTryTimeout: rr.PerTryTimeout.D(), On: conds,
			BackoffBase: rr.Backoff.Base.D(), BackoffMax: rr.Backoff.Max.D(), NonIdempotent: rr.NonIdempotent}
		if b := rr.Budget; b != nil {
			key := fmt.Sprintf("%s|%v|%v", rc.Name, b.Percent, b.MinPerSecond)
			cluster.ClaimBudget(claims, key, b.Percent, b.MinPerSecond, func(b *retry.Budget) { pr.Budget = b })
		}
		pc.Policy.Retry = pr
	}
	pdeps := proxy.Deps{Log: deps.Log, Upgraded: deps.Upgraded}
	// upstream returns the handler for one upstream: its proxy, behind
	// its failover chain. config.Validate refuses failover cycles; the
	// 4-hop cut is only a backstop for a config that skipped it.
	var upstream func(u *cluster.Upstream, hops int) (http.Handler, error)
	upstream = func(u *cluster.Upstream, hops int) (http.Handler, error) {
		c := pc
		c.Upstream = u
		p, err := proxy.New(c, pdeps)
		if err != nil || u.Failover == nil || hops >= 4 {
			return p, err
		}
		next, err := upstream(u.Failover, hops+1)
		if err != nil {
			return nil, err
		}
		return &route.Failover{Upstream: u, Primary: p, Next: next}, nil
	}
	var h http.Handler
	switch {
	case rc.Upstream != "":
		u := snap.Upstreams[rc.Upstream]
		if u == nil {
			return nil, nil, fmt.Errorf("unknown upstream %q", rc.Upstream)
		}
		var err error
		if h, err = upstream(u, 0); err != nil {
			return nil, nil, err
		}
	case len(rc.Split) > 0:
		branches := make([]route.Branch, 0, len(rc.Split))
		for _, s := range rc.Split {
			u := snap.Upstreams[s.Upstream]
			if u == nil {
				return nil, nil, fmt.Errorf("unknown upstream %q", s.Upstream)
			}
			bh, err := upstream(u, 0)
			if err != nil {
				return nil, nil, err
			}
			if s.Weight <= 0 {
				return nil, nil, fmt.Errorf("upstream %s: weight must be positive", s.Upstream)
			}
			branches = append(branches, route.Branch{Handler: bh, Weight: s.Weight})
		}
		sp, err := route.NewSplit(branches)
		if err != nil {
			return nil, nil, err
		}
		h = sp
	case rc.Aggregate != nil:
		ag, err := buildAggregate(rc, snap, pc.Policy, deps)
		if err != nil {
			return nil, nil, err
		}
		h = ag
	default:
		return nil, nil, errors.New("route needs upstream, split or aggregate")
	}
	if mc := rc.Mirror; mc != nil && mc.Percent > 0 {
		m, err := buildMirror(rc, mc, pc, h, snap, deps, pdeps, claims)
		if err != nil {
			return nil, nil, err
		}
		h = m
	}
	errs := &route.Errors{}
	if c := rc.Cache; c != nil && c.TTL > 0 {
		ch := &route.Cache{Next: h, Route: rc.Name, TTL: c.TTL.D(), StaleIfError: c.StaleIfError.D()}
		cluster.ClaimCache(claims, func(s *cache.Cache) { ch.Store = s })
		h, errs.Cache = ch, ch
	}
	if rc.Fallback != nil {
		fb := *rc.Fallback
		errs.Fallback = &fb
	}
	errs.Next = h
	h = errs
	if len(rc.Policies) > 0 {
		h = stage{next: h}
	}
	for i := len(rc.Policies) - 1; i >= 0; i-- {
		pol := policies[rc.Policies[i]]
		if pol == nil {
			return nil, nil, fmt.Errorf("unknown policy %q", rc.Policies[i])
		}
		h = stage{name: rc.Policies[i], next: pol.Wrap(h)}
	}
	return h, &pc, nil
}

// buildMirror wraps h, the route's choice of upstream, in its mirror: a
// proxy for the shadow upstream with the route's path handling and
// timeout and no retries, and the mirror's state, shared by every
// snapshot that mirrors the route to that upstream (so that max_in_flight
// holds across reloads).
func buildMirror(rc *config.Route, mc *config.Mirror, pc proxy.Config, h http.Handler, snap *gateway.Snapshot, deps Deps, pdeps proxy.Deps, claims *registry.Claims) (*route.Mirror, error) {
	u := snap.Upstreams[mc.Upstream]
	if u == nil {
		return nil, fmt.Errorf("mirror: unknown upstream %q", mc.Upstream)
	}
	pc.Upstream = u
	pc.Policy.Retry = nil
	shadow, err := proxy.New(pc, pdeps)
	if err != nil {
		return nil, fmt.Errorf("mirror: %w", err)
	}
	timeout := rc.Timeout.D()
	if timeout <= 0 {
		timeout = config.DefaultRouteTimeout.D()
	}
	m := route.NewMirror(route.Mirror{
		Next: h, Shadow: shadow, Route: rc.Name, Upstream: u.Name,
		Percent: mc.Percent, MaxInFlight: int64(mc.MaxInFlight), MaxBody: mc.MaxBodyBytes,
		Timeout: timeout, Metrics: deps.Metrics, Log: deps.Log,
	})
	key := "mirror|" + rc.Name + "|" + u.Name
	if claims == nil {
		return m, nil // NewMirror made a state of its own
	}
	registry.Claim(claims, key, route.NewShadows, func(s *route.Shadows) { m.State = s })
	return m, nil
}

func buildPolicies(cfg *config.Config, deps Deps, claims *registry.Claims) (map[string]policy.Policy, config.Errors) {
	var errs config.Errors
	seen := map[string]bool{}
	out := make(map[string]policy.Policy, len(cfg.Policies))
	names := make([]string, 0, len(cfg.Policies))
	for name := range cfg.Policies {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		pc := cfg.Policies[name]
		path := "policies." + name
		f, ok := factories[pc.Type]
		if !ok {
			errs = append(errs, cfg.Errorf(path+".type", "policy type %q is not available in this release", pc.Type))
			out[name] = failed // routes naming it are not "unknown policy" too
			continue
		}
		p, err := f.new(policy.Spec{Name: name, Node: pc, File: cfg.File(), Path: path, Config: cfg, Metrics: deps.Metrics, Log: deps.Log, Claims: claims})
		if err != nil {
			var ce config.Errors
			if errors.As(err, &ce) {
				for _, e := range ce {
					// Problems outside the policy (consumers:) are found
					// by every policy that reads them: report them once.
					if !seen[e.Error()] {
						seen[e.Error()] = true
						errs = append(errs, e)
					}
				}
			} else {
				errs = append(errs, cfg.Errorf(path, "%v", err))
			}
			out[name] = failed
			continue
		}
		out[name] = p
	}
	return out, errs
}

// claimOrder reports the policies of a route that read verified token
// claims (rate_limit claim:NAME, require_role claim) without a jwt policy
// before them on the route: they would never see a claim.
func claimOrder(cfg *config.Config, path string, rc *config.Route, policies map[string]policy.Policy) config.Errors {
	var errs config.Errors
	written := false
	for j, name := range rc.Policies {
		if policies[name] == nil || isFailed(policies[name]) {
			// A policy that did not compile may be the jwt policy: no
			// consequential error.
			written = true
			continue
		}
		switch p := policies[name].(type) {
		case policy.ClaimWriter:
			written = true
		case policy.ClaimReader:
			if what := p.ReadsClaims(); what != "" && !written {
				errs = append(errs, cfg.Errorf(fmt.Sprintf("%s.policies[%d]", path, j),
					"policy %q reads %s from a verified token: list a jwt policy before it on this route", name, what))
			}
		}
	}
	return errs
}

// failed stands in for a policy that did not compile, so that routes
// naming it are not also reported as naming an unknown policy. A config
// with a failed policy is refused, so it never serves.
var failed = &failedPolicy{}

type failedPolicy struct{}

func (*failedPolicy) Wrap(next http.Handler) http.Handler { return next }

func isFailed(p policy.Policy) bool { _, ok := p.(*failedPolicy); return ok }

// buildAggregate compiles a route's aggregate: each backend calls its
// upstream with the route's retry policy and timeout.
func buildAggregate(rc *config.Route, snap *gateway.Snapshot, pol cluster.Policy, deps Deps) (*route.Aggregate, error) {
	a := rc.Aggregate
	ag := &route.Aggregate{Route: rc.Name, Timeout: a.Timeout.D(), Metrics: deps.Metrics, Log: deps.Log}
	if ag.Timeout == 0 {
		ag.Timeout = rc.Timeout.D()
	}
	for j, b := range a.Backends {
		u := snap.Upstreams[b.Upstream]
		if u == nil {
			return nil, fmt.Errorf("aggregate.backends[%d]: unknown upstream %q", j, b.Upstream)
		}
		pathPart, query, hasQuery := strings.Cut(b.Path, "?")
		pt, err := capture.ParseSteps(pathPart)
		if err != nil {
			return nil, fmt.Errorf("aggregate.backends[%d].path: %w", j, err)
		}
		be := &route.Backend{Upstream: u, Path: pt, Group: b.Group, Optional: b.Optional, Timeout: b.Timeout.D(),
			Allow: route.SplitAllow(b.Allow), Rename: b.Rename, MaxBodyBytes: b.MaxBodyBytes, Policy: pol}
		if hasQuery {
			if be.Query, err = capture.ParseSteps(query); err != nil {
				return nil, fmt.Errorf("aggregate.backends[%d].path: %w", j, err)
			}
		}
		// Sequential steps: the earlier backends whose groups the path
		// uses ({resp.GROUP.field}); validation allows only earlier ones.
		resps := pt.Resps()
		if be.Query != nil {
			resps = append(resps, be.Query.Resps()...)
		}
		for _, rp := range resps {
			g, _, _ := strings.Cut(rp, ".")
			k := slices.IndexFunc(a.Backends[:j], func(o config.AggregateBackend) bool { return o.Group == g })
			if k < 0 {
				return nil, fmt.Errorf("aggregate.backends[%d].path: {resp.%s}: no earlier backend has group %q", j, rp, g)
			}
			if !slices.Contains(be.After, k) {
				be.After = append(be.After, k)
			}
		}
		if be.MaxBodyBytes == 0 {
			be.MaxBodyBytes = config.DefaultAggregateMaxBodyBytes
		}
		if be.Timeout > 0 && (be.Policy.Timeout == 0 || be.Timeout < be.Policy.Timeout) {
			be.Policy.Timeout = be.Timeout
		}
		be.Policy.Path = nil
		ag.Backends = append(ag.Backends, be)
	}
	return ag, nil
}

// captureUse says whether the route's handlers use its path captures
// (rewrite.path, aggregate, a policy's placeholders, an upstream's
// hash_key param:NAME) and refuses a policy whose placeholders the route's
// match does not supply. Config validation checks the route's own keys.
func captureUse(cfg *config.Config, path string, rc *config.Route, snap *gateway.Snapshot, policies map[string]policy.Policy) (config.Errors, bool) {
	var errs config.Errors
	have := config.PathParams(rc.Match.Path)
	uses := rc.Aggregate != nil || rc.Rewrite != nil && rc.Rewrite.Path != ""
	for j, name := range rc.Policies {
		cu, ok := policies[name].(policy.CaptureUser)
		if !ok {
			continue
		}
		for _, n := range cu.CaptureNames() {
			uses = true
			if !slices.Contains(have, n) {
				errs = append(errs, cfg.Errorf(fmt.Sprintf("%s.policies[%d]", path, j),
					"policy %q uses capture {%s}, which this route's match.path does not supply (captures: %s)", name, n, orNone(have)))
			}
		}
	}
	ups := []string{rc.Upstream}
	for _, s := range rc.Split {
		ups = append(ups, s.Upstream)
	}
	for _, name := range ups {
		if u := cfg.Upstreams[name]; u != nil && strings.HasPrefix(u.HashKey, "param:") {
			uses = true
		}
	}
	return errs, uses && len(have) > 0
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// rewritePrefix is the part of the request path that strip_prefix removes
// and rewrite.prefix replaces: a prefix route's prefix, or a template
// route's literal prefix, the text before its first variable ("/t/" of
// "/t/{id}/{*rest}"). Validate allows the two keys only on those routes.
func rewritePrefix(p config.PathMatch) string {
	if p.Template != "" && p.Prefix == "" {
		if t, err := config.ParseTemplate(p.Template); err == nil {
			return t.Literal
		}
	}
	return p.Prefix
}

// stage marks which of a route's policies is running, so that a
// gateway-made error written while it runs names it as the request's
// RejectedBy (exchange.Error does that). One stage precedes each policy
// and an unnamed one follows the last, clearing the mark before the
// route's handler, whose errors are no policy's.
type stage struct {
	name string
	next http.Handler
}

func (s stage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if e := exchange.From(r.Context()); e != nil {
		e.Policy = s.name
	}
	s.next.ServeHTTP(w, r)
}
