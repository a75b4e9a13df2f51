// Package listener runs the gateway's client-facing HTTP servers: binding,
// limits (header size, timeouts, connection caps), h2c, and graceful
// shutdown.
package listener

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
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/listener/guard"
	"github.com/rampart-gw/rampart/internal/listener/h1server"
	"github.com/rampart-gw/rampart/internal/listener/h2"
	"github.com/rampart-gw/rampart/internal/telemetry"
	"github.com/rampart-gw/rampart/internal/upgrade"
)

// Config is one listener's settings.
type Config struct {
	Name    string
	Address string
	Limits  config.Limits
	// TLS, when set, terminates TLS with these certificates.
	TLS *config.ListenerTLS
	// NetHTTP serves HTTP/1.1 with net/http behind the framing guard
	// instead of the guard's own server (h1server.Server, the default; with
	// it net/http serves HTTP/2 too, whatever HTTP2Server says). The environment variable
	// RAMPART_HTTP1_SERVER=net/http sets it for every listener, to compare
	// the two.
	NetHTTP bool
	// ReusePort asks Bind for SO_REUSEPORT.
	ReusePort bool
	// HTTP3 also serves HTTP/3 (QUIC) on the UDP port of the same number;
	// needs TLS.
	HTTP3 bool
	// HTTP2Server names the server for HTTP/2 connections (h2c prior
	// knowledge and h2 through ALPN): HTTP2NetHTTP or HTTP2Rampart. Empty:
	// the environment variable RAMPART_HTTP2_SERVER decides (http2Server),
	// so that both can be compared without a config change. Any other
	// value makes Listen fail.
	HTTP2Server string
}

// The HTTP/2 servers a listener can run (Config.HTTP2Server,
// RAMPART_HTTP2_SERVER).
const (
	// HTTP2NetHTTP is net/http's HTTP/2 server behind the framing guard.
	HTTP2NetHTTP = "net/http"
	// HTTP2Rampart is Rampart's own HTTP/2 server (internal/listener/h2).
	HTTP2Rampart = "rampart"
)

// DefaultHTTP2Server serves HTTP/2 when neither Config.HTTP2Server nor
// RAMPART_HTTP2_SERVER names a server.
const DefaultHTTP2Server = HTTP2Rampart

// http2Server is the HTTP/2 server RAMPART_HTTP2_SERVER names, trimmed and
// lower-cased; DefaultHTTP2Server when it is unset or empty. It is read at
// each Listen, so a test can set it per listener.
func http2Server() string {
	v := strings.ToLower(strings.TrimSpace(os.Getenv("RAMPART_HTTP2_SERVER")))
	if v == "" {
		return DefaultHTTP2Server
	}
	return v
}

// rampartHTTP2Built reports whether HTTP2Rampart is served by Rampart's own
// server (internal/listener/h2); while false, it falls back to net/http
// (resolveHTTP2Server).
const rampartHTTP2Built = true

// resolveHTTP2Server returns the server that serves HTTP/2 for a listener
// configured with name (Config.HTTP2Server; "" reads the environment), or
// an error for a name no server has.
func resolveHTTP2Server(name string) (string, error) {
	if name == "" {
		name = http2Server()
	}
	switch name {
	case HTTP2NetHTTP:
		return HTTP2NetHTTP, nil
	case HTTP2Rampart:
		if rampartHTTP2Built {
			return HTTP2Rampart, nil
		}
		return HTTP2NetHTTP, nil
	}
	return "", fmt.Errorf("RAMPART_HTTP2_SERVER: unknown server %q (net/http, rampart)", name)
}

// Deps are shared services.
type Deps struct {
	Metrics *telemetry.Metrics
	Log     *slog.Logger
	// Bind, if set, returns the listening socket for cfg (a binary upgrade
	// passes inherited sockets this way); default net.Listen.
	Bind func(cfg Config) (net.Listener, error)
	// AccessLog, if set, returns the current access log (nil for none),
	// which gets a line for every request the framing guard refuses.
	AccessLog func() *telemetry.AccessLog
}

