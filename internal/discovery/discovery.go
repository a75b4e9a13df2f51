// Package discovery finds the targets of an upstream while the gateway
// runs: by DNS A/AAAA records (dns), by SRV records (srv) or by instances
// registered in etcd under a lease (etcd). A Watcher runs one source in
// one goroutine and reports each new set of endpoints; the cluster turns
// them into targets of the upstream's live target set (internal/cluster),
// so targets change without a config reload.
//
// A lookup that fails, or a DNS answer with no address, keeps the last
// good set: the watcher logs the failure once when it starts failing and
// once when it recovers, and Status reports the last error. A watcher
// that has never succeeded has no endpoints.
//
//	w, _ := discovery.New(discovery.Config{Type: "dns", Name: "users.internal", Port: 8080,
//		Refresh: 10 * time.Second, Timeout: 2 * time.Second, OnChange: apply})
//	w.Start() // the first lookup has finished (or timed out) when it returns
//	defer w.Close()
package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
)

// Endpoint is one instance found by discovery.
type Endpoint struct {
	// Addr is host:port, the host an IP address for dns and srv.
	Addr string
	// Weight is relative to the other endpoints; at least 1.
	Weight int
	// Priority orders endpoint groups (srv): 0 is used first, the next
	// only while nothing of a lower priority is healthy.
	Priority int
	// Zone is the instance's locality (etcd), if known.
	Zone string
	// Metadata is what the instance registered with it (etcd).
	Metadata map[string]string
}

// MaxWeight caps an endpoint's weight, as config caps a target's.
const MaxWeight = 10000

// Config selects and parameterises a source.
type Config struct {
	// Upstream names the upstream, for log lines.
	Upstream string
	// Type is dns, srv or etcd.
	Type string
	// Name is the DNS name (dns), the SRV name (srv) or the service name
	// (etcd).
	Name string
	// Port is the port of every dns address.
	Port int
	// Refresh is the period of dns and srv lookups; with TTL the smallest
	// TTL of the answer is used instead, between MinTTL and MaxTTL.
	Refresh time.Duration
	TTL     bool
	// Resolver is the DNS server (host:port); empty means the system's.
	Resolver string
	// Timeout bounds one lookup (dns, srv) or one etcd request.
	Timeout time.Duration
	// Endpoints and Prefix locate the etcd registrations: an instance is
	// the key Prefix/Name/ID.
	Endpoints []string
	Prefix    string
	// OnChange receives each new set of endpoints, sorted by priority
	// then address, from the watcher's goroutine. It must not block for
	// long. The slice is the caller's.
	OnChange func([]Endpoint)
	// OnAttempt, when set, is told the outcome of every attempt (nil on
	// success), from the watcher's goroutine (for metrics).
	OnAttempt func(error)
	// Log receives state changes (default slog.Default()).
	Log *slog.Logger
}

// Bounds of a refresh at the records' TTL (refresh: ttl), and the wait
// before another try after a failed lookup in that mode.
const (
	MinTTL       = time.Second
	MaxTTL       = time.Hour
	TTLFailRetry = 5 * time.Second
)

// Status is what the admin API shows of a watcher.
type Status struct {
	// Source describes what is watched, e.g. "dns users.internal:8080 via 10.0.0.2:53".
	Source string `json:"source"`
	// LastRefresh is when a lookup or watch last succeeded (zero: never).
	LastRefresh time.Time `json:"last_refresh,omitzero"`
	// LastAttempt is when a lookup was last made, or the watch last heard.
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	// LastError is the error of the last attempt ("" when it succeeded).
	LastError string `json:"last_error,omitempty"`
	// Targets is the number of endpoints in use.
	Targets int `json:"targets"`
	// Refreshes and Failures count attempts.
	Refreshes uint64 `json:"refreshes"`
	Failures  uint64 `json:"failures"`
}

