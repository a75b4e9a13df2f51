package cluster

import (
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/rampart-gw/rampart/internal/cluster/balancer"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/discovery"
	"github.com/rampart-gw/rampart/internal/telemetry"
)

// discEntry is the discovery of one upstream, shared through the registry
// under "discovery|NAME|SETTINGS" by every snapshot with the same
// settings. It owns the watcher's goroutine, started when the first
// snapshot holding it is acquired and stopped when the last one is
// released, and the live target set the watcher's answers make: a
// target that stays keeps its *balancer.Target (in-flight count, latency
// estimate), and health and outlier state follow addresses in the
// upstream's state. Every change moves gen, so each snapshot's balancer
// rebuilds on its next pick, without a config reload.
type discEntry struct {
	up      string
	w       *discovery.Watcher
	metrics *telemetry.Metrics
	log     *slog.Logger

	gen   atomic.Uint64
	live  atomic.Pointer[liveSet]
	start sync.Once

	mu sync.Mutex
	// byKey holds the targets in use by address|weight|zone|priority: a
	// changed weight makes a new target, as a reload does.
	byKey map[string]*balancer.Target
	// followers learn of every change: the pools that connect to the
	// targets (idle connections to a departed target close) and the
	// upstream state whose health checks and outlier detection follow
	// the addresses. Counted: several snapshots attach one pool.
	followers map[follower]int
}

// liveSet is one answer of discovery as targets.
type liveSet struct {
	targets []*balancer.Target
	addrs   []string
}

// follower is told the addresses of each new set, and which left and
// which came.
type follower interface {
	follow(from *discEntry, addrs, added, removed []string)
}

// discoveryKey identifies a discovery by everything that shapes it.
func discoveryKey(name string, d *config.Discovery) string {
	return "discovery|" + name + "|" + strings.Join([]string{d.Type, d.Name, strconv.Itoa(d.Port), d.Refresh.String(),
		d.Resolver, d.Timeout.String(), strings.Join(d.Endpoints, ","), d.Prefix}, "|")
}

// newDiscEntry makes the shared discovery of upstream name; nothing runs
// until start.
func newDiscEntry(name string, d *config.Discovery, opts BuildOptions) (*discEntry, error) {
	e := &discEntry{up: name, metrics: opts.Metrics, log: opts.Log, byKey: map[string]*balancer.Target{},
		followers: map[follower]int{}}
	e.live.Store(&liveSet{})
	w, err := discovery.New(discovery.Config{Upstream: name, Type: d.Type, Name: d.Name, Port: d.Port,
		Refresh: d.Refresh.Every.D(), TTL: d.Refresh.TTL, Resolver: d.Resolver, Timeout: d.Timeout.D(),
		Endpoints: d.Endpoints, Prefix: d.Prefix, Log: opts.Log, OnChange: e.apply, OnAttempt: e.counted(d.Type)})
	if err != nil {
		return nil, err
	}
	e.w = w
	return e, nil
}

// counted returns the watcher's OnAttempt: it counts
// rampart_discovery_lookups_total.
func (e *discEntry) counted(typ string) func(error) {
	if e.metrics == nil {
		return nil
	}
	ok := e.metrics.DiscoveryLookups.WithLabelValues(e.up, typ, "ok")
	bad := e.metrics.DiscoveryLookups.WithLabelValues(e.up, typ, "error")
	return func(err error) {
		if err != nil {
			bad.Inc()
			return
		}
		ok.Inc()
	}
}

// run starts the watcher once; it returns after the first lookup, so a
// snapshot about to serve has its targets.
func (e *discEntry) run() { e.start.Do(e.w.Start) }

// Close stops the watcher (the registry calls it when the last snapshot
// holding the entry is retired). The upstream's discovery series stay:
// a new entry of the same upstream (changed settings) may already own
// them; the upstream's state forgets them (forgetDiscovery).
func (e *discEntry) Close() { e.w.Close() }

// forgetDiscovery drops upstream name's discovery series (it is gone, or
// no longer uses discovery).
func forgetDiscovery(m *telemetry.Metrics, name string) {
	if m == nil {
		return
	}
	m.DiscoveryTargets.DeleteLabelValues(name)
	m.DiscoveryLookups.DeletePartialMatch(map[string]string{"upstream": name})
}

// targets returns the live targets.
func (e *discEntry) targets() []*balancer.Target { return e.live.Load().targets }

