// Package dashboard serves the admin listener's live dashboard: a static page
// (HTML, CSS and vanilla JavaScript embedded in the binary, no build step and
// nothing fetched from elsewhere) under /dashboard/, and GET /api/v1/stats,
// the per-route request counters and latency histograms as JSON from which
// the page computes rates, error shares and quantiles between two polls.
//
// The page also polls GET /api/v1/upstreams and GET /api/v1/config/status;
// every call it makes is a read-only GET, so it needs no admin token.
package dashboard

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampart-gw/rampart/internal/gateway"
	"github.com/rampart-gw/rampart/internal/telemetry"
)

//go:embed assets
var assets embed.FS

// Deps are what the dashboard reads.
type Deps struct {
	Store *gateway.Store
	// Metrics may be nil: the stats then list routes without traffic.
	Metrics *telemetry.Metrics
}

// Dashboard serves the page (ServeHTTP) and its stats (Stats).
type Dashboard struct {
	deps Deps
	// gather reads only the series the stats need; gathering the whole
	// registry would also collect the Go runtime and process metrics on
	// every poll of every open dashboard.
	gather prometheus.Gatherer
	files  http.Handler
}

// New returns the dashboard. Mount it at /dashboard/ and its Stats at
// /api/v1/stats.
func New(deps Deps) *Dashboard {
	d := &Dashboard{deps: deps, gather: prometheus.Gatherers{}}
	if m := deps.Metrics; m != nil {
		// A collector may be registered with several registries; this one
		// holds only what the dashboard shows.
		reg := prometheus.NewRegistry()
		reg.MustRegister(m.Requests, m.Duration, m.ActiveConnections, m.ConfigReloads)
		d.gather = reg
	}
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		// The directory is embedded at build time; fs.Sub fails only for an
		// invalid name, which is a constant here.
		sub = assets
	}
	d.files = http.StripPrefix("/dashboard/", http.FileServerFS(sub))
	return d
}

// ServeHTTP serves the page and its assets under /dashboard/.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Everything the page needs comes from this listener: scripts and
	// styles from /dashboard/, data from /api/v1/ (CSP Level 3).
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// Assets change only with the binary; revalidating is cheap and makes an
	// upgraded gateway serve its own page at once.
	h.Set("Cache-Control", "no-cache")
	d.files.ServeHTTP(w, r)
}