// Succeeded reports whether the watcher has ever had an answer.
func (s Status) Succeeded() bool { return !s.LastRefresh.IsZero() }

// source is one kind of discovery. run reports to w until ctx ends.
type source interface {
	run(ctx context.Context, w *Watcher)
	describe() string
}

// Watcher runs one source in its own goroutine, started by Start and
// stopped by Close, and keeps the last good set of endpoints.
type Watcher struct {
	cfg Config
	src source
	log *slog.Logger

	mu      sync.Mutex
	eps     []Endpoint
	status  Status
	failing bool
	first   chan struct{} // closed after the first attempt
	firstOK sync.Once
	started bool
	closed  bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// New returns a watcher for cfg; nothing runs until Start.
func New(cfg Config) (*Watcher, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = config.DefaultDiscoveryTimeout.D() // a Config built in Go without it
	}
	w := &Watcher{cfg: cfg, log: cfg.Log, first: make(chan struct{})}
	var err error
	switch cfg.Type {
	case "dns", "srv":
		w.src, err = newDNS(cfg)
	case "etcd":
		w.src, err = newEtcd(cfg)
	default:
		err = fmt.Errorf("unknown discovery type %q", cfg.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("new discovery: %w", err)
	}
	w.status.Source = w.src.describe()
	return w, nil
}

// Start starts the watcher's goroutine once, and returns when its first
// attempt has finished, or after the timeout of one attempt: a config
// that is about to serve gets its targets before it does.
func (w *Watcher) Start() {
	w.mu.Lock()
	if w.started || w.closed {
		w.mu.Unlock()
		return
	}
	w.started = true
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan struct{})
	w.mu.Unlock()
	go w.loop(ctx)
	t := time.NewTimer(w.cfg.Timeout + 250*time.Millisecond)
	defer t.Stop()
	select {
	case <-w.first:
	case <-t.C:
	}
}

// loop is the root of the watcher's goroutine: it runs the source, and
// runs it again after a pause if it panicked.
func (w *Watcher) loop(ctx context.Context) {
	defer close(w.done)
	for ctx.Err() == nil {
		if !w.runOnce(ctx) {
			return
		}
		if !sleep(ctx, time.Second) {
			return
		}
	}
}

// runOnce runs the source until ctx ends (false) or it panics (true).
func (w *Watcher) runOnce(ctx context.Context) (panicked bool) {
	defer func() {
		if r := recover(); r != nil {
			w.log.Error("discovery panicked; restarting it", "upstream", w.cfg.Upstream, "source", w.status.Source, "panic", r)
			w.fail(fmt.Errorf("discovery panicked: %v", r))
			panicked = true
		}
	}()
	w.src.run(ctx, w)
	return false
}

// Close stops the goroutine and waits for it. The endpoints stay readable.
func (w *Watcher) Close() {
	w.mu.Lock()
	w.closed = true
	cancel, done := w.cancel, w.done
	w.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// Endpoints returns the last good set (nil before the first success).
func (w *Watcher) Endpoints() []Endpoint {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.eps)
}

// Status returns the watcher's state.
func (w *Watcher) Status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.status
}

// Describe names what is watched.
func (w *Watcher) Describe() string { return w.status.Source }

// errEmpty is a DNS answer without addresses: the last set is kept.
var errEmpty = errors.New("no address in the answer")

