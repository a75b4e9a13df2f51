package app

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/rampart-gw/rampart/internal/admin"
	"github.com/rampart-gw/rampart/internal/compile"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/gateway"
	"github.com/rampart-gw/rampart/internal/source"
	"github.com/rampart-gw/rampart/internal/telemetry"
	"github.com/rampart-gw/rampart/internal/telemetry/tracing"
)

// Where a config came from, as shown in the status and the logs.
const (
	SourceStartup   = "startup"
	SourceFile      = "file"
	SourceSignal    = "sighup"
	SourceAPI       = "api"
	SourceEtcd      = "etcd"
	SourceCache     = "cache"
	SourceCandidate = "candidate"
	SourcePromote   = "promote"
	SourceRollback  = "rollback"
)

// apply validates nothing (cfg passed config.Validate) but compiles cfg,
// once, and makes it active in one atomic swap. Compiling is pure, so a
// config refused here has touched nothing. A staged candidate is dropped:
// it was compared against the old config. The caller holds reloadMu, or
// is New.
func (a *App) apply(cfg *config.Config, src string) error {
	start := time.Now()
	snap, err := compile.Build(cfg, a.compileDeps())
	if err != nil {
		a.refused(src, err)
		return err
	}
	tr, err := a.nextTracer(cfg)
	if err != nil {
		a.refused(src, err)
		return err
	}
	al, err := a.openAccessLog(cfg)
	if err != nil {
		a.dropTracer(tr)
		err = config.Errors{cfg.Errorf("observability.access_log.path", "%v", err)}
		a.refused(src, err)
		return err
	}
	var dropped *gateway.Snapshot
	if a.cand != nil {
		// The candidate was compared against the config being replaced.
		a.store.SetSplit(nil)
		a.log.Warn("candidate config dropped: a new active config was applied", "candidate", a.cand.snap.Version)
		a.status.candidateEnded(a.cand.snap.Version, "dropped: a new active config was applied from "+src)
		dropped = a.cand.snap
		a.cand = nil
		a.candidateGauge(nil)
	}
	old := a.activate(snap, al)
	a.setTracer(tr)
	// Released after the new snapshot acquired its claims, so that state
	// both use is kept.
	dropped.Release()
	a.metrics.Reloaded("ok")
	var warnings []string
	if a.bound != "" && listenerKey(cfg) != a.bound {
		warnings = append(warnings, "listeners, admin.address and pid_file are set up at start-up; their changes take effect after a restart or a binary upgrade")
	}
	for _, l := range a.listeners {
		// Certificates are re-read with every applied config (and when
		// their files change); a broken file keeps the working set.
		if err := l.ReloadCerts(); err != nil {
			warnings = append(warnings, "listener "+l.Name()+": "+err.Error()+"; the previous certificates stay in use")
		}
	}
	d := time.Since(start)
	a.status.applied(src, snap.Version, d, warnings)
	prev := ""
	if old != nil {
		prev = old.Version
	}
	a.log.Info("config applied", "version", snap.Version, "previous", prev, "source", src, "routes", len(snap.Routes),
		"upstreams", len(snap.Upstreams), "took", d.String())
	for _, w := range warnings {
		a.log.Warn(w)
	}
	return nil
}

func (a *App) compileDeps() compile.Deps {
	return compile.Deps{Metrics: a.metrics, Log: a.log, Upgraded: &a.upgraded}
}

// activate makes snap the active config: it acquires the snapshot's claims
// (a promoted candidate holds them already), applies its upstream settings
// to the shared state, swaps it in (with its access log, nil for off) and
// releases the previous snapshot. It returns the previous
// snapshot.
func (a *App) activate(snap *gateway.Snapshot, al *telemetry.AccessLog) *gateway.Snapshot {
	snap.Acquire(a.registry)
	snap.Activate()
	old := a.store.Swap(snap)
	if old != nil && old != snap {
		old.Release()
	}
	if prev := a.access.Swap(al); prev != nil && prev != al {
		// Requests may still hold the old log; it is closed (and
		// flushed) at exit.
		a.retiredLogs = append(a.retiredLogs, prev)
	}
	keep := make(map[string]bool, len(snap.Routes))
	for _, r := range snap.Routes {
		keep[r.Name] = true
	}
	a.metrics.RetainRoutes(keep)
	if old != nil && old.Version != snap.Version {
		a.metrics.ConfigInfo.DeleteLabelValues(old.Version)
	}
	a.metrics.ConfigInfo.WithLabelValues(snap.Version).Set(1)
	a.versions.retain(snap.Version)
	return old
}

// refused records a config that was not applied: the metric, the log and
// the status all carry every problem.
func (a *App) refused(src string, err error) {
	a.metrics.Reloaded("error")
	ps := admin.Problems(err)
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Text
	}
	active := ""
	if s := a.store.Load(); s != nil {
		active = s.Version
	}
	a.log.Error("config refused; the active config keeps serving", "source", src, "active", active, "problems", lines)
	a.status.refused(src, ps)
}

// Reload re-reads the config file (or, for an etcd source, etcd) and
// applies it. A config that fails to load, validate or compile changes
// nothing; the error lists every problem.
func (a *App) Reload() error { return a.reloadFile(SourceSignal) }

