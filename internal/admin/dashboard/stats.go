package dashboard

import (
	"encoding/json"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// Stats is what GET /api/v1/stats answers: cumulative counters, read at
// Time. Rates and quantiles are left to the reader, who takes the
// difference between two answers (as Prometheus' rate() and
// histogram_quantile() do).
type Stats struct {
	Time time.Time `json:"time"`
	// Version is the active config's version ("" before the first config).
	Version   string           `json:"version"`
	Candidate *CandidateStats  `json:"candidate,omitempty"`
	Routes    []RouteStats     `json:"routes"`
	Listeners []ListenerStats  `json:"listeners"`
	Reloads   map[string]int64 `json:"reloads"`
}

// CandidateStats is a candidate config staged beside the active one.
type CandidateStats struct {
	Version string  `json:"version"`
	Percent float64 `json:"percent"`
}

// RouteStats are one route's counters since the gateway started. Route ""
// counts requests that matched no route.
type RouteStats struct {
	Route string `json:"route"`
	// Requests counts responses by status code (all methods).
	Requests map[string]int64 `json:"requests"`
	// Total is the sum of Requests; Errors the part with a 5xx code.
	Total  int64 `json:"total"`
	Errors int64 `json:"errors"`
	// Duration is rampart_http_request_duration_seconds for the route.
	Duration Histogram `json:"duration"`
}

// Histogram is a cumulative Prometheus histogram: Counts[i] observations
// were at most LE[i] seconds; the +Inf bucket is Count.
type Histogram struct {
	LE     []float64 `json:"le"`
	Counts []int64   `json:"counts"`
	Count  int64     `json:"count"`
	Sum    float64   `json:"sum"`
}

// ListenerStats are one listener's open client connections.
type ListenerStats struct {
	Name              string `json:"name"`
	ActiveConnections int64  `json:"active_connections"`
}

// Collect reads the stats now.
func (d *Dashboard) Collect() (Stats, error) {
	st := Stats{Time: time.Now().UTC(), Routes: []RouteStats{}, Listeners: []ListenerStats{},
		Reloads: map[string]int64{"ok": 0, "error": 0}}
	routes := map[string]*RouteStats{}
	route := func(name string) *RouteStats {
		r := routes[name]
		if r == nil {
			r = &RouteStats{Route: name, Requests: map[string]int64{}, Duration: Histogram{LE: []float64{}, Counts: []int64{}}}
			routes[name] = r
		}
		return r
	}
	if d.deps.Store != nil {
		if s := d.deps.Store.Load(); s != nil {
			st.Version = s.Version
			for _, rt := range s.Routes {
				switch {
				case rt == nil:
				case rt.Name != "":
					route(rt.Name)
				case rt.Config != nil:
					route(rt.Config.Name)
				}
			}
		}
		if sp := d.deps.Store.Split(); sp != nil && sp.Candidate != nil {
			st.Candidate = &CandidateStats{Version: sp.Candidate.Version, Percent: float64(sp.Basis) / 100}
		}
	}
	fams, err := d.gather.Gather()
	if err != nil {
		return st, err
	}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			switch f.GetName() {
			case "rampart_http_requests_total":
				r := route(label(m, "route"))
				n := int64(m.GetCounter().GetValue())
				code := label(m, "code")
				r.Requests[code] += n
				r.Total += n
				if strings.HasPrefix(code, "5") {
					r.Errors += n
				}
			case "rampart_http_request_duration_seconds":
				r, h := route(label(m, "route")), m.GetHistogram()
				r.Duration = Histogram{LE: []float64{}, Counts: []int64{}, Count: int64(h.GetSampleCount()), Sum: h.GetSampleSum()}
				for _, b := range h.GetBucket() {
					if math.IsInf(b.GetUpperBound(), +1) {
						continue // JSON has no +Inf; it is Count.
					}
					r.Duration.LE = append(r.Duration.LE, b.GetUpperBound())
					r.Duration.Counts = append(r.Duration.Counts, int64(b.GetCumulativeCount()))
				}
			case "rampart_active_connections":
				st.Listeners = append(st.Listeners, ListenerStats{Name: label(m, "listener"), ActiveConnections: int64(m.GetGauge().GetValue())})
			case "rampart_config_reloads_total":
				st.Reloads[label(m, "result")] = int64(m.GetCounter().GetValue())
			}
		}
	}
	for _, r := range routes {
		st.Routes = append(st.Routes, *r)
	}
	sort.Slice(st.Routes, func(i, j int) bool { return st.Routes[i].Route < st.Routes[j].Route })
	sort.Slice(st.Listeners, func(i, j int) bool { return st.Listeners[i].Name < st.Listeners[j].Name })
	return st, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// Stats serves GET /api/v1/stats.
func (d *Dashboard) Stats(w http.ResponseWriter, r *http.Request) {
	st, err := d.Collect()
	if err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"status": 500, "code": "stats_unavailable", "message": "gather metrics: " + err.Error()}})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(st)
}
