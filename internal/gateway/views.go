package gateway

import (
	"time"

	"github.com/rampart-gw/rampart/internal/cluster/breaker"
)

// TargetView is one target of an upstream as the admin API shows it.
type TargetView struct {
	Address  string `json:"address"`
	Weight   int    `json:"weight"`
	Zone     string `json:"zone,omitempty"`
	Priority int    `json:"priority,omitempty"`
	Healthy  bool   `json:"healthy"`
	// HealthError is why the last active health probe failed (when it did).
	HealthError    string     `json:"health_error,omitempty"`
	Ejected        bool       `json:"ejected"`
	EjectedUntil   *time.Time `json:"ejected_until,omitempty"`
	ActiveRequests int64      `json:"active_requests"`
	LatencyEWMAms  float64    `json:"latency_ewma_ms"`
}

// UpstreamView is an upstream's live state (health, circuit, discovery,
// targets) as GET /api/v1/upstreams and the explain endpoint show it.
type UpstreamView struct {
	Name     string        `json:"name"`
	Balancer string        `json:"balancer"`
	Circuit  string        `json:"circuit"`
	Breaker  breaker.Stats `json:"breaker"`
	// Trip is the failure-tripped breaker (circuit_breaker.trip), when set.
	Trip     *breaker.TripStats `json:"trip,omitempty"`
	Panic    bool               `json:"panic_mode"`
	Failover string             `json:"failover,omitempty"`
	// Discovery is the state of dns, srv or etcd discovery, when set.
	Discovery *DiscoveryView `json:"discovery,omitempty"`
	Targets   []TargetView   `json:"targets"`
}

// DiscoveryView is an upstream's discovery: what it watches, when it last
// succeeded, its last error, and how many targets it found.
type DiscoveryView struct {
	Type        string     `json:"type"`
	Source      string     `json:"source"`
	LastRefresh *time.Time `json:"last_refresh"`
	LastAttempt *time.Time `json:"last_attempt"`
	LastError   string     `json:"last_error,omitempty"`
	Targets     int        `json:"targets"`
	Refreshes   uint64     `json:"refreshes"`
	Failures    uint64     `json:"failures"`
}

func utcOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// UpstreamView reads the state of the upstream name (one of s.Upstreams)
// from the registry state its snapshot holds.
func (s *Snapshot) UpstreamView(n string) UpstreamView {
	u := s.Upstreams[n]
	uc := s.Config.Upstreams[n]
	uv := UpstreamView{Name: n, Circuit: "closed", Targets: []TargetView{}}
	if uc != nil {
		uv.Balancer, uv.Failover = uc.Balancer, uc.Failover
	}
	if u == nil {
		return uv
	}
	stats := u.Breaker().Stats()
	uv.Breaker, uv.Panic = stats, u.Panic()
	if stats.Open {
		uv.Circuit = "open"
	}
	if tr := u.Trip(); tr != nil {
		ts := tr.Stats(time.Now())
		uv.Trip = &ts
		if st, _ := tr.State(); st != breaker.StateClosed {
			uv.Circuit = st.String()
		}
	}
	if d := u.Discovery(); d != nil {
		uv.Discovery = &DiscoveryView{Type: d.Type, Source: d.Source, LastRefresh: utcOrNil(d.LastRefresh),
			LastAttempt: utcOrNil(d.LastAttempt), LastError: d.LastError, Targets: d.Targets,
			Refreshes: d.Refreshes, Failures: d.Failures}
	}
	for _, t := range u.Live() {
		st := u.State(t.Addr)
		tv := TargetView{Address: t.Addr, Weight: t.Weight, Zone: t.Zone, Priority: t.Priority, Healthy: st.Healthy && !st.Ejected,
			Ejected: st.Ejected, HealthError: st.HealthError, ActiveRequests: t.InFlight.Load(),
			LatencyEWMAms: float64(t.Latency().Microseconds()) / 1000}
		if st.Ejected {
			until := st.EjectedUntil.UTC()
			tv.EjectedUntil = &until
		}
		uv.Targets = append(uv.Targets, tv)
	}
	return uv
}
