package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-gw/rampart/internal/cluster/breaker"
	"github.com/rampart-gw/rampart/internal/cluster/health"
	"github.com/rampart-gw/rampart/internal/cluster/outlier"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/proxyproto"
	"github.com/rampart-gw/rampart/internal/telemetry"
)

// state is everything about an upstream that outlives a snapshot: breaker
// counters, outlier and active health state. One per upstream name, shared
// through the registry by every snapshot that has the upstream. gen counts
// changes of target eligibility; each snapshot's Upstream rebuilds its
// balancer when it moves.
type state struct {
	name    string
	metrics *telemetry.Metrics
	log     *slog.Logger

	mu         sync.Mutex
	breakerKey string
	breaker    atomic.Pointer[breaker.Breaker]
	// trip is the failure-tripped breaker (nil without circuit_breaker.trip)
	// and tripFail the statuses that count as its failures.
	trip       atomic.Pointer[breaker.Trip]
	tripFail   atomic.Pointer[breaker.StatusSet]
	outlierKey string
	outlier    atomic.Pointer[outlier.Detector]
	healthKey  string
	health     atomic.Pointer[health.Checker]
	// pending holds components built for a candidate snapshot that are not
	// running yet; start starts them.
	startOutlier bool
	startHealth  bool
	oldHealth    *health.Checker
	stopOutlier  context.CancelFunc

	gen atomic.Uint64
	// addrs are the targets of the settings last configured, or those
	// discovery found last (for gauges).
	addrs atomic.Pointer[addrList]
	// disc is the discovery whose addresses the state follows (nil: the
	// configured targets). s.mu guards it.
	disc   *discEntry
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newState(name string, metrics *telemetry.Metrics, log *slog.Logger) *state {
	return &state{name: name, metrics: metrics, log: log}
}

// configure makes the state's components match cfg, keeping each one whose
// settings did not change (and with it its counters and health verdicts).
// With disc set the targets are discovery's, and the state follows them
// from now on; otherwise they are addrs. Nothing is started here; start
// does that.
func (s *state) configure(cfg *config.Upstream, addrs []string, disc *discEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if disc != s.disc {
		if s.disc != nil {
			s.disc.detach(s)
			if disc == nil {
				forgetDiscovery(s.metrics, s.name)
			}
		}
		s.disc = disc
		if disc != nil {
			addrs = disc.attach(s)
		}
	} else if disc != nil {
		addrs = disc.live.Load().addrs
	}
	defer s.changed("")

	var bc breaker.Config
	if cb := cfg.CircuitBreaker; cb != nil {
		bc = breaker.Config{MaxConnections: cb.MaxConnections, MaxPendingRequests: cb.MaxPendingRequests,
			MaxRequests: cb.MaxRequests, MaxRetries: cb.MaxRetries}
	}
	if k := fmt.Sprint(bc); k != s.breakerKey || s.breaker.Load() == nil {
		s.breakerKey = k
		s.breaker.Store(breaker.New(bc))
	}

	s.configureTrip(cfg)

	var passive *config.PassiveHealth
	var active *config.ActiveHealth
	if cfg.HealthCheck != nil {
		passive, active = cfg.HealthCheck.Passive, cfg.HealthCheck.Active
	}
	if passive == nil {
		s.outlierKey = ""
		s.outlier.Store(nil)
	} else {
		oc := outlierConfig(passive)
		if k := fmt.Sprint(oc); k != s.outlierKey || s.outlier.Load() == nil {
			s.outlierKey = k
			d := outlier.New(oc, outlier.Deps{OnChange: s.onOutlier, Logger: s.log})
			// New settings restart the counters; ejections made under the
			// old settings end with the old detector.
			s.outlier.Store(d)
			s.startOutlier = true
		}
	}

	if active == nil {
		if old := s.health.Swap(nil); old != nil {
			s.oldHealth = old
		}
		s.healthKey = ""
	} else {
		hc := health.Config{Path: active.Path, Interval: active.Interval.D(), Timeout: active.Timeout.D(),
			HealthyThreshold: active.HealthyThreshold, UnhealthyThreshold: active.UnhealthyThreshold}
		if cfg.TLS != nil {
			hc.Scheme = "https"
		}
		// A gRPC check asks the standard health service over HTTP/2;
		// without it or a path the probe is a TCP connect, with send and
		// expect when set.
		if g := active.GRPC; g != nil {
			hc.GRPC, hc.GRPCService = true, g.Service
		}
		hc.TCP = active.Path == "" && !hc.GRPC
		if hc.TCP {
			hc.Send, hc.Expect = []byte(active.Send), []byte(active.Expect)
			if v := proxyVersion(cfg.ProxyProtocol); v != 0 {
				// Targets that want a PROXY header get one that says
				// the connection is the gateway's own (HAProxy's
				// check-send-proxy).
				hc.Preamble = proxyproto.Append(nil, v, true, netip.AddrPort{}, netip.AddrPort{})
			}
		}
		// A checker is replaced only when its kind of probe changes;
		// other settings are applied in place so verdicts survive.
		kind := hc.Scheme + "|" + fmt.Sprint(hc.TCP) + "|" + fmt.Sprint(cfg.TLS)
		if hc.GRPC {
			kind += "|grpc|" + cfg.Protocol
		}
		c := s.health.Load()
		if c == nil || kind != s.healthKey {
			deps := health.Deps{OnChange: s.onHealth, Logger: s.log}
			if hc.GRPC || (cfg.TLS != nil && !hc.TCP) {
				// The upstream's own kind of connection (h2c, h2 or TLS
				// with ALPN), in a pool of the checker's own.
				if t, err := newTransport(cfg, nil); err == nil {
					deps.Transport, deps.CloseTransport = t, true
				}
			}
			if cfg.TLS != nil && hc.TCP {
				if tc, err := tlsConfig(cfg); err == nil {
					deps.TLS = tc
				}
			}
			if c != nil {
				s.oldHealth = c
			}
			c = health.New(hc, deps)
			s.health.Store(c)
			s.healthKey = kind
			s.startHealth = true
		} else {
			c.Reconfigure(hc)
		}
	}
	s.setAddrs(addrs)
}

// setAddrs makes health checks and outlier detection cover addrs; those
// that stay keep their state. s.mu held.
func (s *state) setAddrs(addrs []string) {
	s.addrs.Store(&addrList{addrs})
	if d := s.outlier.Load(); d != nil {
		d.Update(addrs)
	}
	if c := s.health.Load(); c != nil {
		c.Update(addrs)
	}
}

// configureTrip makes the failure-tripped breaker match cfg: made on first
// use, reconfigured in place (its state kept) when settings change, and
// dropped when the key is removed. s.mu held.
func (s *state) configureTrip(cfg *config.Upstream) {
	var tc *config.CircuitTrip
	if cfg.CircuitBreaker != nil {
		tc = cfg.CircuitBreaker.Trip
	}
	if tc == nil {
		s.trip.Store(nil)
		s.tripFail.Store(nil)
		return
	}
	set := new(breaker.StatusSet)
	for _, st := range tc.Statuses {
		if lo, hi, err := config.ParseStatusRange(st); err == nil {
			set.AddRange(lo, hi)
		}
	}
	c := breaker.TripConfig{ConsecutiveFailures: tc.ConsecutiveFailures, FailureRatio: tc.FailureRatio,
		MinRequests: tc.MinRequests, Window: tc.Window.D(), OpenFor: tc.OpenFor.D(), MaxOpenFor: tc.MaxOpenFor.D(),
		HalfOpenRequests: tc.HalfOpenRequests, OnChange: s.onTrip}
	s.tripFail.Store(set)
	if t := s.trip.Load(); t != nil {
		t.SetConfig(c)
		return
	}
	s.trip.Store(breaker.NewTrip(c))
}

// onTrip logs each transition of the failure-tripped breaker and keeps
// rampart_upstream_circuit_open current (1 while open or half-open). It
// runs under the breaker's lock: nothing here calls back into it.
func (s *state) onTrip(tr breaker.Transition) {
	attrs := []any{"upstream", s.name, "from", tr.From.String(), "to", tr.To.String(), "reason", tr.Reason.String()}
	if tr.To == breaker.StateOpen {
		attrs = append(attrs, "until", tr.Until, "failures", tr.Failures, "requests", tr.Requests)
	}
	if tr.To == breaker.StateClosed {
		s.log.Info("circuit closed", attrs...)
	} else {
		s.log.Warn("circuit "+tr.To.String(), attrs...)
	}
	if s.metrics != nil {
		v := 0.0
		if tr.To != breaker.StateClosed {
			v = 1
		}
		s.metrics.CircuitOpen.WithLabelValues(s.name).Set(v)
	}
}

// start starts what configure built and is not running yet.
func (s *state) start() {
	s.mu.Lock()
	if s.ctx == nil {
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.wg.Add(1)
		go s.gauges()
	}
	if s.startOutlier {
		s.startOutlier = false
		if s.stopOutlier != nil {
			s.stopOutlier() // the detector it ran for was replaced
		}
		if d := s.outlier.Load(); d != nil {
			ctx, cancel := context.WithCancel(s.ctx)
			s.stopOutlier = cancel
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				d.Run(ctx)
			}()
		}
	}
	if s.outlier.Load() == nil && s.stopOutlier != nil {
		s.stopOutlier() // passive health checking was removed
		s.stopOutlier = nil
	}
	if s.startHealth {
		s.startHealth = false
		if c := s.health.Load(); c != nil {
			c.Start(s.ctx)
		}
	}
	old := s.oldHealth
	s.oldHealth = nil
	s.mu.Unlock()
	if old != nil {
		old.Close()
	}
}

