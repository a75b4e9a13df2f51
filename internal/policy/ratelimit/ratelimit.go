package ratelimit

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/exchange"
	"github.com/rampart-gw/rampart/internal/policy"
	"github.com/rampart-gw/rampart/internal/redis"
)

// Limit is a compiled `rate_limit` policy.
type Limit struct {
	parts   []Part
	trust   int
	base    *limiter
	byRole  map[string]*limiter
	allowed prometheus.Counter
	limited prometheus.Counter
}

// limiter is one rate with its buckets: in this process (store), or in
// Redis (remote) with store as the on_failure local fallback.
type limiter struct {
	store  *Store
	remote *remote
	lease  *leases  // sync lease: the tokens leased from Redis
	limit  []string // RateLimit-Limit value
	burst  int
}

var (
	_ policy.Policy      = (*Limit)(nil)
	_ policy.ClaimReader = (*Limit)(nil)
)

// New compiles a `rate_limit` policy. Its buckets are claimed in the registry,
// keyed by the policy name, key and rate settings, so that a reload that
// keeps them keeps the buckets. With store redis, the policy claims the
// shared Redis client (internal/redis) and, for on_failure local, local
// buckets holding each instance's share of the rate.
func New(s policy.Spec) (policy.Policy, error) {
	var c Config
	if err := policy.Load(s, &c); err != nil {
		return nil, err
	}
	parts, names, _ := c.parts(s)
	maxKeys := c.MaxKeys
	if maxKeys == 0 {
		maxKeys = DefaultMaxKeys
	}
	var sh *shared
	instances := 1
	if c.Store == "redis" {
		st, errs := redis.Load(s.Config)
		if len(errs) > 0 {
			return nil, errs
		}
		sh = &shared{mode: st.OnFailure, prefix: st.Prefix}
		if c.OnFailure != "" {
			sh.mode = c.OnFailure
		}
		instances = st.Instances
		if s.Metrics != nil {
			sh.errs = map[string]prometheus.Counter{}
			for _, reason := range []string{redis.ReasonTimeout, redis.ReasonDown, redis.ReasonError} {
				sh.errs[reason] = s.Metrics.RateLimitStoreErrs.WithLabelValues(s.Name, reason)
			}
			sh.dur = s.Metrics.RateLimitStoreTime.WithLabelValues(s.Name)
		}
		redis.Claim(s.Claims, st, redis.Deps{Log: s.Log, Metrics: s.Metrics}, func(cl *redis.Client) { sh.client = cl })
	}
	ident := "rate_limit|" + s.Name + "|" + strings.Join(names, ",") + "|" + strconv.Itoa(maxKeys)
	mk := func(role string, r config.Rate, burst int) *limiter {
		l := &limiter{limit: []string{strconv.Itoa(burst)}, burst: burst}
		perSecond, localBurst := r.PerSecond(), burst
		key := fmt.Sprintf("%s|%s|%s|%d", ident, role, r, burst)
		if sh != nil {
			l.remote = newRemote(sh, s.Name, role, perSecond, burst)
			if c.Sync == "lease" {
				policy.Claim(s.Claims, key+"|lease", func() *leases { return newLeases(burst, maxKeys) },
					func(ls *leases) { l.lease = ls })
			}
			if sh.mode != "local" {
				return l
			}
			// Each instance's share while Redis is unavailable.
			perSecond /= float64(instances)
			localBurst = max(1, (burst+instances-1)/instances)
			key += "|fallback|" + strconv.Itoa(instances)
		}
		policy.Claim(s.Claims, key, func() *Store { return NewStore(perSecond, localBurst, maxKeys, nil) },
			func(st *Store) { l.store = st })
		return l
	}
	l := &Limit{parts: parts, trust: c.TrustForwarded, base: mk("", c.Rate, burstOf(&c))}
	if len(c.ByRole) > 0 {
		l.byRole = make(map[string]*limiter, len(c.ByRole))
		for _, role := range sortedRoles(c.ByRole) {
			r := c.ByRole[role]
			l.byRole[role] = mk("role="+role, r, roleBurst(&c, r))
		}
	}
	if s.Metrics != nil {
		l.allowed = s.Metrics.RateLimitDecisions.WithLabelValues(s.Name, "allowed")
		l.limited = s.Metrics.RateLimitDecisions.WithLabelValues(s.Name, "limited")
	}
	return l, nil
}

// ReadsClaims names the first claim:NAME key part, if any (see
// policy.ClaimReader).
func (l *Limit) ReadsClaims() string {
	for _, p := range l.parts {
		if p.Kind == partClaim {
			return "key claim:" + p.Name
		}
	}
	return ""
}

// pick returns the limiter for the consumer's first role that has a rate.
func (l *Limit) pick(ex *exchange.Exchange) *limiter {
	if l.byRole != nil && ex != nil {
		for _, role := range ex.Roles {
			if lim, ok := l.byRole[role]; ok {
				return lim
			}
		}
	}
	return l.base
}

// Wrap counts the request and refuses it with 429 rate_limited when its
// bucket is empty. Every response carries RateLimit-Limit (the burst),
// RateLimit-Remaining and RateLimit-Reset (seconds until the bucket is full).
func (l *Limit) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ex := exchange.From(r.Context())
		lim := l.pick(ex)
		var buf [maxKeyLen + 64]byte
		key := AppendKey(buf[:0], l.parts, l.trust, r, ex)
		var d Decision
		decided := false
		if lim.lease != nil {
			t := time.Time{}
			if ex != nil {
				t = ex.Start
			}
			if t.IsZero() {
				t = time.Now()
			}
			d, decided = lim.lease.take(r.Context(), lim.remote, key, t)
		} else if lim.remote != nil {
			d, decided = lim.remote.take(r.Context(), key)
		}
		if lim.remote != nil {
			if !decided {
				switch lim.remote.mode {
				case "allow":
					d, decided = Decision{Allowed: true, Remaining: lim.burst}, true
				case "deny":
					d, decided = Decision{Reset: time.Second, RetryAfter: time.Second}, true
				}
			}
		}
		if !decided {
			if ex != nil && !ex.Start.IsZero() {
				d = lim.store.TakeBytesAt(key, ex.Start)
			} else {
				d = lim.store.TakeBytes(key)
			}
		}
		h := w.Header()
		h["Ratelimit-Limit"] = lim.limit
		h["Ratelimit-Remaining"] = num(d.Remaining)
		h["Ratelimit-Reset"] = num(seconds(d.Reset))
		if !d.Allowed {
			if l.limited != nil {
				l.limited.Inc()
			}
			h["Retry-After"] = num(max(1, seconds(d.RetryAfter)))
			exchange.Error(w, r, http.StatusTooManyRequests, "rate_limited", "rate limit exceeded; retry later")
			return
		}
		if l.allowed != nil {
			l.allowed.Inc()
		}
		next.ServeHTTP(w, r)
	})
}

// seconds rounds d up to whole seconds.
func seconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}

// nums are header values for small numbers, shared read-only so that the
// common case allocates nothing (Header.Set and Add replace or copy).
var nums = func() [][]string {
	t := make([][]string, 4096)
	for i := range t {
		t[i] = []string{strconv.Itoa(i)}
	}
	return t
}()

func num(n int) []string {
	if n >= 0 && n < len(nums) {
		return nums[n]
	}
	return []string{strconv.Itoa(n)}
}
