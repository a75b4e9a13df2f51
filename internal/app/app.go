// Package app owns the gateway's life cycle: it loads and compiles config,
// binds the listeners and the admin API, swaps snapshots on reload, and
// drains gracefully on shutdown. Data flows one way: source -> parse ->
// validate -> compile -> atomic swap -> serve.
package app

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampart-gw/rampart/internal/admin"
	"github.com/rampart-gw/rampart/internal/clientip"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/gateway"
	"github.com/rampart-gw/rampart/internal/l4"
	"github.com/rampart-gw/rampart/internal/listener"
	"github.com/rampart-gw/rampart/internal/proxy"
	"github.com/rampart-gw/rampart/internal/registry"
	"github.com/rampart-gw/rampart/internal/source"
	"github.com/rampart-gw/rampart/internal/telemetry"
	"github.com/rampart-gw/rampart/internal/telemetry/tracing"
	"github.com/rampart-gw/rampart/internal/upgrade"
)

// Options configure an App.
type Options struct {
	// ConfigPath is the config file to load (and reload on SIGHUP).
	ConfigPath string
	// Config, when set, is used instead of reading ConfigPath (the demo).
	Config *config.Config
	// Watch reloads ConfigPath when the file changes (debounced).
	Watch bool
	// Etcd, when set, is the config source instead of ConfigPath: the
	// config is read from etcd, watched, and cached in CacheDir.
	Etcd *source.EtcdConfig
	// CacheDir holds the last config applied from etcd. Default
	// source.DefaultCacheDir().
	CacheDir string
	// EtcdStartTimeout bounds reading etcd at start-up before falling back
	// to the cache. Default 5s.
	EtcdStartTimeout time.Duration
	// AutoRollbackInterval is how often a staged candidate is judged.
	// Default 250ms.
	AutoRollbackInterval time.Duration
	// Log is the process logger (default slog.Default()).
	Log *slog.Logger
	// Inherited holds the listening sockets handed over by the process
	// this one upgrades; nil binds everything afresh.
	Inherited *upgrade.Inherited
	// Args are the command-line arguments a binary upgrade starts the new
	// binary with. Default os.Args[1:].
	Args []string
}

// App is a running gateway.
type App struct {
	opts    Options
	log     *slog.Logger
	metrics *telemetry.Metrics
	// registry holds the state that outlives snapshots (targets, pools,
	// health, breakers, budgets, policy state); each snapshot acquires
	// what it claims and releases it when retired.
	registry *registry.Registry
	store    gateway.Store
	upgraded proxy.ConnSet
	access   atomic.Pointer[telemetry.AccessLog]
	// retiredLogs are access logs replaced by a reload, closed at exit.
	retiredLogs []*telemetry.AccessLog
	// tracer is the active config's tracing (nil: off); spansDropped is
	// rampart_tracing_spans_dropped_total, shared by every tracer; retired
	// tracers flush and shut down in the background, tracked by tracerWG.
	tracer       atomic.Pointer[tracing.Tracer]
	spansDropped prometheus.Counter
	tracerWG     sync.WaitGroup

	listeners []server
	// tcp are the L4 proxy's metrics, registered whether or not a tcp
	// listener is configured (docs/operations.md lists them).
	tcp      *l4.Metrics
	adminSrv *http.Server
	adminLn  net.Listener

	// reloadMu serialises every change of the active or candidate
	// snapshot; requests never take it.
	reloadMu sync.Mutex
	draining atomic.Bool
	serving  atomic.Bool
	// drainReq is closed (once) by POST /api/v1/drain: Run then drains as
	// on SIGTERM.
	drainReq  chan struct{}
	drainOnce sync.Once
	// upgradeMu allows one binary upgrade at a time; handedOver is set once
	// a new process serves, so that the drain is a hand-over (no drain
	// delay, no systemd STOPPING, the pid file left to the new process).
	upgradeMu  sync.Mutex
	handedOver atomic.Bool
	// pidFile is the pid file this process wrote, if any.
	pidFile string
	// boundAddr is the configured address each listener (and adminKey)
	// was bound with: a hand-over names sockets by it.
	boundAddr map[string]string

	status   statusBook
	versions versionBook
	cand     *candidate // guarded by reloadMu
	// candGauge is rampart_config_candidate_percent; its series are
	// guarded by reloadMu.
	candGauge *prometheus.GaugeVec
	// fileSum is the SHA-256 of the config file content last applied, so
	// that watch events that do not change the content do nothing.
	fileSum [32]byte
	// bound is the listener set that was bound at start-up.
	bound string

	etcd      *source.Etcd
	etcdCache *source.Cache
	// etcdRev is the etcd revision last seen (applied or refused).
	etcdRev atomic.Int64
}

