// Package cluster is the runtime side of upstreams: their targets, balancer,
// connection pools, circuit breaker, active health checks and outlier
// detection. State that must survive config reloads — pooled connections,
// per-target counters, health verdicts, ejections, breaker counters — is
// owned by a Manager and shared by every snapshot that uses it, keyed by
// identity, so a reload never drops pooled connections or resets the health
// of unchanged upstreams.
package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-gw/rampart/internal/cluster/balancer"
	"github.com/rampart-gw/rampart/internal/cluster/breaker"
	"github.com/rampart-gw/rampart/internal/cluster/cache"
	"github.com/rampart-gw/rampart/internal/cluster/h1"
	"github.com/rampart-gw/rampart/internal/cluster/outlier"
	"github.com/rampart-gw/rampart/internal/cluster/retry"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/telemetry"
)

// DefaultPanicThreshold is the share of healthy targets (percent) under
// which an upstream balances over all its targets.
const DefaultPanicThreshold = 50

// Upstream is one compiled upstream: its targets, how to pick one, and the
// pooled transport that reaches them. It is immutable after compile except
// for the balancer, which is rebuilt when the set of healthy targets changes.
type Upstream struct {
	Name string
	// Targets are all configured targets, healthy or not.
	Targets []*balancer.Target
	// Transport sends requests to targets over pooled keep-alive
	// connections dedicated to this upstream (a bulkhead: one slow upstream
	// cannot exhaust the connections of another).
	Transport http.RoundTripper
	// Scheme is http or https.
	Scheme string
	// Failover is used while this upstream has no healthy target.
	Failover *Upstream

	balCfg balancer.Config
	panicT int
	bal    atomic.Pointer[lbSet]
	pool   *pool
	st     *state
	gauges []prometheus
	cfg    *config.Upstream
	addrs  []string
	calls  callState // Do's per-upstream state (call.go)
}

// prometheus is the part of a gauge rebuild sets.
type prometheus interface{ Set(float64) }

// lbSet is a balancer over the targets currently eligible for traffic.
type lbSet struct {
	b balancer.Balancer
	// healthy is the number of healthy, non-ejected targets.
	healthy int
	// panic is set when too few targets are healthy and the balancer
	// spans all of them.
	panic bool
}

// Pick chooses a target for r, or returns nil when there is none.
func (u *Upstream) Pick(r *http.Request) *balancer.Target {
	return u.bal.Load().b.Pick(r)
}

// PickOther chooses a target for r that is not in tried, if there is one;
// otherwise it returns any target. Retries use it to move to another target.
// It never asks the balancer, whose sequence (round robin) belongs to first
// attempts (Envoy's previous_hosts): it starts at a random eligible target.
func (u *Upstream) PickOther(r *http.Request, tried []*balancer.Target) *balancer.Target {
	set := u.bal.Load()
	if n := len(u.Targets); n > 0 {
		for i, off := 0, rand.IntN(n); i < n; i++ {
			if c := u.Targets[(i+off)%n]; !contains(tried, c) && (set.panic || u.available(c.Addr)) {
				return c
			}
		}
	}
	if len(tried) == 0 || (set.healthy == 0 && !set.panic) {
		return set.b.Pick(r) // nil when no target is left
	}
	return tried[len(tried)-1]
}

func contains(ts []*balancer.Target, t *balancer.Target) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}

// NoHealthy reports whether the upstream has no healthy target left.
func (u *Upstream) NoHealthy() bool { return u.bal.Load().healthy == 0 }

// Panic reports whether the upstream is in panic mode (balancing over all
// targets because too few are healthy).
func (u *Upstream) Panic() bool { return u.bal.Load().panic }

// Breaker is the upstream's circuit breaker.
func (u *Upstream) Breaker() *breaker.Breaker { return u.st.breaker.Load() }

// Report feeds the outcome of one attempt to outlier detection.
func (u *Upstream) Report(addr string, r outlier.Result) {
	if d := u.st.outlier.Load(); d != nil {
		d.Report(addr, r)
	}
}

// TargetState is one target's health for the admin API.
type TargetState struct {
	Healthy      bool
	Ejected      bool
	EjectedUntil time.Time
}

// State returns the health of addr.
func (u *Upstream) State(addr string) TargetState {
	ej, until := u.st.ejected(addr)
	return TargetState{Healthy: u.st.healthy(addr), Ejected: ej, EjectedUntil: until}
}

