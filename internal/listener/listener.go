// Package listener runs the gateway's client-facing HTTP servers: binding,
// limits (header size, timeouts, connection caps), h2c, and graceful
// shutdown.
package listener

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/telemetry"
)

// Config is one listener's settings.
type Config struct {
	Name    string
	Address string
	Limits  config.Limits
}

// Deps are shared services.
type Deps struct {
	Metrics *telemetry.Metrics
	Log     *slog.Logger
}

// Listener is a bound HTTP listener.
type Listener struct {
	name string
	srv  *http.Server
	ln   *limitListener
	log  *slog.Logger
}

// Listen binds cfg.Address and prepares a server for handler. Serve starts
// accepting.
func Listen(cfg Config, handler http.Handler, deps Deps) (*Listener, error) {
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	raw, err := net.Listen("tcp", cfg.Address)
	if err != nil {
		return nil, err
	}
	lim := cfg.Limits
	ll := &limitListener{Listener: raw, max: int64(lim.MaxConnections)}
	if deps.Metrics != nil {
		ll.active = deps.Metrics.ActiveConnections.WithLabelValues(cfg.Name)
		ll.rejected = deps.Metrics.RejectedConns.WithLabelValues(cfg.Name)
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true) // h2c with prior knowledge
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: lim.ReadHeaderTimeout.D(),
		IdleTimeout:       lim.IdleTimeout.D(),
		// The handler enforces max_header_bytes exactly and answers 431
		// with a JSON body; the server's own cut-off sits above it so that
		// only grossly oversized heads get net/http's plain-text 431.
		MaxHeaderBytes: 2 * max(lim.MaxHeaderBytes, 4096),
		Protocols:      &protos,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams:          100,
			MaxReceiveBufferPerConnection: 1 << 20,
			MaxReceiveBufferPerStream:     1 << 20,
			MaxReadFrameSize:              1 << 14,
		},
		ErrorLog: slog.NewLogLogger(deps.Log.Handler(), slog.LevelDebug),
	}
	return &Listener{name: cfg.Name, srv: srv, ln: ll, log: deps.Log}, nil
}

// Addr is the bound address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Name is the listener's name.
func (l *Listener) Name() string { return l.name }

// Serve accepts connections until Shutdown or Close; it returns nil then.
func (l *Listener) Serve() error {
	err := l.srv.Serve(l.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting and waits for in-flight requests until ctx ends;
// then it closes the remaining connections.
func (l *Listener) Shutdown(ctx context.Context) error {
	l.srv.SetKeepAlivesEnabled(false)
	err := l.srv.Shutdown(ctx)
	if err != nil {
		l.srv.Close()
	}
	return err
}

// Close closes the listener and every connection at once.
func (l *Listener) Close() error { return l.srv.Close() }

// ActiveConnections is the number of open client connections.
func (l *Listener) ActiveConnections() int64 { return l.ln.n.Load() }

// limitListener counts open connections and closes new ones beyond max at
// once (like Envoy's connection limit), rather than leaving them queued in
// the kernel where clients cannot tell overload from slowness.
type limitListener struct {
	net.Listener
	max    int64
	n      atomic.Int64
	active interface {
		Inc()
		Dec()
	}
	rejected interface{ Inc() }
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.max > 0 && l.n.Load() >= l.max {
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
		return &countedConn{Conn: c, l: l}, nil
	}
}

type countedConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.l.n.Add(-1)
		if c.l.active != nil {
			c.l.active.Dec()
		}
	})
	return c.Conn.Close()
}

// CloseWrite half-closes TCP connections (used by upgrade relays).
func (c *countedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
