// Package admin serves the admin API on its own listener: liveness and
// readiness, Prometheus metrics, the active config (read, replace, stage a
// candidate beside it), routes and upstreams, the explanation of a
// request, the live dashboard with its stats, and pprof for profiling.
package admin

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rampart-gw/rampart/internal/admin/dashboard"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/gateway"
	"github.com/rampart-gw/rampart/internal/telemetry"
)

// Deps are what the admin API reads.
type Deps struct {
	Store   *gateway.Store
	Metrics *telemetry.Metrics
	// Ready reports whether the gateway accepts traffic (a config is
	// active, listeners are bound, not draining).
	Ready func() bool
	// Control applies configs and stages candidates; nil makes the config
	// endpoints read-only.
	Control Control
	// Drain, if set, starts a drain as SIGTERM does (POST /api/v1/drain).
	Drain func()
	// Upgrade, if set, runs a binary upgrade as SIGUSR2 does
	// (POST /api/v1/upgrade) and returns the new process's pid.
	Upgrade func() (int, error)
}

// New returns the admin API handler.
func New(deps Deps) http.Handler {
	a := &api{deps: deps}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { text(w, http.StatusOK, "ok\n") })
	mux.HandleFunc("GET /readyz", a.readyz)
	if deps.Metrics != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(deps.Metrics.Registry, promhttp.HandlerOpts{EnableOpenMetrics: false}))
	}
	mux.HandleFunc("GET /api/v1/config", a.config)
	a.mountControl(mux)
	if deps.Drain != nil {
		mux.HandleFunc("POST /api/v1/drain", a.mutating(func(w http.ResponseWriter, r *http.Request) {
			deps.Drain()
			writeJSON(w, http.StatusAccepted, map[string]any{"draining": true})
		}))
	}
	if deps.Upgrade != nil {
		mux.HandleFunc("POST /api/v1/upgrade", a.mutating(func(w http.ResponseWriter, r *http.Request) {
			pid, err := deps.Upgrade()
			if err != nil {
				apiError(w, http.StatusInternalServerError, "upgrade_failed", err.Error(), nil)
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"upgraded": true, "pid": pid})
		}))
	}
	mux.HandleFunc("GET /api/v1/routes", a.routes)
	mux.HandleFunc("GET /api/v1/upstreams", a.upstreams)
	mux.HandleFunc("GET /api/v1/explain", a.explain)
	dash := dashboard.New(dashboard.Deps{Store: deps.Store, Metrics: deps.Metrics})
	mux.Handle("GET /dashboard/", dash)
	mux.HandleFunc("GET /api/v1/stats", dash.Stats)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

type api struct{ deps Deps }

func text(w http.ResponseWriter, status int, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte(s))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func (a *api) readyz(w http.ResponseWriter, r *http.Request) {
	if a.deps.Ready != nil && a.deps.Ready() {
		text(w, http.StatusOK, "ready\n")
		return
	}
	text(w, http.StatusServiceUnavailable, "not ready\n")
}

func (a *api) snapshot(w http.ResponseWriter) *gateway.Snapshot {
	s := a.deps.Store.Load()
	if s == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": map[string]any{"status": 503, "code": "not_ready", "message": "no active config"}})
	}
	return s
}

func (a *api) config(w http.ResponseWriter, r *http.Request) {
	s := a.snapshot(w)
	if s == nil {
		return
	}
	cfgJSON, err := s.Config.JSON()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("ETag", `"`+s.Version+`"`)
	out := map[string]any{
		"version":    s.Version,
		"applied_at": s.Created.UTC().Format(time.RFC3339Nano),
		"config":     json.RawMessage(cfgJSON),
	}
	if sp := a.deps.Store.Split(); sp != nil && sp.Candidate != nil {
		cand := map[string]any{"version": sp.Candidate.Version, "percent": float64(sp.Basis) / 100,
			"staged_at": sp.Candidate.Created.UTC().Format(time.RFC3339Nano)}
		if r.URL.Query().Get("candidate") == "full" {
			if b, err := sp.Candidate.Config.JSON(); err == nil {
				cand["config"] = json.RawMessage(b)
			}
		}
		out["candidate"] = cand
	}
	writeJSON(w, http.StatusOK, out)
}

type routeView struct {
	Name        string             `json:"name"`
	Match       config.Match       `json:"match"`
	Upstream    string             `json:"upstream,omitempty"`
	Split       []config.SplitItem `json:"split,omitempty"`
	Aggregate   *config.Aggregate  `json:"aggregate,omitempty"`
	StripPrefix bool               `json:"strip_prefix,omitempty"`
	Rewrite     *config.Rewrite    `json:"rewrite,omitempty"`
	Timeout     string             `json:"timeout"`
	Policies    []string           `json:"policies"`
}

func (a *api) routes(w http.ResponseWriter, r *http.Request) {
	s := a.snapshot(w)
	if s == nil {
		return
	}
	out := make([]routeView, 0, len(s.Routes))
	for _, rt := range s.Routes {
		c := rt.Config
		pol := c.Policies
		if pol == nil {
			pol = []string{}
		}
		out = append(out, routeView{Name: c.Name, Match: c.Match, Upstream: c.Upstream, Split: c.Split, Aggregate: c.Aggregate,
			StripPrefix: c.StripPrefix, Rewrite: c.Rewrite, Timeout: c.Timeout.String(), Policies: pol})
	}
	writeJSON(w, http.StatusOK, map[string]any{"version": s.Version, "routes": out})
}

func (a *api) upstreams(w http.ResponseWriter, r *http.Request) {
	s := a.snapshot(w)
	if s == nil {
		return
	}
	names := make([]string, 0, len(s.Upstreams))
	for n := range s.Upstreams {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]gateway.UpstreamView, 0, len(names))
	for _, n := range names {
		out = append(out, s.UpstreamView(n))
	}
	writeJSON(w, http.StatusOK, map[string]any{"version": s.Version, "upstreams": out})
}
