// Package h1server is the fast HTTP/1.1 server of plain and TLS listeners
// (Server). It checks request heads with the framing guard's parser and
// hands whatever it does not serve itself to the guard (package guard) and
// net/http; the guard never depends on it. The files follow the server's
// seams: the life cycle (server.go), the connection loop with parking,
// watching and hand-over (conn.go, poll_*.go), request building
// (request.go), the body (body.go), response writing (response.go) and the
// request context (reqctx.go).
package h1server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-gw/rampart/internal/listener/guard"
	"github.com/rampart-gw/rampart/internal/listener/httpcore"
)

// Server is the guard's own HTTP/1.1 server: the fast path of every
// listener (under TLS too; a connection that negotiates h2 is handed over).
// It reads each request head once, validates it with the same parser
// guard.Conn uses (guard.Limits.Check), builds the *http.Request itself and
// writes the response without net/http's per-connection machinery: no
// background read goroutine per request, no bufio pair per connection, and
// an idle keep-alive connection holds no goroutine and no buffers — it is
// parked in an epoll set (Linux) until bytes arrive.
//
// It serves only the common case. Any connection whose next request is not
// a plain, valid HTTP/1.1 request in origin form with no body or a
// Content-Length body — a refused head, an HTTP/2 preface, an Upgrade, a
// chunked body, Expect, HTTP/1.0, absolute form, OPTIONS * — is handed over
// (with the bytes already read) to HandOver: a guard.Conn served by
// net/http behind guard.Handler, exactly as when the fast path is off. So
// every refusal and every rare feature keeps one implementation, and the
// conformance suites hold for both paths.
type Server struct {
	Handler http.Handler
	Config  *guard.Config
	// ReadHeaderTimeout bounds reading a request head, from its first byte
	// (for the first request: from accept).
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a keep-alive
	// connection.
	IdleTimeout time.Duration
	// HandOver serves a connection the fast path does not (see above).
	HandOver func(*guard.Conn)
	// HandOverH2, if set, serves the connections that speak HTTP/2 (a
	// prior-knowledge preface, or h2 negotiated through ALPN) instead of
	// HandOver; it may serve the connection on the calling goroutine.
	HandOverH2 func(*guard.Conn)
	// HandshakeError, if set, is told of each failed TLS handshake.
	HandshakeError func(error)
	Log            *slog.Logger

	lim      guard.Limits
	poll     *poller
	mu       sync.Mutex // guards ln, and closing with it
	conns    httpcore.Conns[*srvConn]
	ln       net.Listener
	closing  atomic.Bool
	initOnce sync.Once
	done     chan struct{}
	wg       sync.WaitGroup // accept loop, poller and sweeper
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		s.lim = s.Config.Limits()
		s.done = make(chan struct{})
		if s.Log == nil {
			s.Log = slog.Default()
		}
		if p, err := newPoller(s); err == nil {
			s.poll = p
			s.wg.Add(2)
			go func() { defer s.wg.Done(); defer s.recoverPoller(); p.run() }()
			go func() { defer s.wg.Done(); defer s.recoverPoller(); p.sweep(s.done) }()
		} else if !errors.Is(err, errNoPoller) {
			s.Log.Warn("h1 server: idle connections will hold a goroutine", "error", err)
		}
	})
}

// recoverPoller logs a panic in the poller's goroutines and closes the
// parked connections, which nothing would wake any more (clients reconnect).
func (s *Server) recoverPoller() {
	if p := recover(); p != nil {
		s.Log.Error("h1 server: poller panicked; parked connections closed", "panic", p)
		s.poll.closeAll()
	}
}

// Serve accepts connections from ln until Shutdown or Close.
func (s *Server) Serve(ln net.Listener) error {
	s.init()
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.ln = ln
	s.mu.Unlock()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// EMFILE and the like: back off as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.Log.Warn("h1 server: accept", "error", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-s.done:
				return nil
			}
			continue
		}
		backoff = 0
		c := &srvConn{s: s, nc: nc, fd: -1, expires: time.Now().Add(s.headerTimeout()).UnixNano()}
		if !s.track(c) {
			nc.Close()
			continue
		}
		go c.serve()
	}
}

func (s *Server) track(c *srvConn) bool { return s.conns.Add(c, &s.closing) }

func (s *Server) untrack(c *srvConn) { s.conns.Remove(c) }

// Shutdown stops accepting, closes idle connections, lets in-flight
// requests finish (their responses carry Connection: close) and waits until
// every connection is closed or ctx ends; then it closes the rest.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.stop()
	if err := s.conns.Drain(ctx, s.closeIdle, s.Close); err != nil {
		return err
	}
	s.wg.Wait()
	return nil
}

// Close closes the listener and every connection at once.
func (s *Server) Close() error {
	s.init()
	s.stop()
	for _, c := range s.conns.Snapshot() {
		c.state.Store(csClosed)
		c.nc.Close()
		s.untrack(c)
	}
	if s.poll != nil {
		s.poll.closeAll()
	}
	s.wg.Wait()
	return nil
}

func (s *Server) stop() {
	s.mu.Lock()
	first := !s.closing.Swap(true)
	ln := s.ln
	s.mu.Unlock()
	if !first {
		return
	}
	close(s.done)
	if ln != nil {
		ln.Close()
	}
	if s.poll != nil {
		s.poll.closeAll()
	}
}

func (s *Server) closeIdle() {
	var idle []*srvConn
	s.conns.Range(func(c *srvConn) {
		if c.state.CompareAndSwap(csIdle, csClosed) {
			idle = append(idle, c)
		}
	})
	for _, c := range idle {
		c.nc.Close() // its goroutine sees the error and untracks it
	}
}

func (s *Server) headerTimeout() time.Duration {
	if s.ReadHeaderTimeout > 0 {
		return s.ReadHeaderTimeout
	}
	if s.IdleTimeout > 0 {
		return s.IdleTimeout
	}
	return 10 * time.Second
}

func (s *Server) idleTimeout() time.Duration {
	if s.IdleTimeout > 0 {
		return s.IdleTimeout
	}
	return s.headerTimeout()
}
