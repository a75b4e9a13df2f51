// Package cluster is the runtime side of upstreams: their targets, balancer,
// connection pools, circuit breaker, active health checks and outlier
// detection. State that must survive config reloads — pooled connections,
// per-target counters, health verdicts, ejections, breaker counters — lives
// in the registry (internal/registry), shared by every snapshot that uses
// it, keyed by identity, so a reload never drops pooled connections or
// resets the health of unchanged upstreams.
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
	"github.com/rampart-gw/rampart/internal/registry"
	"github.com/rampart-gw/rampart/internal/telemetry"
)

// DefaultPanicThreshold is the share of healthy targets (percent) under
// which an upstream balances over all its targets: config's default.
const DefaultPanicThreshold = config.DefaultPanicThreshold

// Upstream is one compiled upstream of one snapshot: its targets, how to
// pick one, and the pooled transport that reaches them. Build makes it
// without side effects; the snapshot's Claims bind its targets, pool and
// per-upstream state (health, outlier, breaker) from the registry, where
// every snapshot that uses the same upstream shares them. Its balancer
// reads that live state: it is rebuilt on the first pick after a health or
// ejection change, so the active snapshot and a staged candidate see the
// same changes at once.
type Upstream struct {
	Name string
	// Targets are all configured targets, healthy or not. They are bound at
	// acquisition (shared with every snapshot that has the same target).
	// With discovery there are none: Live returns the discovered ones.
	Targets []*balancer.Target
	// Transport sends requests to targets over pooled keep-alive
	// connections dedicated to this upstream (a bulkhead: one slow upstream
	// cannot exhaust the connections of another). Bound at acquisition.
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
	// disc is the upstream's discovery (nil for static targets): its live
	// target set replaces Targets.
	disc  *discEntry
	cfg   *config.Upstream
	addrs []string
	calls callState // Do's per-upstream state (call.go)
	// tls is the client TLS config of an upstream with tls (DialTCP).
	tls *tls.Config
}

// lbSet is a balancer over the targets eligible for traffic at one
// generation of the upstream's health state.
type lbSet struct {
	b balancer.Balancer
	// gen is the state generation the set was built at.
	gen uint64
	// level is the targets of the priority group in use (all targets
	// without priorities), for PickOther.
	level []*balancer.Target
	// healthy is the number of healthy, non-ejected targets of level.
	healthy int
	// panic is set when too few targets are healthy and the balancer
	// spans all of them.
	panic bool
}

// set returns the balancer for the current health state, rebuilding it
// when health or ejections changed since it was built.
func (u *Upstream) set() *lbSet {
	s := u.bal.Load()
	// The generation is read before the verdicts: a change during the
	// rebuild moves it again, and the next pick rebuilds once more. With
	// discovery the target set's generation counts too (both only grow,
	// so their sum moves whenever either does).
	g := u.st.gen.Load()
	if u.disc != nil {
		g += u.disc.gen.Load()
	}
	if s == nil || s.gen != g {
		s = u.rebuild(g, s)
	}
	return s
}

// Live returns the upstream's targets now: the configured ones, or those
// discovery found last.
func (u *Upstream) Live() []*balancer.Target {
	if u.disc != nil {
		return u.disc.targets()
	}
	return u.Targets
}

// Pick chooses a target for r, or returns nil when there is none.
func (u *Upstream) Pick(r *http.Request) *balancer.Target {
	return u.set().b.Pick(r)
}