// gauges keeps rampart_upstream_circuit_open current.
func (s *state) gauges() {
	defer s.wg.Done()
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("upstream gauge loop panicked", "upstream", s.name, "panic", r)
		}
	}()
	if s.metrics == nil {
		<-s.ctx.Done()
		return
	}
	g := s.metrics.CircuitOpen.WithLabelValues(s.name)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		open := s.breaker.Load().Open()
		if t := s.trip.Load(); t != nil {
			if st, _ := t.State(); st != breaker.StateClosed {
				open = true
			}
		}
		if open {
			g.Set(1)
		} else {
			g.Set(0)
		}
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *state) onOutlier(addr string, ejected bool) {
	if ejected {
		s.log.Warn("target ejected", "upstream", s.name, "target", addr)
		if s.metrics != nil {
			s.metrics.Events.OutlierEjections.WithLabelValues(s.name, addr).Inc()
		}
	} else {
		s.log.Info("target re-admitted", "upstream", s.name, "target", addr)
	}
	s.changed(addr)
}

func (s *state) onHealth(addr string, healthy bool) {
	s.log.Info("target health changed", "upstream", s.name, "target", addr, "healthy", healthy)
	s.changed(addr)
}

// changed records that addr's eligibility may have changed ("" for every
// target): every snapshot's balancer rebuilds at its next pick, and the
// target's rampart_upstream_target_healthy gauge follows.
func (s *state) changed(addr string) {
	s.gen.Add(1)
	if s.metrics == nil {
		return
	}
	set := func(a string) {
		v := 0.0
		if s.available(a) {
			v = 1
		}
		s.metrics.TargetHealthy.WithLabelValues(s.name, a).Set(v)
	}
	if addr != "" {
		set(addr)
		return
	}
	for _, a := range s.addrs.Load().list {
		set(a)
	}
}