// apply turns a new set of endpoints into the live target set (the
// watcher's goroutine calls it, one call at a time).
func (e *discEntry) apply(eps []discovery.Endpoint) {
	e.mu.Lock()
	next := make(map[string]*balancer.Target, len(eps))
	set := &liveSet{targets: make([]*balancer.Target, 0, len(eps)), addrs: make([]string, 0, len(eps))}
	for _, ep := range eps {
		k := ep.Addr + "|" + strconv.Itoa(ep.Weight) + "|" + ep.Zone + "|" + strconv.Itoa(ep.Priority)
		t := e.byKey[k]
		if t == nil {
			t = &balancer.Target{Addr: ep.Addr, Weight: ep.Weight, Zone: ep.Zone, Priority: ep.Priority}
		}
		next[k] = t
		set.targets = append(set.targets, t)
		set.addrs = append(set.addrs, ep.Addr)
	}
	old := e.live.Load().addrs
	e.byKey = next
	e.live.Store(set)
	e.gen.Add(1)
	fs := make([]follower, 0, len(e.followers))
	for f := range e.followers {
		fs = append(fs, f)
	}
	e.mu.Unlock()

	added, removed := addrDiff(old, set.addrs)
	for _, f := range fs {
		f.follow(e, set.addrs, added, removed)
	}
	if e.metrics != nil {
		e.metrics.DiscoveryTargets.WithLabelValues(e.up).Set(float64(len(set.targets)))
		for _, a := range removed {
			// A departed target's series go with it, so that address
			// churn does not grow the metrics without bound.
			e.metrics.UpstreamRequests.DeletePartialMatch(map[string]string{"upstream": e.up, "target": a})
		}
	}
}

// attach makes f follow the entry and returns the addresses in use now.
func (e *discEntry) attach(f follower) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.followers[f]++
	return e.live.Load().addrs
}

// detach undoes one attach.
func (e *discEntry) detach(f follower) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.followers[f]--; e.followers[f] <= 0 {
		delete(e.followers, f)
	}
}

// status is the discovery's state for the admin API.
func (e *discEntry) status() discovery.Status { return e.w.Status() }

// emptyReason says why the upstream has no target, when discovery is the
// reason ("" otherwise).
func (e *discEntry) emptyReason() string {
	if len(e.targets()) > 0 {
		return ""
	}
	st := e.w.Status()
	if !st.Succeeded() {
		msg := "upstream " + e.up + " has no target: discovery (" + st.Source + ") has not succeeded yet"
		if st.LastError != "" {
			msg += ": " + st.LastError
		}
		return msg
	}
	return "upstream " + e.up + " has no target: discovery (" + st.Source + ") found no instance"
}

// addrDiff returns the addresses of next not in old, and of old not in
// next.
func addrDiff(old, next []string) (added, removed []string) {
	in := make(map[string]bool, len(old))
	for _, a := range old {
		in[a] = true
	}
	for _, a := range next {
		if !in[a] {
			added = append(added, a)
		}
		delete(in, a)
	}
	for _, a := range old {
		if in[a] {
			removed = append(removed, a)
		}
	}
	return added, removed
}

// attachTo makes the pool follow e: its departed targets' connections
// are retired, and the addresses it has now are pooled again if an
// earlier discovery retired them.
func (p *pool) attachTo(e *discEntry) {
	p.mu.Lock()
	if p.discs == nil {
		p.discs = map[*discEntry]int{}
	}
	p.discs[e]++
	p.mu.Unlock()
	addrs := e.attach(p)
	p.follow(e, addrs, addrs, nil)
}

// detachFrom undoes one attachTo.
func (p *pool) detachFrom(e *discEntry) {
	e.detach(p)
	p.mu.Lock()
	if p.discs[e]--; p.discs[e] <= 0 {
		delete(p.discs, e)
	}
	p.mu.Unlock()
}

// stillLive reports whether a discovery the pool follows, other than
// from, has addr among its targets.
func (p *pool) stillLive(from *discEntry, addr string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for e := range p.discs {
		if e != from && slices.Contains(e.live.Load().addrs, addr) {
			return true
		}
	}
	return false
}

// follow retires the departed targets' pooled connections: idle ones
// close now, those in use when their exchange ends (requests in flight
// finish). net/http's Transport (h2c, TLS upstreams) cannot close one
// address's connections, so it closes all idle ones, and connections in
// use to a departed target close at the keep-alive idle timeout.
func (p *pool) follow(from *discEntry, _, added, removed []string) {
	gone := removed[:0:0]
	for _, a := range removed {
		if !p.stillLive(from, a) {
			gone = append(gone, a)
		}
	}
	type retirer interface {
		Retire(string)
		Readmit(string)
	}
	if r, ok := p.transport.(retirer); ok {
		for _, a := range added {
			r.Readmit(a)
		}
		for _, a := range gone {
			r.Retire(a)
		}
		return
	}
	if len(gone) > 0 {
		p.transport.CloseIdleConnections()
	}
}

// follow makes the state's health checks and outlier detection follow a
// new set of addresses: those that stay keep their verdicts and counters.
func (s *state) follow(from *discEntry, addrs, _, removed []string) {
	s.mu.Lock()
	if s.disc != from {
		// The state moved to other targets since this change was sent.
		s.mu.Unlock()
		return
	}
	s.setAddrs(addrs)
	s.mu.Unlock()
	if s.metrics != nil {
		for _, a := range removed {
			s.metrics.TargetHealthy.DeleteLabelValues(s.name, a)
		}
	}
	s.changed("")
}

// DiscoveryState is an upstream's discovery for the admin API.
type DiscoveryState struct {
	Type string
	discovery.Status
}

// Discovery returns the upstream's discovery state, or nil for static
// targets.
func (u *Upstream) Discovery() *DiscoveryState {
	if u.disc == nil {
		return nil
	}
	return &DiscoveryState{Type: u.cfg.Discovery.Type, Status: u.disc.status()}
}
