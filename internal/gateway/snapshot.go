// Package gateway holds the compiled, immutable config Snapshot, the Store
// that swaps snapshots atomically, and the top-level request handler that
// every listener serves. A request loads one snapshot when it starts and uses
// it to the end; reloads never block requests.
package gateway

import (
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rampart-gw/rampart/internal/cluster"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/proxy"
	"github.com/rampart-gw/rampart/internal/registry"
	"github.com/rampart-gw/rampart/internal/router"
	"github.com/rampart-gw/rampart/internal/telemetry"
)

// Snapshot is one compiled configuration. Nothing in it changes after
// compile; state that must outlive it lives in the registry, bound through
// Claims: Acquire before it serves, Activate when it becomes the active
// config, Release when it is retired.
type Snapshot struct {
	// Claims are the shared state the snapshot needs (internal/registry).
	Claims    *registry.Claims
	Config    *config.Config
	Version   string
	Router    *router.Router
	Routes    []*Route
	Upstreams map[string]*cluster.Upstream
	// RequestIDHeader is the canonical name of the request ID header.
	RequestIDHeader string
	Created         time.Time
}

// Acquire binds the snapshot's claims from reg (nil: fresh state of its
// own), making what no other snapshot holds and starting its health checks.
// A snapshot serves only after Acquire.
func (s *Snapshot) Acquire(reg *registry.Registry) { s.Claims.Acquire(reg) }

// Activate applies the snapshot's upstream settings (breaker, health,
// outlier) to the state it shares with other snapshots: it is called when
// the snapshot becomes the active config, after Acquire. A staged
// candidate is acquired but not activated until it is promoted.
func (s *Snapshot) Activate() {
	for _, u := range s.Upstreams {
		u.Activate()
	}
}

// Release gives back the snapshot's claims when it is retired; state that
// no other snapshot holds is stopped and forgotten. Requests still running
// on the snapshot finish normally. A nil snapshot releases nothing.
func (s *Snapshot) Release() {
	if s != nil {
		s.Claims.Release()
	}
}

// Route is a compiled route.
type Route struct {
	Name   string
	Config *config.Route
	// Handler runs the route's policies and then forwards the request.
	Handler http.Handler
	Metrics *telemetry.RouteMetrics
	// Params says whether the route's handlers use its path captures
	// (exchange.Exchange.Params), which are then extracted for each
	// request; other routes never pay for them.
	Params bool
	// Forward is the forwarding settings the route's proxies share
	// (path rewrite, timeout, retries; Upstream unset), read by explain.
	Forward *proxy.Config
}

// Store holds the active snapshot. Load is a single atomic read.
type Store struct {
	p     atomic.Pointer[Snapshot]
	split atomic.Pointer[Split]
	obs   atomic.Pointer[observerBox]
}

// Load returns the active snapshot, or nil before the first config.
func (s *Store) Load() *Snapshot { return s.p.Load() }

// Swap makes snap active and returns the previous snapshot.
func (s *Store) Swap(snap *Snapshot) *Snapshot { return s.p.Swap(snap) }

// Split sends a share of requests to a candidate snapshot staged beside the
// active one (a canary or blue-green config rollout). The choice is stable
// per client: it hashes the client IP, or the value of Header when the
// request carries it.
type Split struct {
	Candidate *Snapshot
	// Basis is the candidate's share in hundredths of a percent (0..10000).
	Basis uint32
	// Header, when set, names the request header hashed instead of the
	// client IP (for example X-Request-ID).
	Header string
}

// Chooses reports whether r goes to the candidate, keyed by the TCP peer
// when the split names no header.
func (sp *Split) Chooses(r *http.Request) bool {
	key := r.RemoteAddr
	if i := strings.LastIndexByte(key, ':'); i >= 0 {
		key = key[:i] // the port changes per connection; the client does not
	}
	return sp.ChoosesFor(r, key)
}

// ChoosesFor reports whether r, from client (the resolved client IP), goes
// to the candidate: by the split's header if the request has it, else by
// client, so that a client keeps its side and clients behind one trusted
// proxy are still spread.
func (sp *Split) ChoosesFor(r *http.Request, client string) bool {
	key := ""
	if sp.Header != "" {
		if vv := r.Header[sp.Header]; len(vv) > 0 {
			key = vv[0]
		}
	}
	if key == "" {
		key = client
	}
	// FNV-1a, 64 bit: cheap, allocation-free and well spread for short keys.
	h := uint64(14695981039346656037)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 1099511628211
	}
	h ^= h >> 33 // fold the high bits in: FNV's low bits mix poorly
	return uint32(h%10000) < sp.Basis
}

// Observer is told which snapshot served each request, with its final
// status and duration, so that versions can be compared.
type Observer interface {
	Observe(s *Snapshot, status int, d time.Duration)
}

type observerBox struct{ o Observer }

// SetSplit stages sp (nil ends the split) and returns the previous one.
func (s *Store) SetSplit(sp *Split) *Split { return s.split.Swap(sp) }

// Split returns the staged split, or nil.
func (s *Store) Split() *Split { return s.split.Load() }

// SetObserver makes o see every request (nil for none).
func (s *Store) SetObserver(o Observer) {
	if o == nil {
		s.obs.Store(nil)
		return
	}
	s.obs.Store(&observerBox{o})
}

// Pick returns the snapshot that serves r: the candidate of a staged split
// for its share of clients, otherwise the active snapshot.
func (s *Store) Pick(r *http.Request) *Snapshot {
	snap := s.p.Load()
	if sp := s.split.Load(); sp != nil && snap != nil && sp.Candidate != nil && sp.Chooses(r) {
		return sp.Candidate
	}
	return snap
}

// PickFor is Pick with the request's resolved client IP.
func (s *Store) PickFor(r *http.Request, client string) *Snapshot {
	snap := s.p.Load()
	if sp := s.split.Load(); sp != nil && snap != nil && sp.Candidate != nil && sp.ChoosesFor(r, client) {
		return sp.Candidate
	}
	return snap
}

func (s *Store) observer() Observer {
	if b := s.obs.Load(); b != nil {
		return b.o
	}
	return nil
}
