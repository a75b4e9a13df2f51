package proxy

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rampart-gw/rampart/internal/exchange"
)

// ConnSet tracks connections taken over from the HTTP server (upgrades), so
// that a draining gateway can say goodbye to them (a WebSocket close frame,
// 1001 going away) and close them once the drain timeout passes.
type ConnSet struct {
	mu    sync.Mutex
	conns map[net.Conn]func()
}

// Add tracks c. goingAway, if not nil, starts a clean close of the session
// (for a WebSocket, a close frame each way); it must not block for long.
func (s *ConnSet) Add(c net.Conn, goingAway func()) {
	s.mu.Lock()
	if s.conns == nil {
		s.conns = map[net.Conn]func(){}
	}
	s.conns[c] = goingAway
	s.mu.Unlock()
}

// Remove stops tracking c.
func (s *ConnSet) Remove(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Len returns the number of tracked connections.
func (s *ConnSet) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// GoingAway starts a clean close of every tracked session that knows one
// and returns how many it asked.
func (s *ConnSet) GoingAway() int {
	s.mu.Lock()
	fns := make([]func(), 0, len(s.conns))
	for _, fn := range s.conns {
		if fn != nil {
			fns = append(fns, fn)
		}
	}
	s.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
	return len(fns)
}

// CloseAll closes every tracked connection.
func (s *ConnSet) CloseAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

// serveUpgrade completes a protocol switch (WebSocket): it takes over the
// client connection, relays the upstream's 101 response and then copies
// bytes both ways until either side closes.
func (p *Proxy) serveUpgrade(w http.ResponseWriter, r *http.Request, resp *http.Response, want string) {
	upConn, ok := resp.Body.(io.ReadWriteCloser)
	if !ok || want == "" || !hasToken(resp.Header["Upgrade"], want) {
		resp.Body.Close()
		exchange.Error(w, r, http.StatusBadGateway, "bad_upstream_response", "upstream switched protocols unexpectedly")
		return
	}
	defer upConn.Close()
	client, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		exchange.Error(w, r, http.StatusInternalServerError, "upgrade_failed", "cannot take over the connection for an upgrade")
		return
	}
	defer client.Close()
	// Connection-specific headers other than the upgrade itself must not
	// pass; keep Connection/Upgrade, which the switch needs.
	upgradeHdr := resp.Header["Upgrade"]
	removeHopByHop(resp.Header)
	resp.Header["Connection"] = []string{"Upgrade"}
	resp.Header["Upgrade"] = upgradeHdr
	if rid := w.Header().Get(p.cfg.RequestIDHeader); rid != "" && p.cfg.RequestIDHeader != "" {
		resp.Header.Set(p.cfg.RequestIDHeader, rid)
	}
	client.SetDeadline(time.Time{})
	resp.Body = nil
	if err := resp.Write(brw); err != nil {
		return
	}
	if err := brw.Flush(); err != nil {
		return
	}
	// A WebSocket is relayed frame by frame, so that a drain can close it
	// with a close frame between two frames; anything else is bytes.
	var toUp, toClient io.Writer = upConn, client
	var goingAway func()
	if strings.EqualFold(want, "websocket") {
		up, down := &wsPipe{dst: upConn, mask: true}, &wsPipe{dst: client}
		toUp, toClient = up, down
		goingAway = func() {
			// The client is told first: it is the one that reconnects.
			go func() { defer func() { recover() }(); down.goingAway() }()
			go func() { defer func() { recover() }(); up.goingAway() }()
		}
	}
	if p.deps.Upgraded != nil {
		p.deps.Upgraded.Add(client, goingAway)
		defer p.deps.Upgraded.Remove(client)
	}
	done := make(chan struct{}, 2)
	go func() {
		defer func() { recover(); done <- struct{}{} }()
		// Bytes the client sent after its request, already buffered.
		if n := brw.Reader.Buffered(); n > 0 {
			b, _ := brw.Reader.Peek(n)
			if _, err := toUp.Write(b); err != nil {
				return
			}
		}
		relay(toUp, client)
		if cw, ok := upConn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}()
	go func() {
		defer func() { recover(); done <- struct{}{} }()
		relay(toClient, upConn)
		if cw, ok := client.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}()
	<-done
	// One direction ended; closing both ends unblocks the other copier.
	client.Close()
	upConn.Close()
	<-done
}

// relay copies src to dst until either ends.
func relay(dst io.Writer, src io.Reader) {
	if p, ok := dst.(*wsPipe); ok {
		p.copyFrom(src)
		return
	}
	io.Copy(dst, src)
}