func (u *Upstream) available(addr string) bool {
	if !u.st.healthy(addr) {
		return false
	}
	ej, _ := u.st.ejected(addr)
	return !ej
}

// rebuild recomputes the balancer over the eligible targets.
func (u *Upstream) rebuild() {
	avail := make([]*balancer.Target, 0, len(u.Targets))
	for i, t := range u.Targets {
		ok := u.available(t.Addr)
		if ok {
			avail = append(avail, t)
		}
		if i < len(u.gauges) {
			v := 0.0
			if ok {
				v = 1
			}
			u.gauges[i].Set(v)
		}
	}
	set := &lbSet{healthy: len(avail)}
	if n := len(u.Targets); n > 0 && len(avail)*100 < u.panicT*n {
		// Too few healthy targets: they would be overwhelmed, and the
		// health checks themselves may be what is broken. Spread over all.
		set.panic = true
		avail = u.Targets
	}
	b, err := balancer.New(u.balCfg, avail)
	if err != nil { // settings were checked in Build; keep the old set
		return
	}
	set.b = b
	u.bal.Store(set)
}

// CloseIdle closes idle pooled connections.
func (u *Upstream) CloseIdle() { u.pool.transport.CloseIdleConnections() }

// DialError marks a failure to connect to a target: the request never left
// the gateway, so it is always safe to retry.
type DialError struct {
	Addr string
	Err  error
}

func (e *DialError) Error() string { return "connect to " + e.Addr + ": " + e.Err.Error() }
func (e *DialError) Unwrap() error { return e.Err }

// IsDialError reports whether err is (or wraps) a DialError.
func IsDialError(err error) bool {
	var d *DialError
	return errors.As(err, &d)
}

// pool is a transport with its connection settings. Pools are shared across
// reloads while those settings do not change.
type pool struct {
	key       string
	transport roundTripper
}

// roundTripper is what a pool sends with: net/http's Transport or, for
// plain HTTP/1.1 upstreams, the h1 client.
type roundTripper interface {
	http.RoundTripper
	CloseIdleConnections()
}

// Deps are the Manager's shared services.
type Deps struct {
	Metrics *telemetry.Metrics
	Log     *slog.Logger
}

// Manager owns state that outlives config snapshots. A nil *Manager builds
// throwaway upstreams (for `rampart validate`).
type Manager struct {
	deps    Deps
	mu      sync.Mutex
	pools   map[string]*pool
	targets map[string]*balancer.Target
	states  map[string]*state
	budgets map[string]*retry.Budget
	cache   *cache.Cache
}

// NewManager returns an empty Manager.
func NewManager(deps Deps) *Manager {
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	return &Manager{deps: deps, pools: map[string]*pool{}, targets: map[string]*balancer.Target{}, states: map[string]*state{}}
}

// BuildOptions are gateway-wide settings that shape an upstream.
type BuildOptions struct {
	// Zone is the gateway's own zone, for zone-aware balancing.
	Zone string
}

// Build compiles the upstream name from cfg. With a non-nil Manager it reuses
// the pool, targets and health state of earlier builds with the same
// identity. Build starts nothing and performs no network I/O (it may read
// CA files named in cfg.TLS); Activate makes a snapshot's upstreams live.
func (m *Manager) Build(name string, cfg *config.Upstream, opts BuildOptions) (*Upstream, error) {
	u := &Upstream{Name: name, Scheme: "http", panicT: DefaultPanicThreshold,
		balCfg: balancer.Config{Kind: cfg.Balancer, HashKey: cfg.HashKey, BoundedLoad: cfg.BoundedLoad, LocalZone: opts.Zone}}
	if cfg.TLS != nil {
		u.Scheme = "https"
	}
	if hc := cfg.HealthCheck; hc != nil && hc.PanicThreshold != nil {
		u.panicT = *hc.PanicThreshold
	}
	if u.panicT < 0 || u.panicT > 100 {
		return nil, fmt.Errorf("health_check.panic_threshold must be between 0 and 100")
	}
	if _, err := balancer.New(u.balCfg, nil); err != nil {
		return nil, err
	}
	addrs := make([]string, 0, len(cfg.Targets))
	for _, t := range cfg.Targets {
		w := t.Weight
		if w <= 0 {
			w = 1
		}
		u.Targets = append(u.Targets, m.target(name, t.Address, w, t.Zone))
		addrs = append(addrs, t.Address)
	}
	u.cfg, u.addrs = cfg, addrs
	u.st = m.state(name)
	if u.st.breaker.Load() == nil {
		// A state no live snapshot uses yet: safe to set up now. Shared
		// states are reconfigured only by Activate, so that a config that
		// is refused after Build (or a staged candidate) changes nothing.
		u.st.configure(cfg, addrs)
	}
	key, err := poolKey(name, cfg)
	if err != nil {
		return nil, err
	}
	p, err := m.pool(key, cfg, u.st)
	if err != nil {
		return nil, err
	}
	u.pool = p
	u.Transport = p.transport
	if m != nil && m.deps.Metrics != nil {
		for _, t := range u.Targets {
			u.gauges = append(u.gauges, m.deps.Metrics.TargetHealthy.WithLabelValues(name, t.Addr))
		}
	}
	u.rebuild()
	return u, nil
}