// reloadFile reloads the config file. From the file watcher (src ==
// SourceFile) a file whose content did not change is left alone.
func (a *App) reloadFile(src string) error {
	if a.etcd != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		return a.etcdSync(ctx)
	}
	if a.opts.ConfigPath == "" {
		return fmt.Errorf("reload: the config was not read from a file")
	}
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	data, err := os.ReadFile(a.opts.ConfigPath)
	if err != nil {
		err = fmt.Errorf("read config: %w", err)
		a.refused(src, err)
		return err
	}
	sum := sha256.Sum256(data)
	if src == SourceFile && sum == a.fileSum {
		return nil
	}
	cfg, err := config.LoadBytes(a.opts.ConfigPath, data)
	if err != nil {
		a.refused(src, err)
		a.fileSum = sum // do not refuse the same content on every event
		return err
	}
	if err := a.apply(cfg, src); err != nil {
		a.fileSum = sum
		return err
	}
	a.fileSum = sum
	return nil
}

// ApplyConfig applies a config sent through the admin API. It is not
// written back to the config file.
func (a *App) ApplyConfig(doc admin.Document) (string, error) {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	if cur := a.store.Load(); doc.IfMatch != "" && (cur == nil || cur.Version != doc.IfMatch) {
		return "", admin.ErrVersionMismatch
	}
	cfg, err := config.LoadBytes(doc.Name, doc.Data)
	if err != nil {
		a.refused(SourceAPI, err)
		return "", err
	}
	if err := a.apply(cfg, SourceAPI); err != nil {
		return "", err
	}
	return a.store.Load().Version, nil
}

// listenerKey identifies what bind made of cfg.
func listenerKey(cfg *config.Config) string {
	return fmt.Sprintf("%+v|%s|%s", cfg.Listeners, cfg.Admin.Address, cfg.PIDFile)
}

// background starts the config sources and the candidate judge; each
// stops when ctx is done and wg is released.
func (a *App) background(ctx context.Context, wg *sync.WaitGroup) {
	run := func(name string, f func(context.Context)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					a.log.Error("background task panicked", "task", name, "panic", fmt.Sprint(p))
				}
			}()
			f(ctx)
		}()
	}
	if a.opts.Watch && a.opts.ConfigPath != "" && a.etcd == nil {
		run("file watch", func(ctx context.Context) {
			w := &source.File{Path: a.opts.ConfigPath, Log: a.log}
			err := w.Watch(ctx, func() {
				// Refusals are logged and recorded by reloadFile.
				a.reloadFile(SourceFile)
			})
			if err != nil {
				a.log.Error("config file watch stopped; SIGHUP still reloads", "err", err.Error())
			}
		})
	}
	if a.etcd != nil {
		run("etcd watch", a.etcdLoop)
	}
	run("candidate judge", a.judgeLoop)
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// tracerFlush bounds the export of a retired tracer's queued spans.
const tracerFlush = 5 * time.Second

// nextTracer returns the tracer cfg asks for: nil with tracing off, the
// current one when cfg's tracing is unchanged, else a new one (which
// exports nothing until setTracer makes it current). A tracer that cannot
// be built (a TLS file) refuses the config.
func (a *App) nextTracer(cfg *config.Config) (*tracing.Tracer, error) {
	t := cfg.Observability.Tracing
	if t == nil {
		return nil, nil
	}
	if cur := a.tracer.Load(); cur.Same(t) {
		return cur, nil
	}
	tr, err := tracing.New(tracing.Config{Tracing: *t, Dropped: a.spansDropped, Log: a.log})
	if ke := (*tracing.KeyError)(nil); errors.As(err, &ke) {
		return nil, config.Errors{cfg.Errorf("observability.tracing."+ke.Key, "%v", ke.Err)}
	}
	if err != nil {
		return nil, config.Errors{cfg.Errorf("observability.tracing", "%v", err)}
	}
	return tr, nil
}

// setTracer makes tr current; a replaced tracer exports what it holds,
// within tracerFlush, and shuts down in the background (requests still
// running on it end their spans into it meanwhile).
func (a *App) setTracer(tr *tracing.Tracer) {
	old := a.tracer.Swap(tr)
	if old == nil || old == tr {
		return
	}
	a.tracerWG.Add(1)
	go func() {
		defer a.tracerWG.Done()
		defer func() {
			if p := recover(); p != nil {
				a.log.Error("tracing: shutting down a retired tracer panicked", "panic", fmt.Sprint(p))
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), tracerFlush)
		defer cancel()
		if err := old.Shutdown(ctx); err != nil {
			a.log.Warn("tracing: retired tracer shut down before all spans were exported", "err", err.Error())
		}
	}()
}

// stopTracing shuts the current tracer down (flushing within tracerFlush)
// and waits for the retired ones.
func (a *App) stopTracing() {
	a.setTracer(nil)
	a.tracerWG.Wait()
}

// dropTracer shuts down tr, built by nextTracer for a config that was not
// applied after all.
func (a *App) dropTracer(tr *tracing.Tracer) {
	if tr != nil && tr != a.tracer.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		tr.Shutdown(ctx)
	}
}