// Listener is a bound HTTP listener.
type Listener struct {
	name  string
	http2 string // the server that serves HTTP/2 (resolveHTTP2Server)
	srv   *http.Server
	fast  *h1server.Server // nil: net/http serves HTTP/1.1 too
	h2    *h2.Server       // nil: net/http serves HTTP/2
	hand  *handListener    // connections fast hands over to srv
	ln    *limitListener
	log   *slog.Logger
	certs *Certs
	h3    *h3 // nil without http3
	stop  context.CancelFunc
	wg    sync.WaitGroup
}

// Listen binds cfg.Address and prepares a server for handler. Serve starts
// accepting.
func Listen(cfg Config, handler http.Handler, deps Deps) (*Listener, error) {
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	h2srv, err := resolveHTTP2Server(cfg.HTTP2Server)
	if err != nil {
		return nil, err
	}
	bind := deps.Bind
	if bind == nil {
		bind = func(cfg Config) (net.Listener, error) { return net.Listen("tcp", cfg.Address) }
	}
	raw, err := bind(cfg)
	if err != nil {
		return nil, err
	}
	lim := cfg.Limits
	framing := &guard.Config{
		MaxHeaderBytes: lim.MaxHeaderBytes,
		MaxURIBytes:    lim.MaxURIBytes,
		MaxHeaders:     lim.MaxHeaders,
		MaxBodyBytes:   lim.MaxBodyBytes,
		MaxRequests:    lim.MaxRequestsPerConnection,
		H2:             true,
	}
	if deps.Metrics != nil || deps.AccessLog != nil {
		m, accessLog, name := deps.Metrics, deps.AccessLog, cfg.Name
		framing.OnRefuse = func(rf guard.Refusal) {
			if m != nil {
				m.Refused.WithLabelValues(name, m.Code(rf.Status), rf.Code).Inc()
			}
			if accessLog != nil {
				logRefusal(accessLog(), rf)
			}
		}
	}
	ll := &limitListener{Listener: raw, max: int64(lim.MaxConnections), perIP: lim.MaxConnectionsPerIP, guard: framing}
	var certs *Certs
	if cfg.TLS != nil {
		if certs, err = LoadCerts(*cfg.TLS); err == nil {
			ll.tls, err = certs.Config()
		}
		if err != nil {
			raw.Close()
			return nil, err
		}
	}
	if deps.Metrics != nil {
		ll.active = deps.Metrics.ActiveConnections.WithLabelValues(cfg.Name)
		ll.rejected = deps.Metrics.RejectedConns.WithLabelValues(cfg.Name)
		if ll.tls != nil {
			hs, name := deps.Metrics.TLSHandshakeErrors, cfg.Name
			ll.hsErr = func(reason string) { hs.WithLabelValues(name, reason).Inc() }
		}
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true) // h2c with prior knowledge
	streams := uint32(lim.MaxConcurrentStreams)
	if streams == 0 {
		streams = config.DefaultMaxStreams
	}
	if !cfg.NetHTTP && os.Getenv("RAMPART_HTTP1_SERVER") != "net/http" {
		ll.fast = true
	}
	srv := &http.Server{
		// Every HTTP/1.1 connection passes the framing guard before
		// net/http reads it (docs/security.md).
		Handler:           guard.Handler(handler, framing),
		ConnContext:       connContext,
		ReadHeaderTimeout: lim.ReadHeaderTimeout.D(),
		IdleTimeout:       lim.IdleTimeout.D(),
		// The handler enforces max_header_bytes exactly and answers 431
		// with a JSON body; the server's own cut-off sits above it so that
		// only grossly oversized heads get net/http's plain-text 431.
		MaxHeaderBytes: 2 * max(lim.MaxHeaderBytes, 4096),
		Protocols:      &protos,
		// Envoy's edge guide: 100 streams, 64 KiB stream and 1 MiB
		// connection flow-control windows.
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams:          int(streams),
			MaxReceiveBufferPerConnection: 1 << 20,
			MaxReceiveBufferPerStream:     64 << 10,
			MaxReadFrameSize:              1 << 14,
		},
		ErrorLog: slog.NewLogLogger(deps.Log.Handler(), slog.LevelDebug),
	}
	if !ll.fast {
		h2srv = HTTP2NetHTTP // without the fast path net/http serves HTTP/2 too
	}
	l := &Listener{name: cfg.Name, http2: h2srv, srv: srv, ln: ll, log: deps.Log, certs: certs}
	if cfg.HTTP3 {
		if ll.tls == nil {
			raw.Close()
			return nil, errors.New("http3 needs tls")
		}
		h, err := listenH3(raw.Addr(), ll.tls, guard.Handler(handler, framing), srv.MaxHeaderBytes)
		if err != nil {
			raw.Close()
			return nil, err
		}
		l.h3 = h
		// HTTP/1.1 and HTTP/2 answers advertise it.
		handler = h.advertise(handler)
		srv.Handler = guard.Handler(handler, framing)
	}
	if ll.fast {
		l.hand = &handListener{addr: raw.Addr(), c: make(chan net.Conn), done: make(chan struct{})}
		l.fast = &h1server.Server{
			Handler:           handler,
			Config:            framing,
			ReadHeaderTimeout: lim.ReadHeaderTimeout.D(),
			IdleTimeout:       lim.IdleTimeout.D(),
			HandOver:          l.hand.push,
			Log:               deps.Log,
		}
		if ll.hsErr != nil {
			hsErr := ll.hsErr
			l.fast.HandshakeError = func(err error) { hsErr(HandshakeReason(err)) }
		}
		if h2srv == HTTP2Rampart {
			// The same limits as net/http's HTTP/2 server above, and the
			// same handler (behind guard.Handler); the connection is the
			// guard's, whose frame accounting applies as before.
			l.h2 = &h2.Server{
				Handler:              srv.Handler,
				MaxConcurrentStreams: streams,
				StreamWindow:         64 << 10,
				ConnWindow:           1 << 20,
				MaxReadFrameSize:     1 << 14,
				// net/http's HTTP/2 server advertised MaxHeaderBytes
				// plus 10 fields' overhead.
				MaxHeaderListSize: uint32(srv.MaxHeaderBytes + 320),
				PrefaceTimeout:    lim.ReadHeaderTimeout.D(),
				IdleTimeout:       lim.IdleTimeout.D(),
				ConnContext:       connContext,
				Log:               deps.Log,
			}
			l.fast.HandOverH2 = func(g *guard.Conn) { l.h2.ServeConn(g) }
		}
	}
	return l, nil
}

