// Package l4 is the gateway's L4 TCP proxy: a listener with protocol tcp
// accepts client connections, picks a target of its upstream (the
// upstream's balancer, over its healthy targets), connects within the
// upstream's connect_timeout, fails over to the next target when a
// connect fails, and then relays bytes both ways, half-closes included,
// until both sides are done, the connection is idle for idle_timeout, or
// a drain ends. See docs/tcp.md.
//
// The listener's settings are fixed when it is bound, like an HTTP
// listener's; the upstream is looked up by name in the active snapshot for
// each connection, so that its targets, balancer, health and breaker
// follow reloads.
package l4

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/rampart-gw/rampart/internal/cluster"
	"github.com/rampart-gw/rampart/internal/cluster/balancer"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/gateway"
	"github.com/rampart-gw/rampart/internal/listener"
	"github.com/rampart-gw/rampart/internal/proxyproto"
	"github.com/rampart-gw/rampart/internal/telemetry"
	"github.com/rampart-gw/rampart/internal/upgrade"
)

// maxFailoverHops bounds how many upstreams of a failover chain one
// connection tries (config refuses cycles; this is the backstop).
const maxFailoverHops = 8

// Config is one tcp listener's settings.
type Config struct {
	// Name is the listener's name (logs, metrics).
	Name string
	// Address is where it listens.
	Address string
	// ReusePort asks Bind for SO_REUSEPORT.
	ReusePort bool
	// Upstream is the upstream connections go to.
	Upstream string
	// Limits: idle_timeout, max_connections, max_connections_per_ip and
	// read_header_timeout apply.
	Limits config.Limits
	// TrustedProxies are the peers whose connections start with a PROXY
	// protocol header naming the client.
	TrustedProxies []netip.Prefix
	// TLS, when set, terminates TLS (no ALPN), and its SNIRoutes choose
	// the upstream by SNI name.
	TLS *config.ListenerTLS
}

// Deps are the listener's collaborators.
type Deps struct {
	// Store holds the active snapshot, whose upstreams connections use.
	Store *gateway.Store
	// Metrics are the L4 metrics (NewMetrics); Telemetry the gateway's,
	// for rampart_active_connections and rampart_rejected_connections_total.
	Metrics   *Metrics
	Telemetry *telemetry.Metrics
	Log       *slog.Logger
	// Bind returns the listening socket (a binary upgrade passes inherited
	// sockets this way); default net.Listen.
	Bind func(name, address string, reusePort bool) (net.Listener, error)
}

// Listener is a bound tcp listener.
type Listener struct {
	cfg  Config
	raw  net.Listener // the bound socket
	ln   net.Listener // raw with the connection caps
	log  *slog.Logger
	m    *Metrics
	tel  *telemetry.Metrics // the gateway's (nil in some tests)
	st   *gateway.Store
	ctx  context.Context // ends when the listener is closed
	stop context.CancelFunc

	// certs and tls terminate TLS (nil: plain); sni routes by SNI name.
	certs *listener.Certs
	tls   *tls.Config
	sni   sniRoutes
	watch sync.WaitGroup // the certificate watcher

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	closing bool
	wg      sync.WaitGroup // one per connection goroutine
}

// Listen binds cfg.Address; Serve starts accepting.
func Listen(cfg Config, deps Deps) (*Listener, error) {
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	if deps.Metrics == nil {
		deps.Metrics = NewMetrics(nil)
	}
	if deps.Store == nil {
		return nil, errors.New("listen tcp: no snapshot store")
	}
	bind := deps.Bind
	if bind == nil {
		bind = func(_, address string, _ bool) (net.Listener, error) { return net.Listen("tcp", address) }
	}
	l := &Listener{cfg: cfg, log: deps.Log, m: deps.Metrics, st: deps.Store, conns: map[net.Conn]struct{}{}}
	if cfg.TLS != nil {
		certs, err := listener.LoadCerts(*cfg.TLS)
		if err != nil {
			return nil, err
		}
		// No ALPN: the bytes may be any protocol, and a client offering
		// h2 must not be told the upstream speaks it.
		if l.tls, err = certs.ConfigFor(nil); err != nil {
			return nil, err
		}
		l.certs = certs
		l.sni = newSNIRoutes(cfg.TLS.SNIRoutes)
	}
	raw, err := bind(cfg.Name, cfg.Address, cfg.ReusePort)
	if err != nil {
		return nil, err
	}
	l.raw = raw
	var exempt func(netip.Addr) bool
	if len(cfg.TrustedProxies) > 0 {
		exempt = l.trusted
	}
	l.ln = listener.Limit(raw, cfg.Name, cfg.Limits, deps.Telemetry, exempt)
	l.tel = deps.Telemetry
	l.ctx, l.stop = context.WithCancel(context.Background())
	return l, nil
}

