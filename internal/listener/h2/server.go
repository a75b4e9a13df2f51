// Package h2 is Rampart's own HTTP/2 server (h2c with prior knowledge and
// h2 negotiated through ALPN), built from golang.org/x/net/http2's Framer
// and hpack. docs/performance.md ("An HTTP/2 server of our own") gives the
// design; the files follow its seams: the life cycle (server.go), the
// reader and the protocol state machine (conn.go), the write queue and
// frame encoding (write.go), request building and the request body
// (request.go) and the response writer (response.go).
//
// It reads what the framing guard's guard.Conn hands it, so the guard's
// HTTP/2 budgets (rapid reset, PING and SETTINGS floods) apply as they do
// under net/http; the handler it is given is expected to be wrapped in
// guard.Handler as net/http's is.
package h2

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-gw/rampart/internal/listener/httpcore"
)

// Defaults of the limits, as the listener configured net/http's server.
const (
	DefaultMaxConcurrentStreams = 100
	DefaultStreamWindow         = 64 << 10
	DefaultConnWindow           = 1 << 20
	DefaultMaxReadFrameSize     = 1 << 14
	DefaultMaxHeaderListSize    = 1<<20 + 320
)

// Server serves HTTP/2 connections handed to ServeConn.
type Server struct {
	Handler http.Handler
	// MaxConcurrentStreams is advertised in SETTINGS and enforced.
	MaxConcurrentStreams uint32
	// StreamWindow and ConnWindow are the receive flow-control windows.
	StreamWindow int32
	ConnWindow   int32
	// MaxReadFrameSize is the largest frame payload accepted.
	MaxReadFrameSize uint32
	// MaxHeaderListSize bounds a request's decoded header list (RFC 9113
	// §6.5.2); beyond it the request is answered 431.
	MaxHeaderListSize uint32
	// PrefaceTimeout bounds reading the client preface and first SETTINGS.
	PrefaceTimeout time.Duration
	// IdleTimeout closes (GOAWAY) a connection with no open stream.
	IdleTimeout time.Duration
	// ConnContext, if set, derives a connection's base context (as
	// http.Server.ConnContext).
	ConnContext func(context.Context, net.Conn) context.Context
	Log         *slog.Logger

	mu       sync.Mutex // guards idle
	conns    httpcore.Conns[*conn]
	idle     []chan *stream // parked handler goroutines (workers)
	closing  atomic.Bool
	initOnce sync.Once
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		if s.Log == nil {
			s.Log = slog.Default()
		}
		if s.MaxConcurrentStreams == 0 {
			s.MaxConcurrentStreams = DefaultMaxConcurrentStreams
		}
		if s.StreamWindow <= 0 {
			s.StreamWindow = DefaultStreamWindow
		}
		if s.ConnWindow < 65535 {
			s.ConnWindow = DefaultConnWindow
		}
		if s.MaxReadFrameSize < 1<<14 || s.MaxReadFrameSize > 1<<24-1 {
			s.MaxReadFrameSize = DefaultMaxReadFrameSize
		}
		if s.MaxHeaderListSize == 0 {
			s.MaxHeaderListSize = DefaultMaxHeaderListSize
		}
	})
}

// ServeConn serves nc, which starts with the client preface, until the
// connection ends. It closes nc.
func (s *Server) ServeConn(nc net.Conn) {
	s.init()
	c := newConn(s, nc)
	if !s.track(c) {
		nc.Close()
		return
	}
	defer s.untrack(c)
	defer func() {
		if p := recover(); p != nil {
			// A bug in the server must cost one connection, not the
			// process.
			s.Log.Error("h2: connection panicked; closed", "remote", c.remote, "panic", p, "stack", string(debug.Stack()))
			c.mu.Lock()
			c.failLocked(errConnClosed)
			c.mu.Unlock()
			nc.Close()
		}
	}()
	c.serve()
}

func (s *Server) track(c *conn) bool { return s.conns.Add(c, &s.closing) }

func (s *Server) untrack(c *conn) { s.conns.Remove(c) }

// maxIdleWorkers bounds the handler goroutines kept parked for the next
// streams: a reused goroutine keeps the stack the gateway's handler grew,
// which a new one grows (and copies) again.
const maxIdleWorkers = 64

// dispatch runs st's handler on a parked worker, or a new goroutine.
func (s *Server) dispatch(st *stream) {
	s.mu.Lock()
	if n := len(s.idle); n > 0 {
		ch := s.idle[n-1]
		s.idle = s.idle[:n-1]
		s.mu.Unlock()
		ch <- st
		return
	}
	s.mu.Unlock()
	go s.work(st)
}

func (s *Server) work(st *stream) {
	var ch chan *stream
	for st != nil {
		st.c.runHandler(st, st.handler)
		if ch == nil {
			ch = make(chan *stream, 1)
		}
		s.mu.Lock()
		if len(s.idle) >= maxIdleWorkers || s.closing.Load() {
			s.mu.Unlock()
			return
		}
		s.idle = append(s.idle, ch)
		s.mu.Unlock()
		st = <-ch
	}
}

// stopWorkers ends the parked workers.
func (s *Server) stopWorkers() {
	s.mu.Lock()
	idle := s.idle
	s.idle = nil
	s.mu.Unlock()
	for _, ch := range idle {
		ch <- nil
	}
}

// Shutdown sends GOAWAY to every connection, lets the streams in flight
// finish and waits until every connection is closed or ctx ends; then it
// closes the rest.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.closing.Store(true)
	for _, c := range s.conns.Snapshot() {
		c.shutdown()
	}
	if err := s.conns.Drain(ctx, nil, s.Close); err != nil {
		return err
	}
	s.stopWorkers()
	return nil
}

// Close closes every connection at once.
func (s *Server) Close() error {
	s.init()
	s.closing.Store(true)
	for _, c := range s.conns.Snapshot() {
		c.nc.Close()
	}
	s.stopWorkers()
	return nil
}

// Conns is the number of connections being served.
func (s *Server) Conns() int {
	s.init()
	return s.conns.Len()
}