// logRefusal writes the access log line of a request the framing guard
// refused: refused_by guard, the status, code and reason, the connection's
// details and what was read of the request. It runs on the connection's
// goroutine and only queues the line (AccessLog.Log never blocks).
func logRefusal(al *telemetry.AccessLog, rf guard.Refusal) {
	if al == nil {
		return
	}
	r := rf.Request
	e := telemetry.Entry{
		RequestID: rf.RequestID,
		Method:    rf.Method,
		Host:      rf.Host,
		Path:      rf.Path,
		Status:    rf.Status,
		Code:      rf.Code,
		RefusedBy: "guard",
		Reason:    rf.Reason,
	}
	if r != nil {
		e.RemoteAddr, e.Proto = r.RemoteAddr, r.Proto
		// The forwarding headers are not read for a refusal: the client
		// is the peer.
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			e.ClientIP = host
		}
		if rf.Method != "" {
			e.UserAgent = r.UserAgent()
		}
		if r.TLS != nil {
			e.TLSVersion, e.SNI = r.TLS.Version, r.TLS.ServerName
		} else if st := TLSState(r.Context()); st != nil {
			e.TLSVersion, e.SNI = st.Version, st.ServerName
		}
	}
	al.Log(&e)
}

// ReloadCerts re-reads the listener's certificate files; on error the
// current certificates stay in use. A listener without TLS does nothing.
func (l *Listener) ReloadCerts() error {
	if l.certs == nil {
		return nil
	}
	return l.certs.Reload()
}