// New loads and compiles the config and binds every listener, so that
// configuration and port problems surface before anything is served.
func New(opts Options) (*App, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	a := &App{opts: opts, log: opts.Log, metrics: telemetry.NewMetrics(), registry: registry.New(), drainReq: make(chan struct{})}
	a.versions.init(a.metrics)
	a.tcp = l4.NewMetrics(a.metrics)
	a.candGauge = newCandidateGauge(a.metrics)
	a.metrics.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "rampart_ready", Help: "1 while the gateway accepts traffic (GET /readyz answers 200): serving an active config and not draining.",
	}, func() float64 {
		if a.Ready() {
			return 1
		}
		return 0
	}))
	a.spansDropped = tracing.NewDropped()
	a.metrics.MustRegister(a.spansDropped)
	a.store.SetObserver(&a.versions)
	var err error
	switch {
	case opts.Config != nil:
		err = a.apply(opts.Config, SourceStartup)
	case opts.Etcd != nil:
		err = a.startEtcd()
	default:
		err = a.startFile()
	}
	if err != nil {
		a.registry.Close()
		if a.etcd != nil {
			a.etcd.Close()
		}
		a.stopTracing()
		return nil, err
	}
	cfg := a.store.Load().Config
	a.bound = listenerKey(cfg)
	if err := a.bind(cfg); err != nil {
		a.closeListeners()
		a.registry.Close()
		a.stopTracing()
		return nil, err
	}
	return a, nil
}

// startFile loads the config file for the first time.
func (a *App) startFile() error {
	data, err := os.ReadFile(a.opts.ConfigPath)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	cfg, err := config.LoadBytes(a.opts.ConfigPath, data)
	if err != nil {
		a.refused(SourceStartup, err)
		return err
	}
	if err := a.apply(cfg, SourceStartup); err != nil {
		return err
	}
	a.fileSum = sha256.Sum256(data)
	return nil
}

