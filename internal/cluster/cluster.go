// Package cluster is the runtime side of upstreams: their targets, balancer,
// connection pools and (later) health, breakers and outlier state. State that
// must survive config reloads — pooled connections and per-target counters —
// is owned by a Manager and shared by every snapshot that uses it, keyed by
// identity, so a reload never drops pooled connections or resets counters of
// unchanged upstreams.
package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-gw/rampart/internal/cluster/balancer"
	"github.com/rampart-gw/rampart/internal/config"
)

// Upstream is one compiled upstream: its targets, how to pick one, and the
// pooled transport that reaches them. It is immutable except for the
// balancer, which is swapped when the set of healthy targets changes.
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

	balCfg balancer.Config
	bal    atomic.Pointer[balancerBox]
	pool   *pool
}

type balancerBox struct{ b balancer.Balancer }

// Pick chooses a target for r, or returns nil when there is none.
func (u *Upstream) Pick(r *http.Request) *balancer.Target {
	return u.bal.Load().b.Pick(r)
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
	transport *http.Transport
	rt        http.RoundTripper
}

// Manager owns state that outlives config snapshots. The zero value is not
// usable; call NewManager.
type Manager struct {
	mu      sync.Mutex
	pools   map[string]*pool
	targets map[string]*balancer.Target
}

// NewManager returns an empty Manager.
func NewManager() *Manager {
	return &Manager{pools: map[string]*pool{}, targets: map[string]*balancer.Target{}}
}

// Build compiles the upstream name from cfg. With a non-nil Manager it reuses
// the pool and targets of an earlier build with the same identity. Build
// performs no network I/O (it may read CA files named in cfg.TLS).
func (m *Manager) Build(name string, cfg *config.Upstream) (*Upstream, error) {
	u := &Upstream{Name: name, Scheme: "http", balCfg: balancer.Config{Kind: cfg.Balancer, HashKey: cfg.HashKey}}
	if cfg.TLS != nil {
		u.Scheme = "https"
	}
	key, err := poolKey(name, cfg)
	if err != nil {
		return nil, err
	}
	for _, t := range cfg.Targets {
		w := t.Weight
		if w <= 0 {
			w = 1
		}
		u.Targets = append(u.Targets, m.target(name, t.Address, w, t.Zone))
	}
	b, err := balancer.New(u.balCfg, u.Targets)
	if err != nil {
		return nil, err
	}
	u.bal.Store(&balancerBox{b})
	p, err := m.pool(key, cfg)
	if err != nil {
		return nil, err
	}
	u.pool = p
	u.Transport = p.rt
	return u, nil
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

func (m *Manager) pool(key string, cfg *config.Upstream) (*pool, error) {
	if m != nil {
		m.mu.Lock()
		p, ok := m.pools[key]
		m.mu.Unlock()
		if ok {
			return p, nil
		}
	}
	t, err := newTransport(cfg)
	if err != nil {
		return nil, err
	}
	p := &pool{key: key, transport: t, rt: t}
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

// Retain keeps the pools and targets used by ups and forgets the rest,
// closing idle connections of forgotten pools. Call it after a new snapshot
// is active. In-flight requests on forgotten pools finish normally.
func (m *Manager) Retain(ups map[string]*Upstream) {
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
		}
	}
	m.mu.Unlock()
	for _, p := range closing {
		p.transport.CloseIdleConnections()
	}
}

// Close closes idle connections of every pool.
func (m *Manager) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.pools {
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

func newTransport(cfg *config.Upstream) (*http.Transport, error) {
	connectTimeout := cfg.ConnectTimeout.D()
	if connectTimeout <= 0 {
		connectTimeout = 5 * time.Second
	}
	dialer := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	maxIdle := cfg.Keepalive.MaxIdlePerTarget
	if maxIdle <= 0 {
		maxIdle = 64
	}
	t := &http.Transport{
		Proxy: nil, // never take a proxy from the environment
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, &DialError{Addr: addr, Err: err}
			}
			return c, nil
		},
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