// File returns a duplicate of the listening socket's descriptor, to hand
// to a new process in a binary upgrade.
func (l *Listener) File() (*os.File, error) { return upgrade.Files(l.ln.Listener) }

// Addr is the bound address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Name is the listener's name.
func (l *Listener) Name() string { return l.name }

// HTTP2Server is the server that serves the listener's HTTP/2 connections
// (HTTP2NetHTTP or HTTP2Rampart): what Config.HTTP2Server or
// RAMPART_HTTP2_SERVER asked for, unless that server is not built in.
func (l *Listener) HTTP2Server() string { return l.http2 }

// Serve accepts connections until Shutdown or Close; it returns nil then.
func (l *Listener) Serve() error {
	if l.certs != nil {
		ctx, cancel := context.WithCancel(context.Background())
		l.stop = cancel
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.certs.Watch(ctx, certPollInterval, l.log)
		}()
		defer func() { cancel(); l.wg.Wait() }()
	}
	if l.h3 != nil {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			if err := l.h3.srv.Serve(l.h3.conn); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, quic.ErrServerClosed) {
				l.log.Error("http3 server stopped", "listener", l.name, "err", err.Error())
			}
		}()
	}
	if l.fast != nil {
		// Connections the fast path hands over (HTTP/2 prefaces, upgrades,
		// refusals, ...) are served by net/http, as without it.
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer func() {
				if p := recover(); p != nil {
					l.log.Error("hand-over server panicked; connections the fast path hands over (HTTP/2, upgrades) are closed from now on", "listener", l.name, "panic", fmt.Sprint(p))
					l.hand.Close() // so the fast path does not block handing them over
				}
			}()
			l.srv.Serve(l.hand)
		}()
		err := l.fast.Serve(l.ln)
		<-done
		return err
	}
	err := l.srv.Serve(l.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting and waits for in-flight requests until ctx ends;
// then it closes the remaining connections.
func (l *Listener) Shutdown(ctx context.Context) error {
	var fastErr error
	var wg sync.WaitGroup
	if l.fast != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					l.log.Error("fast path shutdown panicked", "listener", l.name, "panic", fmt.Sprint(p))
					fastErr = fmt.Errorf("listener %s: fast path shutdown panicked: %v", l.name, p)
				}
			}()
			fastErr = l.fast.Shutdown(ctx)
		}()
	}
	if l.h3 != nil {
		// GOAWAY to every HTTP/3 connection; requests in flight finish.
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.h3.srv.Shutdown(ctx)
			l.h3.conn.Close()
		}()
	}
	if l.h2 != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.h2.Shutdown(ctx)
		}()
	}
	l.srv.SetKeepAlivesEnabled(false)
	err := l.srv.Shutdown(ctx)
	if err != nil {
		l.srv.Close()
	}
	if l.hand != nil {
		l.hand.Close()
	}
	wg.Wait()
	if err == nil {
		err = fastErr
	}
	return err
}

// Close closes the listener and every connection at once.
func (l *Listener) Close() error {
	if l.h3 != nil {
		l.h3.srv.Close()
		l.h3.conn.Close()
	}
	if l.fast != nil {
		l.fast.Close()
		l.hand.Close()
	}
	if l.h2 != nil {
		l.h2.Close()
	}
	return l.srv.Close()
}

// ActiveConnections is the number of open client connections.
func (l *Listener) ActiveConnections() int64 { return l.ln.n.Load() }