// Name is the listener's name.
func (l *Listener) Name() string { return l.cfg.Name }

// Addr is the bound address.
func (l *Listener) Addr() net.Addr { return l.raw.Addr() }

// File returns a duplicate of the listening socket's descriptor, to hand
// to a new process in a binary upgrade.
func (l *Listener) File() (*os.File, error) { return upgrade.Files(l.raw) }

// ReloadCerts re-reads the listener's certificate files; on error the
// current certificates stay in use. Without TLS it does nothing.
func (l *Listener) ReloadCerts() error {
	if l.certs == nil {
		return nil
	}
	return l.certs.Reload()
}

// ActiveConnections is the number of open client connections.
func (l *Listener) ActiveConnections() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// Serve accepts connections until Shutdown or Close; it returns nil then.
func (l *Listener) Serve() error {
	if l.certs != nil {
		l.watch.Add(1)
		go func() {
			defer l.watch.Done()
			l.certs.Watch(l.ctx, listener.CertPollInterval, l.log)
		}()
		defer l.watch.Wait() // l.ctx ends with Shutdown or Close
	}
	var backoff time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if l.isClosing() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of descriptors and the like: wait and try again, as
			// net/http does, rather than spin or give up.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.log.Warn("tcp accept failed; retrying", "listener", l.cfg.Name, "err", err.Error(), "retry_in", backoff.String())
			select {
			case <-time.After(backoff):
			case <-l.ctx.Done():
				return nil
			}
			continue
		}
		backoff = 0
		l.mu.Lock()
		if l.closing {
			l.mu.Unlock()
			c.Close()
			return nil
		}
		l.conns[c] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go l.serve(c)
	}
}

func (l *Listener) isClosing() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closing
}

// Shutdown stops accepting and lets open connections run until they end
// or ctx does; then it closes the rest and returns ctx's error.
func (l *Listener) Shutdown(ctx context.Context) error {
	l.mu.Lock()
	l.closing = true
	l.mu.Unlock()
	l.ln.Close()
	done := make(chan struct{})
	go func() {
		l.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		l.stop()
		return nil
	case <-ctx.Done():
	}
	l.closeConns()
	<-done
	return ctx.Err()
}

// Close closes the listener and every connection at once.
func (l *Listener) Close() error {
	l.mu.Lock()
	l.closing = true
	l.mu.Unlock()
	err := l.ln.Close()
	l.closeConns()
	return err
}

// closeConns cancels pending connects and closes every client connection
// (their relays then end and close the upstream side).
func (l *Listener) closeConns() {
	l.stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		c.Close()
	}
}

// serve runs one client connection to its end.
func (l *Listener) serve(c net.Conn) {
	defer func() {
		if p := recover(); p != nil {
			l.log.Error("tcp connection panicked", "listener", l.cfg.Name, "panic", fmt.Sprint(p))
		}
		c.Close()
		l.mu.Lock()
		delete(l.conns, c)
		l.mu.Unlock()
		l.wg.Done()
	}()
	client, local := addrPort(c.RemoteAddr()), addrPort(c.LocalAddr())
	name := l.cfg.Upstream
	if l.trusted(client.Addr()) {
		var ok bool
		if client, local, ok = l.proxyHeader(c, client, local); !ok {
			l.m.Connections.WithLabelValues(l.cfg.Name, name, ResultProxyHeader).Inc()
			return
		}
		if !listener.Charge(c, client.Addr()) {
			return // the client is at max_connections_per_ip
		}
	}
	var conn net.Conn = c
	if l.tls != nil {
		tc, ok := l.handshake(c)
		if !ok {
			l.m.Connections.WithLabelValues(l.cfg.Name, name, ResultTLSHandshake).Inc()
			return
		}
		if name = l.sni.route(tc.ConnectionState().ServerName, name); name == "" {
			l.m.Connections.WithLabelValues(l.cfg.Name, "", ResultNoRoute).Inc()
			return
		}
		conn = tc
	}
	result, u, up, t := l.connect(name, client, local)
	if up == nil {
		if u != nil {
			name = u.Name
		}
		l.m.Connections.WithLabelValues(l.cfg.Name, name, result).Inc()
		return
	}
	name = u.Name
	t.InFlight.Add(1)
	active := l.m.Active.WithLabelValues(l.cfg.Name, name)
	active.Inc()
	defer func() {
		active.Dec()
		t.InFlight.Add(-1)
		l.m.Connections.WithLabelValues(l.cfg.Name, name, ResultOK).Inc()
	}()
	relay(conn, up, l.cfg.Limits.IdleTimeout.D(), counters{
		in:  l.m.Received.WithLabelValues(l.cfg.Name, name),
		out: l.m.Sent.WithLabelValues(l.cfg.Name, name),
	})
}

