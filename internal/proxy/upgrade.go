package proxy

import (
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/rampart-gw/rampart/internal/exchange"
)

// ConnSet tracks connections taken over from the HTTP server (upgrades), so
// that a draining gateway can close them once the drain timeout passes.
type ConnSet struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// Add tracks c.
func (s *ConnSet) Add(c net.Conn) {
	s.mu.Lock()
	if s.conns == nil {
		s.conns = map[net.Conn]struct{}{}
	}
	s.conns[c] = struct{}{}
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
	if p.deps.Upgraded != nil {
		p.deps.Upgraded.Add(client)
		defer p.deps.Upgraded.Remove(client)
	}
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
	done := make(chan struct{}, 2)
	go func() {
		defer func() { recover(); done <- struct{}{} }()
		// Bytes the client sent after its request, already buffered.
		if n := brw.Reader.Buffered(); n > 0 {
			b, _ := brw.Reader.Peek(n)
			if _, err := upConn.Write(b); err != nil {
				return
			}
		}
		io.Copy(upConn, client)
		if cw, ok := upConn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}()
	go func() {
		defer func() { recover(); done <- struct{}{} }()
		io.Copy(client, upConn)
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