// Limit wraps ln with the connection caps of lim (max_connections and
// max_connections_per_ip), like an HTTP listener's: open connections count
// in rampart_active_connections and those closed at accept in
// rampart_rejected_connections_total, under the listener name. It hands
// out the accepted connections as they are (no TLS, no HTTP framing
// guard), for the L4 proxy; closing one releases its place. Connections
// from peers for which exempt (if set) reports true are not counted per
// IP at accept: they are a proxy's, whose PROXY protocol header names the
// client that Charge then counts.
func Limit(ln net.Listener, name string, lim config.Limits, m *telemetry.Metrics, exempt func(netip.Addr) bool) net.Listener {
	// fast: connections are handed out unguarded.
	ll := &limitListener{Listener: ln, max: int64(lim.MaxConnections), perIP: lim.MaxConnectionsPerIP, fast: true, exempt: exempt}
	if m != nil {
		ll.active = m.ActiveConnections.WithLabelValues(name)
		ll.rejected = m.RejectedConns.WithLabelValues(name)
	}
	return ll
}

// limitListener counts open connections and closes new ones beyond max at
// once (like Envoy's connection limit), rather than leaving them queued in
// the kernel where clients cannot tell overload from slowness.
type limitListener struct {
	net.Listener
	max    int64
	perIP  int
	guard  *guard.Config
	tls    *tls.Config // nil for plain listeners
	fast   bool        // hand out unguarded connections (h1server.Server guards them)
	n      atomic.Int64
	mu     sync.Mutex
	byIP   map[netip.Addr]int
	active interface {
		Inc()
		Dec()
	}
	rejected interface{ Inc() }
	// hsErr counts a failed TLS handshake by reason (nil: not counted).
	hsErr func(reason string)
	// exempt peers are counted per IP by Charge, not at accept (Limit).
	exempt func(netip.Addr) bool
}

// Charge counts c, a connection a Limit listener accepted from an exempt
// peer, against max_connections_per_ip as a connection of the client ip
// (which a PROXY protocol header named), until c is closed. It reports
// false when ip is at its cap (counted in
// rampart_rejected_connections_total), or c is closed: the caller then
// closes c. Charging a connection twice, or one that was counted
// at accept, does nothing and reports true.
func Charge(c net.Conn, ip netip.Addr) bool {
	cc, ok := c.(*countedConn)
	if !ok || cc.l.exempt == nil || cc.ip.IsValid() || cc.l.perIP <= 0 {
		return true
	}
	l := cc.l
	ip = ip.Unmap()
	l.mu.Lock()
	defer l.mu.Unlock()
	if cc.closed {
		return false
	}
	if cc.charged.IsValid() {
		return true
	}
	if l.byIP == nil {
		l.byIP = make(map[netip.Addr]int)
	}
	if l.byIP[ip] >= l.perIP {
		if l.rejected != nil {
			l.rejected.Inc()
		}
		return false
	}
	l.byIP[ip]++
	cc.charged = ip
	return true
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip, ok := l.admit(c)
		if !ok {
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0) // reset: the client learns at once
			}
			c.Close()
			if l.rejected != nil {
				l.rejected.Inc()
			}
			continue
		}
		l.n.Add(1)
		if l.active != nil {
			l.active.Inc()
		}
		var conn net.Conn = &countedConn{Conn: c, l: l, ip: ip}
		if l.fast {
			if l.tls != nil {
				return tls.Server(conn, l.tls), nil
			}
			return conn, nil
		}
		if l.tls != nil {
			// TLS sits under the framing guard, so TLS clients get every
			// check plain ones do. The handshake runs on the connection's
			// first read, in its own goroutine, bounded by the header read
			// timeout; h2 negotiated through ALPN reaches net/http as a
			// prior-knowledge preface, which it serves as HTTP/2.
			if l.hsErr != nil {
				conn = &hsConn{Conn: tls.Server(conn, l.tls), count: l.hsErr}
			} else {
				conn = tls.Server(conn, l.tls)
			}
		}
		return guard.New(conn, l.guard), nil
	}
}