// connect picks a target of the upstream name in the active snapshot and
// connects to it, trying the next target when a connect fails and the
// failover upstream when none is left. It returns the connection, its
// target and the upstream it belongs to; without a connection, the
// result to count.
func (l *Listener) connect(name string, client, local netip.AddrPort) (string, *cluster.Upstream, net.Conn, *balancer.Target) {
	snap := l.st.Load()
	if snap == nil {
		return ResultNoTarget, nil, nil, nil
	}
	u := snap.Upstreams[name]
	if u == nil {
		l.log.Warn("tcp listener's upstream is not in the active config; connection closed", "listener", l.cfg.Name, "upstream", name)
		return ResultNoTarget, nil, nil, nil
	}
	// The balancers read the client address from a request: hash_key ip
	// hashes the client's IP without its port.
	req := &http.Request{RemoteAddr: client.String()}
	result := ResultNoTarget
	for range maxFailoverHops {
		// As an HTTP route's Failover: the next upstream while this one
		// has no healthy target or an open circuit.
		if (u.NoHealthy() || u.CircuitOpen()) && u.Failover != nil {
			u = u.Failover
			continue
		}
		var tried []*balancer.Target
		for range len(u.Targets) {
			var t *balancer.Target
			if len(tried) == 0 {
				t = u.Pick(req)
			} else {
				t = u.PickOther(req, tried)
			}
			if t == nil || contains(tried, t) {
				break
			}
			tried = append(tried, t)
			var preamble []byte
			if v := u.ProxyProtocol(); v != 0 {
				preamble = proxyproto.Append(nil, v, false, client, local)
			}
			up, err := u.DialTCP(l.ctx, t, preamble)
			if err == nil {
				return ResultOK, u, up, t
			}
			result = ResultConnectFailed
			var over *cluster.OverflowError
			if errors.As(err, &over) {
				// The upstream's connection budget is spent: another of
				// its targets would not get one either.
				break
			}
			l.m.ConnectFailures.WithLabelValues(u.Name, t.Addr).Inc()
			if l.log.Enabled(l.ctx, slog.LevelDebug) {
				l.log.Debug("tcp connect failed; trying the next target", "listener", l.cfg.Name, "upstream", u.Name, "target", t.Addr, "err", err.Error())
			}
			if l.ctx.Err() != nil {
				return result, u, nil, nil
			}
		}
		if u.Failover == nil {
			break
		}
		u = u.Failover
	}
	return result, u, nil, nil
}

// handshake terminates TLS on c within read_header_timeout.
func (l *Listener) handshake(c net.Conn) (*tls.Conn, bool) {
	ctx := l.ctx
	if d := l.cfg.Limits.ReadHeaderTimeout.D(); d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	tc := tls.Server(c, l.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		if l.tel != nil {
			l.tel.TLSHandshakeErrors.WithLabelValues(l.cfg.Name, listener.HandshakeReason(err)).Inc()
		}
		if l.log.Enabled(l.ctx, slog.LevelDebug) {
			l.log.Debug("tcp listener's TLS handshake failed; closed", "listener", l.cfg.Name, "peer", c.RemoteAddr().String(), "err", err.Error())
		}
		return nil, false
	}
	return tc, true
}

// trusted reports whether a connection from ip starts with a PROXY
// protocol header (trusted_proxies).
func (l *Listener) trusted(ip netip.Addr) bool {
	for _, p := range l.cfg.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// proxyHeader reads the PROXY protocol header a trusted peer starts its
// connection with, within read_header_timeout, and returns the client and
// the address it connected to that the header names (the connection's
// own for a LOCAL or UNKNOWN header). It reads nothing past the header.
func (l *Listener) proxyHeader(c net.Conn, client, local netip.AddrPort) (netip.AddrPort, netip.AddrPort, bool) {
	if d := l.cfg.Limits.ReadHeaderTimeout.D(); d > 0 {
		c.SetReadDeadline(time.Now().Add(d))
		defer c.SetReadDeadline(time.Time{})
	}
	h, err := proxyproto.Read(c)
	if err != nil {
		if l.log.Enabled(l.ctx, slog.LevelDebug) {
			l.log.Debug("tcp connection from a trusted proxy without a valid PROXY header; closed", "listener", l.cfg.Name, "peer", client.String(), "err", err.Error())
		}
		return client, local, false
	}
	if h.Local {
		return client, local, true
	}
	return h.Source, h.Destination, true
}

func contains(ts []*balancer.Target, t *balancer.Target) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}

// addrPort is a connection's address as an AddrPort (IPv4-mapped
// addresses as IPv4); the zero value when it is not an IP address.
func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
