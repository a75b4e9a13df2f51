// Package gateway holds the compiled, immutable config Snapshot, the Store
// that swaps snapshots atomically, and the top-level request handler that
// every listener serves. A request loads one snapshot when it starts and uses
// it to the end; reloads never block requests.
package gateway

import (
	"net/http"
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
	p atomic.Pointer[Snapshot]
}

// Load returns the active snapshot, or nil before the first config.
func (s *Store) Load() *Snapshot { return s.p.Load() }

// Swap makes snap active and returns the previous snapshot.
func (s *Store) Swap(snap *Snapshot) *Snapshot { return s.p.Swap(snap) }
