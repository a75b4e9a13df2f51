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
	"github.com/rampart-gw/rampart/internal/router"
	"github.com/rampart-gw/rampart/internal/telemetry"
)

// Snapshot is one compiled configuration. Nothing in it changes after
// compile; state that must outlive it lives in cluster.Manager.
type Snapshot struct {
	Config    *config.Config
	Version   string
	Router    *router.Router
	Routes    []*Route
	Upstreams map[string]*cluster.Upstream
	// RequestIDHeader is the canonical name of the request ID header.
	RequestIDHeader string
	Created         time.Time
}

// Route is a compiled route.
type Route struct {
	Name   string
	Config *config.Route
	// Handler runs the route's policies and then forwards the request.
	Handler http.Handler
	Metrics *telemetry.RouteMetrics
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

// Chooses reports whether r goes to the candidate.
func (sp *Split) Chooses(r *http.Request) bool {
	key := ""
	if sp.Header != "" {
		if vv := r.Header[sp.Header]; len(vv) > 0 {
			key = vv[0]
		}
	}
	if key == "" {
		key = r.RemoteAddr
		if i := strings.LastIndexByte(key, ':'); i >= 0 {
			key = key[:i] // the port changes per connection; the client does not
		}
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

func (s *Store) observer() Observer {
	if b := s.obs.Load(); b != nil {
		return b.o
	}
	return nil
}
