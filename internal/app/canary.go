package app

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampart-gw/rampart/internal/admin"
	"github.com/rampart-gw/rampart/internal/compile"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/gateway"
	"github.com/rampart-gw/rampart/internal/telemetry"
)

// Automatic rollback defaults for a staged candidate.
const (
	// DefaultMaxErrorRateIncrease rolls a candidate back when its 5xx rate
	// exceeds the active config's by more than 5 points.
	DefaultMaxErrorRateIncrease = 0.05
	// DefaultMinRequests is how many candidate requests the judge waits
	// for before deciding.
	DefaultMinRequests = 100
)

// candidate is a config staged beside the active one.
type candidate struct {
	snap    *gateway.Snapshot
	percent float64
	hash    string
	maxInc  float64
	minReq  int64
	staged  time.Time
}

// CandidateView is what GET /api/v1/config/candidate answers.
type CandidateView struct {
	Version       string    `json:"version"`
	ActiveVersion string    `json:"active_version"`
	Percent       float64   `json:"percent"`
	Hash          string    `json:"hash"`
	StagedAt      time.Time `json:"staged_at"`
	AutoRollback  struct {
		Enabled              bool    `json:"enabled"`
		MaxErrorRateIncrease float64 `json:"max_error_rate_increase"`
		MinRequests          int64   `json:"min_requests"`
	} `json:"auto_rollback"`
	Compare struct {
		Active    VersionView `json:"active"`
		Candidate VersionView `json:"candidate"`
	} `json:"compare"`
}

// StageCandidate compiles a candidate config, once, and sends spec.Percent
// of clients to it. The candidate shares listeners and, through the
// registry, every state it claims with the same identity as the active
// config: targets, pools, and the per-upstream health, outlier and breaker
// state, whose settings stay the active config's until a promotion.
func (a *App) StageCandidate(spec admin.CandidateSpec) (string, error) {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	cur := a.store.Load()
	if spec.IfMatch != "" && (cur == nil || cur.Version != spec.IfMatch) {
		return "", admin.ErrVersionMismatch
	}
	cfg, err := config.LoadBytes(spec.Name, spec.Data)
	var snap *gateway.Snapshot
	if err == nil {
		snap, err = compile.Build(cfg, a.compileDeps())
	}
	if err != nil {
		a.refused(SourceCandidate, err)
		return "", err
	}
	// Acquired before a previous candidate is released, so that state
	// both claim is kept.
	snap.Acquire(a.registry)
	if a.cand != nil {
		a.rollbackLocked("replaced by a new candidate")
		cur = a.store.Load()
	}

	c := &candidate{snap: snap, percent: spec.Percent, hash: spec.Hash, maxInc: spec.MaxErrorRateIncrease,
		minReq: spec.MinRequests, staged: time.Now().UTC()}
	if c.hash == "" {
		c.hash = "ip"
	}
	if c.maxInc == 0 {
		c.maxInc = DefaultMaxErrorRateIncrease
	}
	if c.minReq <= 0 {
		c.minReq = DefaultMinRequests
	}
	header := ""
	switch {
	case c.hash == "request_id":
		header = cur.RequestIDHeader
	case strings.HasPrefix(c.hash, "header:"):
		header = http.CanonicalHeaderKey(strings.TrimPrefix(c.hash, "header:"))
	}
	a.versions.reset(cur.Version, snap.Version)
	a.cand = c
	a.store.SetSplit(&gateway.Split{Candidate: snap, Basis: uint32(math.Round(c.percent * 100)), Header: header})
	a.candidateGauge(c)
	a.metrics.Reloaded("ok")
	a.status.staged(snap.Version)
	a.log.Info("candidate config staged", "candidate", snap.Version, "active", cur.Version, "percent", c.percent, "hash", c.hash)
	return snap.Version, nil
}

// newCandidateGauge makes and registers rampart_config_candidate_percent;
// it has no series while no candidate is staged.
func newCandidateGauge(m *telemetry.Metrics) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "rampart_config_candidate_percent",
		Help: "Share of clients (percent) sent to the staged candidate config, by its version.",
	}, []string{"version"})
	m.MustRegister(g)
	return g
}

// candidateGauge shows the candidate's share as
// rampart_config_candidate_percent{version} (nil clears it).
func (a *App) candidateGauge(c *candidate) {
	a.candGauge.Reset()
	if c != nil {
		a.candGauge.WithLabelValues(c.snap.Version).Set(c.percent)
	}
}

// Candidate describes the staged candidate and how it compares.
func (a *App) Candidate() (any, error) {
	sp := a.store.Split()
	cur := a.store.Load()
	if sp == nil || cur == nil {
		return nil, admin.ErrNoCandidate
	}
	a.reloadMu.Lock()
	c := a.cand
	a.reloadMu.Unlock()
	if c == nil {
		return nil, admin.ErrNoCandidate
	}
	return a.candidateView(c, cur), nil
}

