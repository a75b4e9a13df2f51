package health

import (
	"github.com/rampart-gw/rampart/internal/config"

	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for a zero Config field.
const (
	DefaultPath = "/"
	// The others are config's (package config is their home), for a
	// zero Config field.
	DefaultInterval           = time.Duration(config.DefaultHealthInterval)
	DefaultTimeout            = time.Duration(config.DefaultHealthTimeout)
	DefaultHealthyThreshold   = config.DefaultHealthyThreshold
	DefaultUnhealthyThreshold = config.DefaultUnhealthyThreshold
)

// Config is the active health check of one upstream.
type Config struct {
	// Path is requested with GET. Default "/".
	Path string
	// Host is sent as the Host header. Default: the target address.
	Host string
	// Scheme is "http" (default) or "https"; for https give Deps.Transport
	// the upstream's TLS settings.
	Scheme string
	// Interval is the time between probes of one target, ±10 % jitter.
	// Default 5 s (config.DefaultHealthInterval).
	Interval time.Duration
	// Timeout bounds one probe. Default 1 s, and never more than Interval.
	Timeout time.Duration
	// HealthyThreshold is the consecutive successes that mark an unhealthy
	// target healthy. Default 2.
	HealthyThreshold int
	// UnhealthyThreshold is the consecutive failures that mark a healthy
	// target unhealthy. Default 3.
	UnhealthyThreshold int
	// TCP probes with a TCP connect instead of an HTTP request. With Send
	// or Expect it also writes Send, and, with Expect, reads until the
	// answer contains Expect (at most MaxExpectRead bytes).
	TCP bool
	// Send is written once connected (TCP only). Default: nothing.
	Send []byte
	// Expect must be contained in what the target answers (TCP only).
	// Default: nothing is read; the connect is the check.
	Expect []byte
	// Preamble is written first, before TLS, by TCP probes that send
	// anything (Send, Expect or a TLS handshake): a PROXY protocol header
	// for targets that want one. Default: nothing.
	Preamble []byte
	// GRPC probes with grpc.health.v1.Health/Check about GRPCService over
	// Deps.Transport, which must speak HTTP/2 (h2c, or TLS with h2):
	// SERVING is healthy, any other status or error unhealthy.
	GRPC bool
	// GRPCService is the service asked about; "" is the whole server.
	GRPCService string
	// InitialUnhealthy makes new targets start unhealthy, taking traffic
	// only after HealthyThreshold successful probes. Default false.
	InitialUnhealthy bool
}

func (c Config) withDefaults() Config {
	if c.Path == "" {
		c.Path = DefaultPath
	}
	if !strings.HasPrefix(c.Path, "/") {
		c.Path = "/" + c.Path
	}
	if c.Scheme == "" {
		c.Scheme = "http"
	}
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	c.Timeout = min(c.Timeout, c.Interval)
	if c.HealthyThreshold <= 0 {
		c.HealthyThreshold = DefaultHealthyThreshold
	}
	if c.UnhealthyThreshold <= 0 {
		c.UnhealthyThreshold = DefaultUnhealthyThreshold
	}
	return c
}

// ProbeFunc checks one target and returns nil when it is healthy. ctx
// carries the probe's timeout.
type ProbeFunc func(ctx context.Context, addr string) error

// Deps are the Checker's collaborators; all optional.
type Deps struct {
	// Transport sends HTTP probes. Default: a transport of the Checker's
	// own, without proxy, keeping one idle connection per target.
	Transport http.RoundTripper
	// CloseTransport makes Close close Transport's idle connections (a
	// transport made for this Checker alone).
	CloseTransport bool
	// Probe replaces the HTTP and TCP probes altogether.
	Probe ProbeFunc
	// TLS, when set, makes TCP probes complete a TLS handshake with it
	// (the SNI name defaults to the target's host), and send and expect
	// over TLS.
	TLS *tls.Config
	// OnChange is told when a target turns healthy or unhealthy. It runs on
	// the target's probe goroutine and should not block.
	OnChange func(addr string, healthy bool)
	// Logger receives state changes at Info. Default: none.
	Logger *slog.Logger
	// Rand returns a float in [0, 1) for the jitter. Default math/rand/v2.
	Rand func() float64
}

// ErrStatus is wrapped by the HTTP probe for a status outside 200-399.
var ErrStatus = errors.New("unhealthy status")

type target struct {
	addr    string
	healthy atomic.Bool
	gone    atomic.Bool
	cancel  context.CancelFunc // set when its goroutine starts; guarded by Checker.mu

	// Owned by the target's goroutine.
	successes, failures int

	mu        sync.Mutex
	lastErr   string
	lastCheck time.Time
}

// Checker probes the targets of one upstream. It is safe for concurrent use.
type Checker struct {
	cfg       atomic.Pointer[Config]
	probe     ProbeFunc
	transport http.RoundTripper
	ownTr     *http.Transport // closed by Close when the Checker made it
	closeTr   func()          // Deps.CloseTransport: closes Deps.Transport's idle connections
	tls       *tls.Config     // TCP probes over TLS; nil: plain
	onChange  func(string, bool)
	log       *slog.Logger
	rand      func() float64

	targets atomic.Pointer[map[string]*target]

	mu     sync.Mutex // guards targets writes, ctx, closed
	ctx    context.Context
	stop   context.CancelFunc
	closed bool
	wg     sync.WaitGroup
}

// New returns a Checker with no targets and nothing running; call Update
// and Start.
func New(cfg Config, deps Deps) *Checker {
	c := &Checker{
		probe:     deps.Probe,
		transport: deps.Transport,
		onChange:  deps.OnChange,
		log:       deps.Logger,
		rand:      deps.Rand,
		tls:       deps.TLS,
	}
	if ci, ok := deps.Transport.(interface{ CloseIdleConnections() }); ok && deps.CloseTransport {
		c.closeTr = ci.CloseIdleConnections
	}
	cfg = cfg.withDefaults()
	c.cfg.Store(&cfg)
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.rand == nil {
		c.rand = rand.Float64
	}
	if c.transport == nil {
		c.ownTr = &http.Transport{
			Proxy:               nil, // probes go to the target itself, never via HTTP_PROXY
			DialContext:         (&net.Dialer{}).DialContext,
			MaxIdleConnsPerHost: 1,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		}
		c.transport = c.ownTr
	}
	if c.probe == nil {
		switch {
		case cfg.GRPC:
			c.probe = c.grpcProbe
		case cfg.TCP:
			c.probe = c.tcpProbe
		default:
			c.probe = c.httpProbe
		}
	}
	empty := map[string]*target{}
	c.targets.Store(&empty)
	return c
}

// Reconfigure changes the probe settings (path, interval, thresholds...)
// without touching any target's state; each target picks them up at its
// next probe. Switching between HTTP, gRPC and TCP needs a new Checker unless
// Deps.Probe was given.
func (c *Checker) Reconfigure(cfg Config) {
	cfg = cfg.withDefaults()
	c.cfg.Store(&cfg)
}

// Start launches the probe goroutines, each probing at once. They stop
// when ctx is done or Close is called. Start is a no-op after the first call.
func (c *Checker) Start(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx != nil || c.closed {
		return
	}
	c.ctx, c.stop = context.WithCancel(ctx)
	for _, t := range *c.targets.Load() {
		c.launch(t)
	}
}

// launch starts t's goroutine. c.mu held, c.ctx set.
func (c *Checker) launch(t *target) {
	ctx, cancel := context.WithCancel(c.ctx)
	t.cancel = cancel
	c.wg.Add(1)
	go c.run(ctx, t)
}

// Update replaces the target set. Targets that stay keep their state and
// goroutine; new ones start in the initial state and, once started, are
// probed at once; removed ones stop being probed, without an OnChange.
func (c *Checker) Update(addrs []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	initial := !c.cfg.Load().InitialUnhealthy
	old := *c.targets.Load()
	next := make(map[string]*target, len(addrs))
	for _, a := range addrs {
		if t := old[a]; t != nil {
			next[a] = t
			continue
		}
		t := &target{addr: a}
		t.healthy.Store(initial)
		next[a] = t
		if c.ctx != nil {
			c.launch(t)
		}
	}
	for a, t := range old {
		if next[a] == nil {
			t.gone.Store(true)
			if t.cancel != nil {
				t.cancel()
			}
		}
	}
	c.targets.Store(&next)
}

// Healthy reports whether addr is healthy. An address the Checker does not
// know reports the initial state: it has not been proven bad.
func (c *Checker) Healthy(addr string) bool {
	if t := (*c.targets.Load())[addr]; t != nil {
		return t.healthy.Load()
	}
	return !c.cfg.Load().InitialUnhealthy
}

// LastError returns the error of addr's last probe, "" when it succeeded
// or addr is unknown.
func (c *Checker) LastError(addr string) string {
	t := (*c.targets.Load())[addr]
	if t == nil {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lastErr
}

// Close stops every probe and waits for the goroutines to return.
func (c *Checker) Close() {
	c.mu.Lock()
	c.closed = true
	if c.stop != nil {
		c.stop()
	}
	c.mu.Unlock()
	c.wg.Wait()
	if c.ownTr != nil {
		c.ownTr.CloseIdleConnections()
	}
	if c.closeTr != nil {
		c.closeTr()
	}
}

// run is the root of one target's goroutine.
func (c *Checker) run(ctx context.Context, t *target) {
	defer c.wg.Done()
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("health checker panicked", "target", t.addr, "panic", r)
		}
	}()
	for {
		c.check(ctx, t)
		cfg := c.cfg.Load()
		// ±10 % jitter keeps many gateways (and many targets) from
		// probing in lock-step.
		wait := time.Duration(float64(cfg.Interval) * (0.9 + 0.2*c.rand()))
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}

// check runs one probe and records its verdict.
func (c *Checker) check(ctx context.Context, t *target) {
	cfg := c.cfg.Load()
	pctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	err := c.safeProbe(pctx, t.addr)
	cancel()
	if ctx.Err() != nil || t.gone.Load() {
		return // stopping: a cancelled probe is no verdict on the target
	}
	t.mu.Lock()
	t.lastCheck = time.Now()
	t.lastErr = ""
	if err != nil {
		t.lastErr = err.Error()
	}
	t.mu.Unlock()

	var flip bool
	if err == nil {
		t.failures = 0
		t.successes++
		flip = !t.healthy.Load() && t.successes >= cfg.HealthyThreshold
	} else {
		t.successes = 0
		t.failures++
		flip = t.healthy.Load() && t.failures >= cfg.UnhealthyThreshold
	}
	if !flip {
		return
	}
	healthy := err == nil
	t.healthy.Store(healthy)
	if healthy {
		c.log.Info("target healthy", "target", t.addr)
	} else {
		c.log.Info("target unhealthy", "target", t.addr, "error", err)
	}
	if c.onChange != nil {
		c.onChange(t.addr, healthy)
	}
}

// safeProbe turns a panicking probe into a failed one, so that one bad
// probe cannot stop a target from ever being checked again.
func (c *Checker) safeProbe(ctx context.Context, addr string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("probe %s: panic: %v", addr, r)
		}
	}()
	return c.probe(ctx, addr)
}