// admit applies the global and per-IP caps.
func (l *limitListener) admit(c net.Conn) (netip.Addr, bool) {
	if l.max > 0 && l.n.Load() >= l.max {
		return netip.Addr{}, false
	}
	if l.perIP <= 0 {
		return netip.Addr{}, true
	}
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}, true
	}
	ip := ap.Addr().Unmap()
	if l.exempt != nil && l.exempt(ip) {
		return netip.Addr{}, true // counted by Charge
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byIP == nil {
		l.byIP = make(map[netip.Addr]int)
	}
	if l.byIP[ip] >= l.perIP {
		return netip.Addr{}, false
	}
	l.byIP[ip]++
	return ip, true
}

func (l *limitListener) release(ip netip.Addr) {
	if !ip.IsValid() {
		return
	}
	l.mu.Lock()
	if l.byIP[ip] <= 1 {
		delete(l.byIP, ip)
	} else {
		l.byIP[ip]--
	}
	l.mu.Unlock()
}

type countedConn struct {
	net.Conn
	l    *limitListener
	ip   netip.Addr
	once sync.Once
	// charged is the client Charge counted (guarded by l.mu), and closed
	// is set when the connection closed (likewise): only on listeners
	// with exempt peers.
	charged netip.Addr
	closed  bool
	// gone is set (under l.mu) when Close ran: RebindTCP refuses then.
	gone bool
}

// InnerTCP and RebindTCP let the fast path park an idle connection
// without Go's socket (h1server.Rebinder).
func (c *countedConn) InnerTCP() *net.TCPConn {
	tc, _ := c.Conn.(*net.TCPConn)
	return tc
}

// RebindTCP replaces the wrapped connection; false once c is closed.
func (c *countedConn) RebindTCP(tc *net.TCPConn) bool {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	if c.gone {
		return false
	}
	if tc == nil {
		c.Conn = parkedConn{}
		return true
	}
	c.Conn = tc
	return true
}

// parkedConn is the inner connection of a countedConn whose connection the
// fast path parked deep (RebindTCP(nil)): closing it closes nothing, and
// nothing else is called on it until the next RebindTCP.
type parkedConn struct{}

func (parkedConn) Read([]byte) (int, error)         { return 0, net.ErrClosed }
func (parkedConn) Write([]byte) (int, error)        { return 0, net.ErrClosed }
func (parkedConn) Close() error                     { return nil }
func (parkedConn) LocalAddr() net.Addr              { return nil }
func (parkedConn) RemoteAddr() net.Addr             { return nil }
func (parkedConn) SetDeadline(time.Time) error      { return nil }
func (parkedConn) SetReadDeadline(time.Time) error  { return nil }
func (parkedConn) SetWriteDeadline(time.Time) error { return nil }

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.l.release(c.ip)
		if c.l.exempt != nil {
			c.l.mu.Lock()
			c.closed = true
			ip := c.charged
			c.l.mu.Unlock()
			c.l.release(ip)
		}
		c.l.n.Add(-1)
		if c.l.active != nil {
			c.l.active.Dec()
		}
	})
	c.l.mu.Lock()
	c.gone = true
	inner := c.Conn
	c.l.mu.Unlock()
	return inner.Close()
}

// Unwrap returns the accepted connection.
func (c *countedConn) Unwrap() net.Conn { return c.Conn }

// CloseWrite half-closes TCP connections (used by upgrade relays).
func (c *countedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// handListener is the net.Listener through which the fast path hands
// connections to net/http.
type handListener struct {
	addr net.Addr
	c    chan net.Conn
	once sync.Once
	done chan struct{}
}

func (h *handListener) push(g *guard.Conn) {
	select {
	case h.c <- g:
	case <-h.done:
		g.Close()
	}
}

func (h *handListener) Accept() (net.Conn, error) {
	select {
	case c := <-h.c:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

func (h *handListener) Close() error {
	h.once.Do(func() { close(h.done) })
	return nil
}

func (h *handListener) Addr() net.Addr { return h.addr }