func (a *App) bind(cfg *config.Config) error {
	a.boundAddr = map[string]string{}
	// Keys that are not built were refused by config validation,
	// positioned, before anything was applied.
	if err := checkBufferDirs(cfg); err != nil {
		return err
	}
	for _, lc := range cfg.Listeners {
		if lc.Protocol == "tcp" {
			trusted := make([]netip.Prefix, 0, len(lc.TrustedProxies))
			for _, s := range lc.TrustedProxies {
				if p, err := config.ParsePrefix(s); err == nil { // Validate refused the others
					trusted = append(trusted, p)
				}
			}
			l, err := l4.Listen(l4.Config{Name: lc.Name, Address: lc.Address, ReusePort: lc.ReusePort, Upstream: lc.Upstream, Limits: lc.Limits,
				TrustedProxies: trusted, TLS: lc.TLS},
				l4.Deps{Store: &a.store, Metrics: a.tcp, Telemetry: a.metrics, Log: a.log, Bind: func(name, address string, reusePort bool) (net.Listener, error) {
					return a.opts.Inherited.Listen(upgrade.Key(name, address), address, reusePort)
				}})
			if err != nil {
				return fmt.Errorf("listener %s: %w", lc.Name, err)
			}
			a.listeners = append(a.listeners, l)
			a.boundAddr[lc.Name] = lc.Address
			continue
		}
		clients, err := clientip.New(lc.TrustedProxies)
		if err != nil {
			return fmt.Errorf("listener %s: trusted_proxies: %w", lc.Name, err)
		}
		hc := gateway.HandlerConfig{Listener: lc.Name, Limits: lc.Limits, Clients: clients, Explain: lc.Explain}
		if lc.TLS != nil {
			hc.TLSState = listener.TLSState
		}
		h := gateway.NewHandler(hc, gateway.HandlerDeps{Store: &a.store, Metrics: a.metrics, AccessLog: a.access.Load, Tracer: &a.tracer})
		l, err := listener.Listen(listener.Config{Name: lc.Name, Address: lc.Address, Limits: lc.Limits, TLS: lc.TLS, ReusePort: lc.ReusePort, HTTP3: lc.HTTP3}, h,
			listener.Deps{Metrics: a.metrics, Log: a.log, AccessLog: a.access.Load, Bind: func(c listener.Config) (net.Listener, error) {
				return a.opts.Inherited.Listen(upgrade.Key(c.Name, c.Address), c.Address, c.ReusePort)
			}})
		if err != nil {
			return fmt.Errorf("listener %s: %w", lc.Name, err)
		}
		a.listeners = append(a.listeners, l)
		a.boundAddr[lc.Name] = lc.Address
	}
	if addr := cfg.Admin.Address; addr != "" && addr != "off" {
		ln, err := a.opts.Inherited.Listen(upgrade.Key(adminKey, addr), addr, false)
		if err != nil {
			return fmt.Errorf("admin: %w", err)
		}
		a.adminLn = ln
		a.boundAddr[adminKey] = addr
		a.adminSrv = &http.Server{
			Handler:           admin.New(admin.Deps{Store: &a.store, Metrics: a.metrics, Ready: a.Ready, Control: a, Drain: a.RequestDrain, Upgrade: a.Upgrade}),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
		}
	}
	return nil
}

// server is a bound listener of either protocol: http (internal/listener)
// or tcp (internal/l4).
type server interface {
	Name() string
	Addr() net.Addr
	// Serve accepts until Shutdown or Close.
	Serve() error
	// Shutdown stops accepting and lets open connections finish until
	// ctx ends, then closes them.
	Shutdown(ctx context.Context) error
	Close() error
	// File duplicates the listening socket for a binary upgrade.
	File() (*os.File, error)
	ReloadCerts() error
}

var (
	_ server = (*listener.Listener)(nil)
	_ server = (*l4.Listener)(nil)
)

// checkBufferDirs refuses, with its position, a listener's
// limits.buffer_dir that is not a directory: request_buffering would
// otherwise find out on the first large body. (Validate does no I/O, so
// that a config can be checked away from the machine that runs it.)
func checkBufferDirs(cfg *config.Config) error {
	var errs config.Errors
	for i, lc := range cfg.Listeners {
		dir := lc.Limits.BufferDir
		if dir == "" {
			continue
		}
		path := fmt.Sprintf("listeners[%d].limits.buffer_dir", i)
		switch fi, err := os.Stat(dir); {
		case err != nil:
			errs = append(errs, cfg.Errorf(path, "%v", err))
		case !fi.IsDir():
			errs = append(errs, cfg.Errorf(path, "%s is not a directory", dir))
		}
	}
	if len(errs) > 0 {
		return errs
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
			defer func() {
				if p := recover(); p != nil {
					a.log.Error("admin API panicked; stopping the gateway", "panic", fmt.Sprint(p))
					errc <- fmt.Errorf("admin panicked: %v", p)
				}
			}()
			if err := a.adminSrv.Serve(a.adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("admin: %w", err)
			}
		}()
		a.log.Info("admin API listening", "address", a.adminLn.Addr().String())
	}
	a.serving.Store(true)
	a.ready()

	// Config sources and the candidate judge run until Run returns.
	bgCtx, bgCancel := context.WithCancel(ctx)
	var bg sync.WaitGroup
	a.background(bgCtx, &bg)

	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-a.drainReq:
			a.log.Info("drain requested through the admin API")
			break loop
		case err := <-errc:
			runErr = err
			break loop
		case <-reload:
			// Refusals are logged and recorded by reloadFile.
			a.reloadFile(SourceSignal)
		}
	}
	bgCancel()
	bg.Wait()
	a.drain()
	wg.Wait()
	if a.etcd != nil {
		a.etcd.Close()
	}
	a.registry.Close()
	a.stopTracing()
	a.access.Load().Close()
	for _, al := range a.retiredLogs {
		al.Close()
	}
	if a.pidFile != "" && !a.handedOver.Load() {
		upgrade.RemovePID(a.pidFile, os.Getpid())
	}
	return runErr
}

