// Package app owns the gateway's life cycle: it loads and compiles config,
// binds the listeners and the admin API, swaps snapshots on reload, and
// drains gracefully on shutdown. Data flows one way: source -> parse ->
// validate -> compile -> atomic swap -> serve.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-gw/rampart/internal/admin"
	"github.com/rampart-gw/rampart/internal/cluster"
	"github.com/rampart-gw/rampart/internal/compile"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/gateway"
	"github.com/rampart-gw/rampart/internal/listener"
	"github.com/rampart-gw/rampart/internal/proxy"
	"github.com/rampart-gw/rampart/internal/telemetry"
)

// Options configure an App.
type Options struct {
	// ConfigPath is the config file to load (and reload on SIGHUP).
	ConfigPath string
	// Config, when set, is used instead of reading ConfigPath (the demo).
	Config *config.Config
	// Log is the process logger (default slog.Default()).
	Log *slog.Logger
}

// App is a running gateway.
type App struct {
	opts     Options
	log      *slog.Logger
	metrics  *telemetry.Metrics
	clusters *cluster.Manager
	store    gateway.Store
	upgraded proxy.ConnSet
	access   atomic.Pointer[telemetry.AccessLog]
	// retiredLogs are access logs replaced by a reload, closed at exit.
	retiredLogs []*telemetry.AccessLog

	listeners []*listener.Listener
	adminSrv  *http.Server
	adminLn   net.Listener

	reloadMu sync.Mutex
	draining atomic.Bool
	serving  atomic.Bool
}

// New loads and compiles the config and binds every listener, so that
// configuration and port problems surface before anything is served.
func New(opts Options) (*App, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	a := &App{opts: opts, log: opts.Log, metrics: telemetry.NewMetrics()}
	a.clusters = cluster.NewManager(cluster.Deps{Metrics: a.metrics, Log: a.log})
	cfg := opts.Config
	if cfg == nil {
		var err error
		cfg, err = config.Load(opts.ConfigPath)
		if err != nil {
			return nil, err
		}
	}
	if err := a.apply(cfg); err != nil {
		return nil, err
	}
	if err := a.bind(cfg); err != nil {
		a.closeListeners()
		return nil, err
	}
	return a, nil
}

// apply compiles cfg and makes it active.
func (a *App) apply(cfg *config.Config) error {
	snap, err := compile.Build(cfg, compile.Deps{Clusters: a.clusters, Metrics: a.metrics, Log: a.log, Upgraded: &a.upgraded})
	if err != nil {
		a.metrics.ConfigReloads.WithLabelValues("error").Inc()
		return err
	}
	al, err := telemetry.OpenAccessLog(cfg.Observability.AccessLog.Path)
	if err != nil {
		a.metrics.ConfigReloads.WithLabelValues("error").Inc()
		return err
	}
	old := a.store.Swap(snap)
	if prev := a.access.Swap(al); prev != nil {
		// Requests may still hold the old log; it is closed at exit.
		a.retiredLogs = append(a.retiredLogs, prev)
	}
	a.clusters.Activate(snap.Upstreams)
	a.metrics.ConfigReloads.WithLabelValues("ok").Inc()
	if old != nil {
		a.metrics.ConfigInfo.DeleteLabelValues(old.Version)
	}
	a.metrics.ConfigInfo.WithLabelValues(snap.Version).Set(1)
	a.log.Info("config applied", "version", snap.Version, "routes", len(snap.Routes), "upstreams", len(snap.Upstreams))
	return nil
}

// Reload re-reads the config file and applies it. A config that fails to
// load, validate or compile changes nothing; the error lists every problem.
func (a *App) Reload() error {
	if a.opts.ConfigPath == "" {
		return errors.New("no config file to reload")
	}
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	cfg, err := config.Load(a.opts.ConfigPath)
	if err != nil {
		a.metrics.ConfigReloads.WithLabelValues("error").Inc()
		return err
	}
	return a.apply(cfg)
}