func (a *App) candidateView(c *candidate, cur *gateway.Snapshot) CandidateView {
	v := CandidateView{Version: c.snap.Version, ActiveVersion: cur.Version, Percent: c.percent, Hash: c.hash, StagedAt: c.staged}
	v.AutoRollback.Enabled = c.maxInc >= 0
	v.AutoRollback.MaxErrorRateIncrease, v.AutoRollback.MinRequests = c.maxInc, c.minReq
	v.Compare.Active = a.versions.stats(cur.Version)
	v.Compare.Candidate = a.versions.stats(c.snap.Version)
	return v
}

// PromoteCandidate makes the candidate the active config for everyone.
func (a *App) PromoteCandidate() (string, error) {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	c := a.cand
	if c == nil {
		return "", admin.ErrNoCandidate
	}
	tr, err := a.nextTracer(c.snap.Config)
	if err != nil {
		return "", err
	}
	al, err := a.openAccessLog(c.snap.Config)
	if err != nil {
		a.dropTracer(tr)
		return "", err
	}
	a.cand = nil
	old := a.activate(c.snap, al)
	a.setTracer(tr)
	a.store.SetSplit(nil)
	a.candidateGauge(nil)
	a.metrics.Reloaded("ok")
	a.status.applied(SourcePromote, c.snap.Version, 0, nil)
	a.status.candidateEnded(c.snap.Version, "promoted")
	a.log.Info("candidate config promoted", "version", c.snap.Version, "previous", old.Version)
	return c.snap.Version, nil
}

// RollbackCandidate drops the candidate; every client goes back to the
// active config.
func (a *App) RollbackCandidate(reason string) error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	if a.cand == nil {
		return admin.ErrNoCandidate
	}
	a.rollbackLocked(reason)
	return nil
}

// rollbackLocked ends the candidate: it stops serving and releases its
// claims. Staging changed none of the active config's state, so nothing is
// compiled or re-applied.
func (a *App) rollbackLocked(reason string) {
	c := a.cand
	a.cand = nil
	a.store.SetSplit(nil)
	a.candidateGauge(nil)
	cur := a.store.Load()
	c.snap.Release()
	a.status.candidateEnded(c.snap.Version, "rolled back: "+reason)
	a.log.Warn("candidate config rolled back", "candidate", c.snap.Version, "active", cur.Version, "reason", reason)
}

// judgeLoop rolls a candidate back once it is clearly worse than the
// active config: after MinRequests candidate requests, when its 5xx rate
// exceeds the active one's by more than MaxErrorRateIncrease.
func (a *App) judgeLoop(ctx context.Context) {
	every := a.opts.AutoRollbackInterval
	if every <= 0 {
		every = 250 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.judge()
	}
}

func (a *App) judge() {
	if a.store.Split() == nil {
		return
	}
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	c, cur := a.cand, a.store.Load()
	if c == nil || c.maxInc < 0 {
		return
	}
	cs, as := a.versions.stats(c.snap.Version), a.versions.stats(cur.Version)
	if cs.Requests < c.minReq {
		return
	}
	if cs.ErrorRate-as.ErrorRate > c.maxInc {
		a.rollbackLocked(fmt.Sprintf("automatic: candidate 5xx rate %.1f%% over %d requests exceeds the active config's %.1f%% by more than %.1f points",
			cs.ErrorRate*100, cs.Requests, as.ErrorRate*100, c.maxInc*100))
	}
}

// openAccessLog returns the access log cfg names: the current one when its
// path is unchanged, so that a reload neither reopens the file nor starts
// a writer (nor loses a queued line), else a new one; nil for off.
func (a *App) openAccessLog(cfg *config.Config) (*telemetry.AccessLog, error) {
	path := cfg.Observability.AccessLog.Path
	if cur := a.access.Load(); cur != nil && cur.Path() == path {
		return cur, nil
	}
	return telemetry.OpenAccessLog(telemetry.AccessLogConfig{Path: path, Dropped: a.metrics.AccessLogDropped})
}

// ReopenAccessLog reopens the access log's file (SIGUSR1), so that lines
// go to a new file after logrotate renamed the old one. A log on stdout
// or stderr, or none, does nothing.
func (a *App) ReopenAccessLog() error {
	err := a.access.Load().Reopen()
	if err != nil {
		a.log.Error("access log not reopened; lines go on to the old file", "err", err.Error())
	} else if al := a.access.Load(); al != nil {
		a.log.Info("access log reopened", "path", al.Path())
	}
	return err
}