// RequestDrain starts a drain, as SIGTERM does: Run drains and returns.
// Readiness turns 503 at once.
func (a *App) RequestDrain() {
	a.draining.Store(true)
	a.drainOnce.Do(func() { close(a.drainReq) })
}

// drain runs the shutdown sequence: readiness 503 at once; after
// drain_delay the listeners stop accepting, idle keep-alive connections
// close, busy ones get "Connection: close" on their next response and
// HTTP/2 connections a GOAWAY; in-flight requests get until drain_timeout.
// Upgraded connections get a clean goodbye shortly before drain_timeout
// (a WebSocket close frame, 1001 going away, each way) and are closed at
// drain_timeout.
func (a *App) drain() {
	a.draining.Store(true)
	// The active config's drain_timeout; config's default while none is
	// active (and for a zero value, as before).
	timeout, delay := config.DefaultDrainTimeout.D(), time.Duration(0)
	if s := a.store.Load(); s != nil {
		if s.Config.DrainTimeout > 0 {
			timeout = s.Config.DrainTimeout.D()
		}
		delay = s.Config.DrainDelay.D()
	}
	if a.handedOver.Load() {
		// The new process already accepts on the same sockets.
		delay = 0
	} else if err := upgrade.Notify("STOPPING=1"); err != nil {
		a.log.Warn("systemd notification failed", "err", err.Error())
	}
	if delay > 0 {
		a.log.Info("draining: readiness is 503; listeners close after the drain delay", "delay", delay.String())
		time.Sleep(delay)
	}
	a.log.Info("draining", "timeout", timeout.String())
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, l := range a.listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					a.log.Error("drain panicked; closing the listener's connections", "listener", l.Name(), "panic", fmt.Sprint(p))
					l.Close()
				}
			}()
			if err := l.Shutdown(ctx); err != nil {
				a.log.Warn("drain timed out; closing remaining connections", "listener", l.Name())
			}
		}()
	}
	// Upgraded connections are not tracked by the HTTP servers. They get
	// the drain window to end by themselves; then, a moment before it
	// ends, a goodbye; at its end, whatever remains is closed.
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() {
			if p := recover(); p != nil {
				a.log.Error("drain of upgraded connections panicked; closing them", "panic", fmt.Sprint(p))
				a.upgraded.CloseAll()
			}
		}()
		goodbyeAt := start.Add(timeout - goodbyeLead(timeout))
		waitUntil(ctx, goodbyeAt, func() bool { return a.upgraded.Len() == 0 })
		if n := a.upgraded.GoingAway(); n > 0 {
			a.log.Info("draining: closing upgraded connections (WebSocket close 1001)", "connections", n)
		}
		waitUntil(ctx, start.Add(timeout), func() bool { return a.upgraded.Len() == 0 })
		a.upgraded.CloseAll()
	}()
	wg.Wait()
	if a.adminSrv != nil {
		actx, acancel := context.WithTimeout(context.Background(), time.Second)
		a.adminSrv.Shutdown(actx)
		acancel()
	}
	a.log.Info("drained")
}

// goodbyeLead is how long before drain_timeout upgraded connections are
// asked to close: long enough for a close handshake, at most a quarter of
// the window.
func goodbyeLead(timeout time.Duration) time.Duration {
	return min(time.Second, timeout/4)
}

// waitUntil polls done until it is true, t passes or ctx ends.
func waitUntil(ctx context.Context, t time.Time, done func() bool) {
	for !done() && ctx.Err() == nil {
		d := time.Until(t)
		if d <= 0 {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(min(d, 50*time.Millisecond)):
		}
	}
}