// available reports whether addr may get traffic: healthy and not ejected.
func (s *state) available(addr string) bool {
	if !s.healthy(addr) {
		return false
	}
	ej, _ := s.ejected(addr)
	return !ej
}

// healthy reports the active health verdict for addr.
func (s *state) healthy(addr string) bool {
	if c := s.health.Load(); c != nil {
		return c.Healthy(addr)
	}
	return true
}

// ejected reports whether outlier detection ejected addr, and until when.
func (s *state) ejected(addr string) (bool, time.Time) {
	if d := s.outlier.Load(); d != nil && d.Ejected(addr) {
		return true, d.EjectedUntil(addr)
	}
	return false, time.Time{}
}

type addrList struct{ list []string }

// Close stops everything the state runs (the registry calls it when the
// last snapshot that has the upstream is retired).
func (s *state) Close() { s.close() }

// close stops everything the state runs.
func (s *state) close() {
	s.mu.Lock()
	if s.disc != nil {
		s.disc.detach(s)
		s.disc = nil
	}
	cancel := s.cancel
	old := s.oldHealth
	s.oldHealth = nil
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if c := s.health.Load(); c != nil {
		c.Close()
	}
	if old != nil {
		old.Close()
	}
	s.wg.Wait()
	if s.metrics != nil {
		s.metrics.CircuitOpen.DeleteLabelValues(s.name)
	}
	forgetDiscovery(s.metrics, s.name)
}

// OverflowError is returned when the upstream's circuit breaker refuses a
// new connection or a request waiting for one.
type OverflowError struct{ Resource breaker.Resource }

func (e *OverflowError) Error() string {
	return "circuit breaker: " + e.Resource.String() + " limit reached"
}

// limitedConn releases its breaker connection slot on Close.
type limitedConn struct {
	net.Conn
	b    *breaker.Breaker
	once sync.Once
}

func (c *limitedConn) Close() error {
	c.once.Do(c.b.ReleaseConnection)
	return c.Conn.Close()
}

// Unwrap returns the connection beneath (the L4 proxy splices on it).
func (c *limitedConn) Unwrap() net.Conn { return c.Conn }

// CloseWrite half-closes the connection beneath, when it can.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// outlierConfig is the detector's config for config's passive health
// check, whose defaults config applied. Config's values carry over as
// they are, but for max_ejection_percent: 0, which ejects no target,
// where the detector's zero field means the default.
func outlierConfig(p *config.PassiveHealth) outlier.Config {
	pct := p.MaxEjectionPercent
	if pct == 0 {
		pct = -1
	}
	return outlier.Config{Consecutive5xx: p.Consecutive5xx, ConsecutiveConnectFailures: p.ConsecutiveConnectFailures,
		Interval: p.Interval.D(), BaseEjectionTime: p.BaseEjectionTime.D(),
		MaxEjectionTime: p.MaxEjectionTime.D(), MaxEjectionPercent: pct}
}
