package app

import (
	"sync"
	"time"

	"github.com/rampart-gw/rampart/internal/admin"
	"github.com/rampart-gw/rampart/internal/redis"
)

// Status is what GET /api/v1/config/status answers.
type Status struct {
	Active        ActiveStatus     `json:"active"`
	LastReload    *ReloadStatus    `json:"last_reload,omitempty"`
	LastError     *ReloadStatus    `json:"last_error,omitempty"`
	Reloads       map[string]int64 `json:"reloads"`
	Candidate     any              `json:"candidate,omitempty"`
	LastCandidate *CandidateEnd    `json:"last_candidate,omitempty"`
	Etcd          *EtcdStatus      `json:"etcd,omitempty"`
	// Redis is the state of each cluster.redis client in use (store redis
	// rate limits): up, or down since when and why.
	Redis []redis.State `json:"redis,omitempty"`
}

// ActiveStatus describes the active config.
type ActiveStatus struct {
	Version   string    `json:"version"`
	Source    string    `json:"source"`
	AppliedAt time.Time `json:"applied_at"`
	// FromCache is set while the active config is the cached copy of an
	// etcd config, read because etcd was unreachable at start-up.
	FromCache bool `json:"from_cache"`
}

// ReloadStatus is the outcome of one attempt to change the config.
type ReloadStatus struct {
	Result   string          `json:"result"` // ok | error
	Source   string          `json:"source"`
	Time     time.Time       `json:"time"`
	Version  string          `json:"version,omitempty"`
	Duration string          `json:"duration,omitempty"`
	Errors   []admin.Problem `json:"errors,omitempty"`
	Warnings []string        `json:"warnings,omitempty"`
}

// CandidateEnd says how the last candidate ended.
type CandidateEnd struct {
	Version string    `json:"version"`
	Outcome string    `json:"outcome"`
	Time    time.Time `json:"time"`
}

// EtcdStatus describes the etcd source.
type EtcdStatus struct {
	Endpoints   []string  `json:"endpoints"`
	Prefix      string    `json:"prefix"`
	Connected   bool      `json:"connected"`
	Revision    int64     `json:"revision"`
	LastContact time.Time `json:"last_contact,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	CacheFile   string    `json:"cache_file"`
	// StartedFromCache is set when start-up fell back to the cache.
	StartedFromCache bool `json:"started_from_cache"`
}

// statusBook keeps the Status; every method is safe for concurrent use.
type statusBook struct {
	mu sync.Mutex
	s  Status
}

func (b *statusBook) applied(src, version string, d time.Duration, warnings []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now().UTC()
	b.s.Active = ActiveStatus{Version: version, Source: src, AppliedAt: now, FromCache: src == SourceCache}
	b.s.LastReload = &ReloadStatus{Result: "ok", Source: src, Time: now, Version: version, Duration: d.String(), Warnings: warnings}
	b.count("ok")
}

// staged records a candidate staged beside the active config, which stays.
func (b *statusBook) staged(version string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.s.LastReload = &ReloadStatus{Result: "ok", Source: SourceCandidate, Time: time.Now().UTC(), Version: version}
	b.count("ok")
}

func (b *statusBook) refused(src string, ps []admin.Problem) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := &ReloadStatus{Result: "error", Source: src, Time: time.Now().UTC(), Errors: ps}
	b.s.LastReload, b.s.LastError = r, r
	b.count("error")
}

func (b *statusBook) count(result string) {
	if b.s.Reloads == nil {
		b.s.Reloads = map[string]int64{}
	}
	b.s.Reloads[result]++
}

func (b *statusBook) candidateEnded(version, outcome string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.s.LastCandidate = &CandidateEnd{Version: version, Outcome: outcome, Time: time.Now().UTC()}
}

// etcd updates the etcd part under the lock.
func (b *statusBook) etcd(f func(e *EtcdStatus, active *ActiveStatus)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.s.Etcd == nil {
		b.s.Etcd = &EtcdStatus{}
	}
	f(b.s.Etcd, &b.s.Active)
}

func (b *statusBook) snapshot() Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.s
	if s.Etcd != nil {
		e := *s.Etcd
		s.Etcd = &e
	}
	rl := make(map[string]int64, 2)
	rl["ok"], rl["error"] = b.s.Reloads["ok"], b.s.Reloads["error"]
	s.Reloads = rl
	return s
}

// Status describes the active config, the last reload and the sources.
func (a *App) Status() any {
	s := a.status.snapshot()
	if c, err := a.Candidate(); err == nil {
		s.Candidate = c
	}
	for _, v := range a.registry.Values("redis|") {
		if c, ok := v.(*redis.Client); ok {
			s.Redis = append(s.Redis, c.State())
		}
	}
	return s
}
