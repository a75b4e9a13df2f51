package app

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampart-gw/rampart/internal/gateway"
	"github.com/rampart-gw/rampart/internal/telemetry"
)

// latencyBounds are the upper bounds of the per-version latency buckets:
// 0.25 ms growing by half each step, up to about 30 s.
var latencyBounds = func() []time.Duration {
	var b []time.Duration
	for d := 250 * time.Microsecond; d < 40*time.Second; d = d * 3 / 2 {
		b = append(b, d)
	}
	return b
}()

// versionStats are the request counts of one config version, for comparing
// a candidate with the active config.
type versionStats struct {
	requests atomic.Int64
	errors   atomic.Int64 // 5xx answers
	buckets  []atomic.Int64
	byClass  [6]prometheus.Counter // index status/100; 0 for anything else
	duration prometheus.Observer
}

// VersionView is a version's comparison figures.
type VersionView struct {
	Version   string  `json:"version"`
	Requests  int64   `json:"requests"`
	Errors5xx int64   `json:"errors_5xx"`
	ErrorRate float64 `json:"error_rate"`
	P99ms     float64 `json:"p99_ms"`
}

func (s *versionStats) view(version string) VersionView {
	v := VersionView{Version: version, Requests: s.requests.Load(), Errors5xx: s.errors.Load()}
	if v.Requests > 0 {
		v.ErrorRate = float64(v.Errors5xx) / float64(v.Requests)
	}
	var total int64
	for i := range s.buckets {
		total += s.buckets[i].Load()
	}
	if total > 0 {
		want := int64(math.Ceil(float64(total) * 0.99))
		var seen int64
		for i := range s.buckets {
			seen += s.buckets[i].Load()
			if seen >= want {
				if i < len(latencyBounds) {
					v.P99ms = float64(latencyBounds[i].Microseconds()) / 1000
				} else {
					v.P99ms = math.Inf(1)
				}
				break
			}
		}
	}
	return v
}

// versionBook is the gateway.Observer that counts requests by the version
// of the snapshot that served them. Lookups are lock-free: the map is
// replaced, never changed, once published.
type versionBook struct {
	mu       sync.Mutex
	m        atomic.Pointer[map[string]*versionStats]
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

var _ gateway.Observer = (*versionBook)(nil)

func (b *versionBook) init(m *telemetry.Metrics) {
	b.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rampart_config_version_requests_total",
		Help: "Client requests by the config version that served them (active or candidate) and status class.",
	}, []string{"version", "class"})
	b.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "rampart_config_version_request_duration_seconds",
		Help:    "Request durations by the config version that served them.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"version"})
	m.MustRegister(b.requests, b.duration)
	empty := map[string]*versionStats{}
	b.m.Store(&empty)
}

var classNames = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

func (b *versionBook) get(version string) *versionStats {
	if s := (*b.m.Load())[version]; s != nil {
		return s
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	old := *b.m.Load()
	if s := old[version]; s != nil {
		return s
	}
	s := b.fresh(version)
	next := make(map[string]*versionStats, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[version] = s
	b.m.Store(&next)
	return s
}

func (b *versionBook) fresh(version string) *versionStats {
	s := &versionStats{buckets: make([]atomic.Int64, len(latencyBounds)+1)}
	if b.requests != nil {
		for i, c := range classNames {
			s.byClass[i] = b.requests.WithLabelValues(version, c)
		}
		s.duration = b.duration.WithLabelValues(version)
	}
	return s
}

// Observe counts one request served by snapshot s.
func (b *versionBook) Observe(snap *gateway.Snapshot, status int, d time.Duration) {
	s := b.get(snap.Version)
	s.requests.Add(1)
	class := status / 100
	if class < 1 || class > 5 {
		class = 0
	}
	if class == 5 {
		s.errors.Add(1)
	}
	if s.byClass[class] != nil {
		s.byClass[class].Inc()
		s.duration.Observe(d.Seconds())
	}
	i := 0
	for i < len(latencyBounds) && d > latencyBounds[i] {
		i++
	}
	s.buckets[i].Add(1)
}

// stats returns the figures of version.
func (b *versionBook) stats(version string) VersionView {
	return b.get(version).view(version)
}

// reset starts a new comparison window for the versions (the Prometheus
// counters keep counting).
func (b *versionBook) reset(versions ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := *b.m.Load()
	next := make(map[string]*versionStats, len(old))
	for k, v := range old {
		next[k] = v
	}
	for _, v := range versions {
		next[v] = b.fresh(v)
	}
	b.m.Store(&next)
}

// retain forgets every version but keep, and its metric series.
func (b *versionBook) retain(keep ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := *b.m.Load()
	next := make(map[string]*versionStats, len(keep))
	for k, v := range old {
		kept := false
		for _, x := range keep {
			kept = kept || x == k
		}
		if kept {
			next[k] = v
			continue
		}
		if b.requests != nil {
			for _, c := range classNames {
				b.requests.DeleteLabelValues(k, c)
			}
			b.duration.DeleteLabelValues(k)
		}
	}
	b.m.Store(&next)
}