func (c *Checker) httpProbe(ctx context.Context, addr string) error {
	cfg := c.cfg.Load()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.Scheme+"://"+addr+cfg.Path, nil)
	if err != nil {
		return fmt.Errorf("build probe of %s: %w", addr, err)
	}
	if cfg.Host != "" {
		req.Host = cfg.Host
	}
	req.Header.Set("User-Agent", "rampart-health-check")
	// RoundTrip, not a Client: a redirect is an answer (3xx is healthy)
	// and must not be followed somewhere else.
	resp, err := c.transport.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w", addr, err)
	}
	// Drain a little so the connection can be reused, then give up on it.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("probe %s: %w %d", addr, ErrStatus, resp.StatusCode)
	}
	return nil
}

// MaxExpectRead bounds what a TCP probe reads looking for Expect.
const MaxExpectRead = 64 << 10

// ErrExpect is wrapped by the TCP probe when the answer does not contain
// Config.Expect.
var ErrExpect = errors.New("answer does not contain the expected bytes")

// tcpProbe connects to addr (and completes a TLS handshake with TLS set);
// with Send or Expect it writes Preamble and Send, then reads until the
// answer contains Expect, the target closes, MaxExpectRead bytes came or
// ctx ends.
func (c *Checker) tcpProbe(ctx context.Context, addr string) error {
	cfg := c.cfg.Load()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("probe %s: %w", addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	// A target that wants a PROXY header wants it before anything else,
	// TLS included; a bare connect sends nothing at all.
	if len(cfg.Preamble) > 0 && (c.tls != nil || len(cfg.Send) > 0 || len(cfg.Expect) > 0) {
		if _, err := conn.Write(cfg.Preamble); err != nil {
			return fmt.Errorf("probe %s: send: %w", addr, err)
		}
	}
	if c.tls != nil {
		tc := c.tls
		if tc.ServerName == "" {
			tc = tc.Clone()
			tc.ServerName, _, _ = net.SplitHostPort(addr)
		}
		t := tls.Client(conn, tc)
		if err := t.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("probe %s: tls: %w", addr, err)
		}
		conn = t
	}
	if len(cfg.Send) == 0 && len(cfg.Expect) == 0 {
		return nil
	}
	if len(cfg.Send) > 0 {
		if _, err := conn.Write(cfg.Send); err != nil {
			return fmt.Errorf("probe %s: send: %w", addr, err)
		}
	}
	if len(cfg.Expect) == 0 {
		return nil
	}
	buf := make([]byte, 0, min(MaxExpectRead, max(512, 2*len(cfg.Expect))))
	for len(buf) < MaxExpectRead {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(cap(buf), MaxExpectRead-len(buf)))
		}
		n, err := conn.Read(buf[len(buf):min(cap(buf), MaxExpectRead)])
		buf = buf[:len(buf)+n]
		if bytes.Contains(buf, cfg.Expect) {
			return nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return fmt.Errorf("probe %s: read: %w", addr, err)
		}
	}
	return fmt.Errorf("probe %s: %w (got %q)", addr, ErrExpect, clip(buf, 64))
}

// clip returns at most n bytes of b, for error messages.
func clip(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// Status is one target's health, for the admin API.
type Status struct {
	Addr      string    `json:"address"`
	Healthy   bool      `json:"healthy"`
	LastCheck time.Time `json:"last_check,omitzero"`
	LastError string    `json:"last_error,omitempty"`
}

// Snapshot returns every target's status, sorted by address.
func (c *Checker) Snapshot() []Status {
	m := *c.targets.Load()
	out := make([]Status, 0, len(m))
	for a, t := range m {
		t.mu.Lock()
		out = append(out, Status{Addr: a, Healthy: t.healthy.Load(), LastCheck: t.lastCheck, LastError: t.lastErr})
		t.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Addr, b.Addr) })
	return out
}