// PickOther chooses a target for r that is not in tried, if there is one;
// otherwise it returns any target. Retries use it to move to another target.
// It never asks the balancer, whose sequence (round robin) belongs to first
// attempts (Envoy's previous_hosts): it starts at a random eligible target.
func (u *Upstream) PickOther(r *http.Request, tried []*balancer.Target) *balancer.Target {
	set := u.set()
	if n := len(set.level); n > 0 {
		for i, off := 0, rand.IntN(n); i < n; i++ {
			if c := set.level[(i+off)%n]; !contains(tried, c) && (set.panic || u.st.available(c.Addr)) {
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
func (u *Upstream) NoHealthy() bool { return u.set().healthy == 0 }

// Panic reports whether the upstream is in panic mode (balancing over all
// targets because too few are healthy).
func (u *Upstream) Panic() bool { return u.set().panic }

// Breaker is the upstream's circuit breaker.
func (u *Upstream) Breaker() *breaker.Breaker { return u.st.breaker.Load() }

// Trip is the upstream's failure-tripped breaker, or nil without
// circuit_breaker.trip. It is shared by every snapshot that has the
// upstream and survives reloads.
func (u *Upstream) Trip() *breaker.Trip { return u.st.trip.Load() }

// CircuitOpen reports whether the failure-tripped circuit is open now
// (not half-open, and not past its open period, which the next call's
// admission turns into half-open).
func (u *Upstream) CircuitOpen() bool {
	t := u.Trip()
	if t == nil {
		return false
	}
	st, until := t.State()
	return st == breaker.StateOpen && time.Now().Before(until)
}

// tripFailures are the statuses that count as failures of Trip.
func (u *Upstream) tripFailures() *breaker.StatusSet { return u.st.tripFail.Load() }

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
	// HealthError is the error of the last active probe, if it failed.
	HealthError string
}

// State returns the health of addr.
func (u *Upstream) State(addr string) TargetState {
	ej, until := u.st.ejected(addr)
	ts := TargetState{Healthy: u.st.healthy(addr), Ejected: ej, EjectedUntil: until}
	if c := u.st.health.Load(); c != nil {
		ts.HealthError = c.LastError(addr)
	}
	return ts
}

// rebuild recomputes the balancer over the eligible targets at generation
// gen; old is the set it replaces (nil the first time).
func (u *Upstream) rebuild(gen uint64, old *lbSet) *lbSet {
	level, avail := u.level(u.Live())
	set := &lbSet{gen: gen, level: level, healthy: len(avail)}
	if n := len(level); n > 0 && len(avail)*100 < u.panicT*n {
		// Too few healthy targets: they would be overwhelmed, and the
		// health checks themselves may be what is broken. Spread over all.
		set.panic = true
		avail = level
	}
	if u.disc != nil {
		u.forgetSeries()
	}
	b, err := balancer.New(u.balCfg, avail)
	if err != nil { // settings were checked in Build
		if old != nil {
			return old
		}
		b, _ = balancer.New(balancer.Config{}, avail)
	}
	set.b = b
	u.bal.Store(set)
	return set
}

// level picks the priority group to balance over: the lowest priority
// with an available (healthy, not ejected) target, else the lowest one.
// It returns the group's targets and the available ones among them.
// targets are sorted by priority (discovery sorts them; static targets
// are all priority 0).
func (u *Upstream) level(targets []*balancer.Target) (level, avail []*balancer.Target) {
	var first []*balancer.Target
	for i := 0; i < len(targets); {
		j := i + 1
		for j < len(targets) && targets[j].Priority == targets[i].Priority {
			j++
		}
		group := targets[i:j:j]
		var ok []*balancer.Target
		for _, t := range group {
			if u.st.available(t.Addr) {
				ok = append(ok, t)
			}
		}
		if len(ok) > 0 {
			return group, ok
		}
		if first == nil {
			first = group
		}
		i = j
	}
	return first, nil
}

// forgetSeries drops Do's metric series of targets discovery no longer
// has, so that address churn does not grow them without bound.
func (u *Upstream) forgetSeries() {
	live := u.Live()
	in := make(map[*balancer.Target]bool, len(live))
	for _, t := range live {
		in[t] = true
	}
	u.calls.series.Range(func(k, _ any) bool {
		if !in[k.(*balancer.Target)] {
			u.calls.series.Delete(k)
		}
		return true
	})
}

// noTarget is the error of a call that found no target: with discovery
// that never succeeded or found nothing, the message says so.
func (u *Upstream) noTarget() *Error {
	e := errNoHealthy(u.Name)
	if u.disc != nil {
		if msg := u.disc.emptyReason(); msg != "" {
			e.Msg = msg
		}
	}
	return e
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

	// discs are the discoveries whose targets the pool connects to, with
	// how many snapshots attached each (pool.attachTo): an address one of
	// them still has is not retired when another drops it (a reload
	// that changes the discovery runs both for a moment).
	mu    sync.Mutex
	discs map[*discEntry]int
}

// roundTripper is what a pool sends with: net/http's Transport or, for
// plain HTTP/1.1 upstreams, the h1 client.
type roundTripper interface {
	http.RoundTripper
	CloseIdleConnections()
}

// BuildOptions are gateway-wide settings and services that shape an
// upstream.
type BuildOptions struct {
	// Zone is the gateway's own zone, for zone-aware balancing.
	Zone    string
	Metrics *telemetry.Metrics
	Log     *slog.Logger
}

// Registry keys of the state an upstream claims. The key is the state's
// identity: what makes two snapshots share it.
func stateKey(name string) string { return "upstream|" + name }

func targetKey(name, addr string, weight int, zone string) string {
	return "target|" + name + "|" + addr + "|" + strconv.Itoa(weight) + "|" + zone
}

// Build compiles the upstream name from cfg and records in claims the
// shared state it needs: a target per address (kept while the address,
// weight and zone stay), the upstream's health, outlier and breaker state
// (per upstream name) and its connection pool (per connection settings).
// Build has no side effects and starts nothing (it may read CA files named
// in cfg.TLS); claims.Acquire binds the state, and Activate applies this
// upstream's settings to it when its snapshot becomes the active one.
func Build(name string, cfg *config.Upstream, opts BuildOptions, claims *registry.Claims) (*Upstream, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	u := &Upstream{Name: name, Scheme: "http", panicT: DefaultPanicThreshold,
		balCfg: balancer.Config{Kind: cfg.Balancer, HashKey: cfg.HashKey, BoundedLoad: cfg.BoundedLoad, LocalZone: opts.Zone}}
	if cfg.TLS != nil {
		u.Scheme = "https"
	}
	if hc := cfg.HealthCheck; hc != nil && hc.PanicThreshold != nil {
		u.panicT = *hc.PanicThreshold
	}
	// config.Validate reports these at the field; this is a backstop
	// for a config built in Go that skipped it.
	if u.panicT < 0 || u.panicT > 100 {
		return nil, fmt.Errorf("health_check.panic_threshold must be between 0 and 100")
	}
	if _, err := balancer.New(u.balCfg, nil); err != nil {
		return nil, err
	}
	key, err := poolKey(name, cfg)
	if err != nil {
		return nil, err
	}
	if u.tls, err = tlsConfig(cfg); err != nil {
		return nil, err
	}
	addrs := make([]string, 0, len(cfg.Targets))
	u.Targets = make([]*balancer.Target, len(cfg.Targets))
	for i, t := range cfg.Targets {
		w := max(t.Weight, 1)
		addrs = append(addrs, t.Address)
		// Unbound until acquisition; a snapshot that is only validated
		// keeps these.
		u.Targets[i] = &balancer.Target{Addr: t.Address, Weight: w, Zone: t.Zone}
		if claims == nil {
			continue
		}
		addr, zone := t.Address, t.Zone
		registry.Claim(claims, targetKey(name, addr, w, zone),
			func() *targetEntry {
				return &targetEntry{t: &balancer.Target{Addr: addr, Weight: w, Zone: zone}, m: opts.Metrics, up: name}
			},
			func(e *targetEntry) { u.Targets[i] = e.t })
	}
	u.cfg, u.addrs = cfg, addrs
	var disc *discEntry
	if d := cfg.Discovery; d != nil && d.Type != "" && d.Type != "static" {
		// Made here to check the settings; the registry keeps it only if
		// no snapshot holds this discovery yet, and starts it at
		// acquisition.
		if disc, err = newDiscEntry(name, d, opts); err != nil {
			return nil, err
		}
		if claims == nil {
			return nil, fmt.Errorf("discovery needs a snapshot's claims")
		}
	}
	if claims == nil {
		// A throwaway upstream (tests): state of its own, live at once.
		u.st = newState(name, opts.Metrics, opts.Log)
		u.st.configure(cfg, addrs, nil)
		t, err := newTransport(cfg, u.st)
		if err != nil {
			return nil, err
		}
		u.pool = &pool{transport: t}
		u.Transport = t
		return u, nil
	}
	if disc != nil {
		// Bound before the state, which follows its addresses.
		registry.Claim(claims, discoveryKey(name, cfg.Discovery),
			func() *discEntry { return disc },
			func(e *discEntry) { u.disc = e })
	}
	// The state is bound before the pool: the pool's dialer counts
	// connections against the state's breaker.
	registry.Claim(claims, stateKey(name),
		func() *state {
			// First user: it sets the state up. Later users share it as
			// it is until their snapshot becomes active (Activate).
			s := newState(name, opts.Metrics, opts.Log)
			s.configure(cfg, addrs, u.disc)
			return s
		},
		func(s *state) { u.st = s })
	registry.Claim(claims, "pool|"+key,
		func() *pool {
			t, err := newTransport(cfg, u.st)
			if err != nil {
				// Checked in Build; a CA file that broke since is
				// answered per request.
				t = brokenTransport{err}
			}
			return &pool{key: key, transport: t}
		},
		func(p *pool) { u.pool, u.Transport = p, p.transport })
	if disc != nil {
		// The pool retires the connections of departed targets while
		// this snapshot holds it; the first holder of the discovery
		// starts it and waits for its first answer, so the snapshot
		// serves with targets.
		claims.AfterAcquire(func() {
			u.pool.attachTo(u.disc)
			u.disc.run()
		})
		claims.AfterRelease(func() { u.pool.detachFrom(u.disc) })
	}
	// Health checks and outlier sweeps run while any snapshot holds the
	// state (start is a no-op when they already run).
	claims.AfterAcquire(func() { u.st.start() })
	return u, nil
}

// Activate applies this upstream's breaker, health and outlier settings to
// the shared per-upstream state and starts what they need. The app calls it
// for each upstream of the snapshot that becomes the active one (applied or
// promoted), after acquiring the snapshot's claims. A staged candidate does
// not call it: an upstream it shares with the active config keeps the
// active config's settings while both serve.
func (u *Upstream) Activate() {
	u.st.configure(u.cfg, u.addrs, u.disc)
	u.st.start()
}

// targetEntry is a shared target in the registry.
type targetEntry struct {
	t  *balancer.Target
	m  *telemetry.Metrics
	up string
}

// Close forgets the target's health gauge.
func (e *targetEntry) Close() {
	if e.m != nil {
		e.m.TargetHealthy.DeleteLabelValues(e.up, e.t.Addr)
	}
}

// Close closes the pool's idle connections; requests in flight finish.
func (p *pool) Close() { p.transport.CloseIdleConnections() }

// brokenTransport answers every request with the error that kept a pool
// from being built.
type brokenTransport struct{ err error }

func (b brokenTransport) RoundTrip(*http.Request) (*http.Response, error) { return nil, b.err }
func (brokenTransport) CloseIdleConnections()                             {}

// poolKey identifies a pool by the upstream and every setting that shapes
// its connections.
func poolKey(name string, cfg *config.Upstream) (string, error) {
	k := fmt.Sprintf("%s|%s|%d|%d|%d|%d|%d", name, cfg.Protocol, cfg.ConnectTimeout, cfg.Keepalive.MaxIdlePerTarget, cfg.Keepalive.IdleTimeout,
		cfg.Keepalive.PingInterval, cfg.Keepalive.PingTimeout)
	if cfg.TLS != nil {
		ca := ""
		if cfg.TLS.CAFile != "" {
			b, err := os.ReadFile(cfg.TLS.CAFile)
			if err != nil {
				return "", fmt.Errorf("read upstream ca_file: %w", err)
			}
			ca = strconv.Itoa(len(b)) + string(b[:min(len(b), 64)]) + string(b[max(0, len(b)-64):])
		}
		k += fmt.Sprintf("|tls|%s|%v|%s|%s|%s", cfg.TLS.ServerName, cfg.TLS.InsecureSkipVerify, ca, cfg.TLS.CertFile, cfg.TLS.KeyFile)
	}
	return k, nil
}

// newTransport builds an upstream's pooled transport. With st set, new
// connections and requests waiting for one count against st's breaker.
func newTransport(cfg *config.Upstream, st *state) (roundTripper, error) {
	// config applies the defaults; a zero value (a config built in Go
	// without them, or written as 0) takes config's default, as documented
	// on the fields.
	connectTimeout := cfg.ConnectTimeout.D()
	if connectTimeout <= 0 {
		connectTimeout = config.DefaultConnectTimeout.D()
	}
	dialer := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	maxIdle := cfg.Keepalive.MaxIdlePerTarget
	if maxIdle <= 0 {
		maxIdle = config.DefaultMaxIdlePerTarget
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
	// h1: plain HTTP/1.1 upstreams use the lean client (issue 6); h2c, h2
	// and TLS keep net/http's Transport.
	if cfg.Protocol != "h2c" && cfg.Protocol != "h2" && cfg.TLS == nil {
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
	// HTTP/2 connections (h2c, h2, or h2 by ALPN over TLS) multiplex
	// requests as streams up to the target's SETTINGS_MAX_CONCURRENT_STREAMS;
	// a request over that opens another connection rather than wait
	// (StrictMaxConcurrentRequests false). A pooled connection that received
	// nothing for ping_interval is sent a PING, and closed when no answer
	// comes within ping_timeout. On a GOAWAY the connection takes no new
	// requests, those in flight finish, and a request the target did not
	// process (a stream above the GOAWAY's last stream ID, or one refused)
	// is sent again on a new connection when its body can be replayed.
	ping, pingTimeout := cfg.Keepalive.PingInterval.D(), cfg.Keepalive.PingTimeout.D()
	if ping <= 0 {
		ping = config.DefaultPingInterval.D()
	}
	if pingTimeout <= 0 {
		pingTimeout = config.DefaultPingTimeout.D()
	}
	t.HTTP2 = &http.HTTP2Config{SendPingTimeout: ping, PingTimeout: pingTimeout}
	switch cfg.Protocol {
	case "h2c":
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		t.Protocols = &p
	case "h2":
		// HTTP/2 only: ALPN offers h2 alone, and a target that does not
		// take it fails the connect.
		var p http.Protocols
		p.SetHTTP2(true)
		t.Protocols = &p
	}
	if cfg.TLS != nil {
		tc, err := tlsConfig(cfg)
		if err != nil {
			return nil, err
		}
		t.TLSClientConfig = tc
		t.ForceAttemptHTTP2 = true
	}
	return t, nil
}

// ClaimBudget records that a route needs the retry budget kept under key
// (the route's identity and budget settings), so that budgets survive
// reloads and are forgotten with the last snapshot that uses them. set
// receives it on acquisition.
func ClaimBudget(claims *registry.Claims, key string, percent, minPerSecond float64, set func(*retry.Budget)) {
	mk := func() *retry.Budget { return retry.NewBudget(percent, minPerSecond, retry.DefaultWindow, nil) }
	if claims == nil {
		set(mk())
		return
	}
	registry.Claim(claims, "budget|"+key, mk, set)
}

// ClaimCache records that a route needs the gateway's response cache,
// shared by every route that caches and kept while any snapshot caches.
func ClaimCache(claims *registry.Claims, set func(*cache.Cache)) {
	mk := func() *cache.Cache { return cache.New(cache.Config{}) }
	if claims == nil {
		set(mk())
		return
	}
	registry.Claim(claims, "cache", mk, set)
}

// tlsConfig is the client TLS config of an upstream with tls set (nil
// without): SNI, verification against ca_file or the system roots.
func tlsConfig(cfg *config.Upstream) (*tls.Config, error) {
	if cfg.TLS == nil {
		return nil, nil
	}
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
	if cfg.TLS.CertFile != "" {
		cc, err := loadClientCert(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			return nil, err
		}
		tc.GetClientCertificate = cc.get
	}
	return tc, nil
}

// PanicThreshold is the share of healthy targets (percent) under which the
// upstream balances over all its targets.
func (u *Upstream) PanicThreshold() int { return u.panicT }