// update records a successful attempt that found eps. With keepOnEmpty
// (dns, srv) an empty set counts as a failure and keeps the last one; an
// etcd prefix with no registration is a real, empty set.
func (w *Watcher) update(eps []Endpoint, keepOnEmpty bool) {
	if len(eps) == 0 && keepOnEmpty {
		w.fail(errEmpty)
		return
	}
	eps = normalize(eps)
	now := time.Now()
	w.mu.Lock()
	recovered := w.failing
	w.failing = false
	w.status.LastRefresh, w.status.LastAttempt, w.status.LastError = now, now, ""
	w.status.Refreshes++
	changed := !slices.EqualFunc(w.eps, eps, endpointEqual) || w.eps == nil
	var added, removed int
	if changed {
		added, removed = diff(w.eps, eps)
		w.eps = eps
		w.status.Targets = len(eps)
	}
	src := w.status.Source
	w.mu.Unlock()
	if w.cfg.OnAttempt != nil {
		w.cfg.OnAttempt(nil)
	}
	if recovered {
		w.log.Info("discovery recovered", "upstream", w.cfg.Upstream, "source", src, "targets", len(eps))
	}
	if changed {
		w.log.Info("discovered targets changed", "upstream", w.cfg.Upstream, "source", src,
			"targets", len(eps), "added", added, "removed", removed)
		if w.cfg.OnChange != nil {
			w.cfg.OnChange(slices.Clone(eps))
		}
	}
	w.firstOK.Do(func() { close(w.first) })
}

// alive records that the source answered without new endpoints (an etcd
// health probe while watching): a failure it was in ends.
func (w *Watcher) alive() {
	now := time.Now()
	w.mu.Lock()
	recovered := w.failing
	w.failing = false
	w.status.LastRefresh, w.status.LastAttempt, w.status.LastError = now, now, ""
	w.status.Refreshes++
	n, src := len(w.eps), w.status.Source
	w.mu.Unlock()
	if w.cfg.OnAttempt != nil {
		w.cfg.OnAttempt(nil)
	}
	if recovered {
		w.log.Info("discovery recovered", "upstream", w.cfg.Upstream, "source", src, "targets", n)
	}
}

// fail records a failed attempt; the last good set stays. It logs when
// the watcher starts failing, not on every attempt.
func (w *Watcher) fail(err error) {
	w.mu.Lock()
	w.status.LastAttempt, w.status.LastError = time.Now(), err.Error()
	w.status.Failures++
	first := !w.failing
	w.failing = true
	kept := len(w.eps)
	src := w.status.Source
	w.mu.Unlock()
	if w.cfg.OnAttempt != nil {
		w.cfg.OnAttempt(err)
	}
	if first {
		w.log.Warn("discovery failed; keeping the last targets", "upstream", w.cfg.Upstream, "source", src,
			"error", err, "targets_kept", kept)
	}
	w.firstOK.Do(func() { close(w.first) })
}

// normalize sorts eps by priority then address, drops repeated addresses
// (the first kept) and bounds weights to 1..MaxWeight.
func normalize(eps []Endpoint) []Endpoint {
	out := make([]Endpoint, 0, len(eps))
	seen := make(map[string]bool, len(eps))
	slices.SortStableFunc(eps, func(a, b Endpoint) int {
		if a.Priority != b.Priority {
			return a.Priority - b.Priority
		}
		if a.Addr < b.Addr {
			return -1
		}
		if a.Addr > b.Addr {
			return 1
		}
		return 0
	})
	for _, e := range eps {
		if seen[e.Addr] {
			continue
		}
		seen[e.Addr] = true
		e.Weight = min(max(e.Weight, 1), MaxWeight)
		out = append(out, e)
	}
	return out
}

func endpointEqual(a, b Endpoint) bool {
	return a.Addr == b.Addr && a.Weight == b.Weight && a.Priority == b.Priority && a.Zone == b.Zone &&
		maps.Equal(a.Metadata, b.Metadata)
}

// diff counts the addresses added to and removed from old in next.
func diff(old, next []Endpoint) (added, removed int) {
	in := make(map[string]bool, len(old))
	for _, e := range old {
		in[e.Addr] = true
	}
	for _, e := range next {
		if !in[e.Addr] {
			added++
		}
		delete(in, e.Addr)
	}
	return added, len(in)
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// hostPort joins an IP and a port.
func hostPort(ip net.IP, port int) string { return net.JoinHostPort(ip.String(), strconv.Itoa(port)) }