func (m *Manager) state(name string) *state {
	if m == nil {
		return newState(name, nil, slog.Default())
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.states[name]
	if !ok {
		s = newState(name, m.deps.Metrics, m.deps.Log)
		m.states[name] = s
	}
	return s
}

func (m *Manager) target(upstream, addr string, weight int, zone string) *balancer.Target {
	if m == nil {
		return &balancer.Target{Addr: addr, Weight: weight, Zone: zone}
	}
	k := upstream + "|" + addr + "|" + strconv.Itoa(weight) + "|" + zone
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.targets[k]
	if !ok {
		t = &balancer.Target{Addr: addr, Weight: weight, Zone: zone}
		m.targets[k] = t
	}
	return t
}

func (m *Manager) pool(key string, cfg *config.Upstream, st *state) (*pool, error) {
	if m != nil {
		m.mu.Lock()
		p, ok := m.pools[key]
		m.mu.Unlock()
		if ok {
			return p, nil
		}
	}
	t, err := newTransport(cfg, st)
	if err != nil {
		return nil, err
	}
	p := &pool{key: key, transport: t}
	if m != nil {
		m.mu.Lock()
		if old, ok := m.pools[key]; ok { // lost a race with another build
			p = old
		} else {
			m.pools[key] = p
		}
		m.mu.Unlock()
	}
	return p, nil
}

// Activate makes the upstreams of a newly active snapshot live: it applies
// their breaker and health settings to the shared per-upstream state, starts
// health checks and outlier detection, points health changes at them,
// and forgets (stopping their goroutines and closing idle connections) the
// pools, targets and states that the snapshot no longer uses. In-flight
// requests on forgotten pools finish normally.
func (m *Manager) Activate(ups map[string]*Upstream) {
	usedPools := map[*pool]bool{}
	usedTargets := map[*balancer.Target]bool{}
	for _, u := range ups {
		usedPools[u.pool] = true
		for _, t := range u.Targets {
			usedTargets[t] = true
		}
	}
	m.mu.Lock()
	var closing []*pool
	for k, p := range m.pools {
		if !usedPools[p] {
			delete(m.pools, k)
			closing = append(closing, p)
		}
	}
	for k, t := range m.targets {
		if !usedTargets[t] {
			delete(m.targets, k)
			if m.deps.Metrics != nil {
				up, _, _ := cutPipe(k)
				m.deps.Metrics.TargetHealthy.DeleteLabelValues(up, t.Addr)
			}
		}
	}
	var stopping []*state
	for name, s := range m.states {
		if ups[name] == nil {
			delete(m.states, name)
			stopping = append(stopping, s)
		}
	}
	m.mu.Unlock()
	for _, u := range ups {
		u.st.configure(u.cfg, u.addrs)
		u.st.activate(u)
	}
	for _, p := range closing {
		p.transport.CloseIdleConnections()
	}
	for _, s := range stopping {
		s.close()
	}
}

func cutPipe(k string) (string, string, bool) {
	for i := 0; i < len(k); i++ {
		if k[i] == '|' {
			return k[:i], k[i+1:], true
		}
	}
	return k, "", false
}

// Close stops every health checker and detector and closes idle
// connections of every pool.
func (m *Manager) Close() {
	m.mu.Lock()
	states := make([]*state, 0, len(m.states))
	for _, s := range m.states {
		states = append(states, s)
	}
	pools := make([]*pool, 0, len(m.pools))
	for _, p := range m.pools {
		pools = append(pools, p)
	}
	m.mu.Unlock()
	for _, s := range states {
		s.close()
	}
	for _, p := range pools {
		p.transport.CloseIdleConnections()
	}
}

// poolKey identifies a pool by the upstream and every setting that shapes
// its connections.
func poolKey(name string, cfg *config.Upstream) (string, error) {
	k := fmt.Sprintf("%s|%s|%d|%d|%d", name, cfg.Protocol, cfg.ConnectTimeout, cfg.Keepalive.MaxIdlePerTarget, cfg.Keepalive.IdleTimeout)
	if cfg.TLS != nil {
		ca := ""
		if cfg.TLS.CAFile != "" {
			b, err := os.ReadFile(cfg.TLS.CAFile)
			if err != nil {
				return "", fmt.Errorf("read upstream ca_file: %w", err)
			}
			ca = strconv.Itoa(len(b)) + string(b[:min(len(b), 64)]) + string(b[max(0, len(b)-64):])
		}
		k += fmt.Sprintf("|tls|%s|%v|%s", cfg.TLS.ServerName, cfg.TLS.InsecureSkipVerify, ca)
	}
	return k, nil
}

// newTransport builds an upstream's pooled transport. With st set, new
// connections and requests waiting for one count against st's breaker.
func newTransport(cfg *config.Upstream, st *state) (roundTripper, error) {
	connectTimeout := cfg.ConnectTimeout.D()
	if connectTimeout <= 0 {
		connectTimeout = 5 * time.Second
	}
	dialer := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	maxIdle := cfg.Keepalive.MaxIdlePerTarget
	if maxIdle <= 0 {
		maxIdle = 64
	}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var b *breaker.Breaker
		if st != nil {
			b = st.breaker.Load()
		}
		if b != nil {
			if !b.TryAcquirePending() {
				return nil, &OverflowError{Resource: breaker.PendingRequests}
			}
			defer b.ReleasePending()
			if !b.TryAcquireConnection() {
				return nil, &OverflowError{Resource: breaker.Connections}
			}
		}
		c, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			if b != nil {
				b.ReleaseConnection()
			}
			return nil, &DialError{Addr: addr, Err: err}
		}
		if b != nil {
			return &limitedConn{Conn: c, b: b}, nil
		}
		return c, nil
	}
	// h1: plain HTTP/1.1 upstreams use the lean client (issue 6); h2c and
	// TLS keep net/http's Transport.
	if cfg.Protocol != "h2c" && cfg.TLS == nil {
		return h1.New(h1.Config{DialContext: dial, MaxIdlePerHost: maxIdle,
			IdleTimeout: cfg.Keepalive.IdleTimeout.D(), MaxHeadBytes: 1 << 20}), nil
	}
	// end h1
	t := &http.Transport{
		Proxy:                  nil, // never take a proxy from the environment
		DialContext:            dial,
		MaxIdleConnsPerHost:    maxIdle,
		IdleConnTimeout:        cfg.Keepalive.IdleTimeout.D(),
		DisableCompression:     true, // pass encodings through untouched
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 1 << 20,
		WriteBufferSize:        16 << 10,
		ReadBufferSize:         16 << 10,
	}
	if cfg.Protocol == "h2c" {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		t.Protocols = &p
	}
	if cfg.TLS != nil {
		tc := &tls.Config{ServerName: cfg.TLS.ServerName, InsecureSkipVerify: cfg.TLS.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
		if cfg.TLS.CAFile != "" {
			pem, err := os.ReadFile(cfg.TLS.CAFile)
			if err != nil {
				return nil, fmt.Errorf("read upstream ca_file: %w", err)
			}
			roots := x509.NewCertPool()
			if !roots.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("upstream ca_file %s: no PEM certificates", cfg.TLS.CAFile)
			}
			tc.RootCAs = roots
		}
		t.TLSClientConfig = tc
		t.ForceAttemptHTTP2 = true
	}
	return t, nil
}

// Budget returns the retry budget kept under key (a route's identity and
// budget settings), creating it on first use, so budgets survive reloads.
func (m *Manager) Budget(key string, percent, minPerSecond float64) *retry.Budget {
	if m == nil {
		return retry.NewBudget(percent, minPerSecond, retry.DefaultWindow, nil)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.budgets == nil {
		m.budgets = map[string]*retry.Budget{}
	}
	b, ok := m.budgets[key]
	if !ok {
		b = retry.NewBudget(percent, minPerSecond, retry.DefaultWindow, nil)
		m.budgets[key] = b
	}
	return b
}

// Cache returns the gateway's response cache, shared by every route that
// caches and kept across reloads.
func (m *Manager) Cache() *cache.Cache {
	if m == nil {
		return cache.New(cache.Config{})
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cache == nil {
		m.cache = cache.New(cache.Config{})
	}
	return m.cache
}