func (a *App) bind(cfg *config.Config) error {
	for _, lc := range cfg.Listeners {
		if lc.Protocol != "" && lc.Protocol != "http" {
			return fmt.Errorf("listener %s: protocol %q is not available in this release", lc.Name, lc.Protocol)
		}
		if lc.TLS != nil {
			return fmt.Errorf("listener %s: tls is not available in this release", lc.Name)
		}
		h := gateway.NewHandler(gateway.HandlerConfig{Listener: lc.Name, Limits: lc.Limits},
			gateway.HandlerDeps{Store: &a.store, Metrics: a.metrics, AccessLog: a.access.Load})
		l, err := listener.Listen(listener.Config{Name: lc.Name, Address: lc.Address, Limits: lc.Limits}, h,
			listener.Deps{Metrics: a.metrics, Log: a.log})
		if err != nil {
			return fmt.Errorf("listener %s: %w", lc.Name, err)
		}
		a.listeners = append(a.listeners, l)
	}
	if addr := cfg.Admin.Address; addr != "" && addr != "off" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("admin: %w", err)
		}
		a.adminLn = ln
		a.adminSrv = &http.Server{
			Handler:           admin.New(admin.Deps{Store: &a.store, Metrics: a.metrics, Ready: a.Ready}),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
		}
	}
	return nil
}

func (a *App) closeListeners() {
	for _, l := range a.listeners {
		l.Close()
	}
	if a.adminLn != nil {
		a.adminLn.Close()
	}
}

// Ready reports whether the gateway accepts traffic.
func (a *App) Ready() bool {
	return a.serving.Load() && !a.draining.Load() && a.store.Load() != nil
}

// ListenerAddr returns the bound address of the listener named name.
func (a *App) ListenerAddr(name string) string {
	for _, l := range a.listeners {
		if l.Name() == name {
			return l.Addr().String()
		}
	}
	return ""
}

// AdminAddr returns the admin API's bound address, or "".
func (a *App) AdminAddr() string {
	if a.adminLn == nil {
		return ""
	}
	return a.adminLn.Addr().String()
}

// Snapshot returns the active snapshot.
func (a *App) Snapshot() *gateway.Snapshot { return a.store.Load() }

// Run serves until ctx is done, then drains: readiness turns 503, listeners
// stop accepting, in-flight requests (and upgraded connections) get up to
// drain_timeout to finish, and whatever remains is closed. Reload requests
// arrive on reload.
func (a *App) Run(ctx context.Context, reload <-chan struct{}) error {
	errc := make(chan error, len(a.listeners)+1)
	var wg sync.WaitGroup
	for _, l := range a.listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					errc <- fmt.Errorf("listener %s panicked: %v", l.Name(), p)
				}
			}()
			if err := l.Serve(); err != nil {
				errc <- fmt.Errorf("listener %s: %w", l.Name(), err)
			}
		}()
		a.log.Info("listening", "listener", l.Name(), "address", l.Addr().String())
	}
	if a.adminSrv != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.adminSrv.Serve(a.adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("admin: %w", err)
			}
		}()
		a.log.Info("admin API listening", "address", a.adminLn.Addr().String())
	}
	a.serving.Store(true)

	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-errc:
			runErr = err
			break loop
		case <-reload:
			if err := a.Reload(); err != nil {
				a.log.Error("config reload refused; the previous config keeps serving", "err", err.Error())
			}
		}
	}
	a.drain()
	wg.Wait()
	a.clusters.Close()
	a.access.Load().Close()
	for _, al := range a.retiredLogs {
		al.Close()
	}
	return runErr
}

func (a *App) drain() {
	a.draining.Store(true)
	timeout := 30 * time.Second
	if s := a.store.Load(); s != nil && s.Config.DrainTimeout > 0 {
		timeout = s.Config.DrainTimeout.D()
	}
	a.log.Info("draining", "timeout", timeout.String())
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, l := range a.listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Shutdown(ctx); err != nil {
				a.log.Warn("drain timed out; closing remaining connections", "listener", l.Name())
			}
		}()
	}
	wg.Wait()
	// Upgraded connections are not tracked by http.Server: give them the
	// rest of the drain window, then close them.
	for a.upgraded.Len() > 0 && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	a.upgraded.CloseAll()
	if a.adminSrv != nil {
		actx, acancel := context.WithTimeout(context.Background(), time.Second)
		a.adminSrv.Shutdown(actx)
		acancel()
	}
	a.log.Info("drained")
}
