package listener

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"syscall"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"golang.org/x/sys/unix"
)

// h3 is a listener's HTTP/3 server (http3: true): QUIC on the UDP port of
// the same number as the listener's TCP port, serving the same handler
// behind the same framing checks as HTTP/2.
type h3 struct {
	srv    *http3.Server
	conn   net.PacketConn
	altSvc []string // the Alt-Svc value HTTP/1.1 and HTTP/2 answers carry
}

// listenH3 binds UDP at tcpAddr's IP and port. SO_REUSEPORT is set so
// that a binary upgrade's new process can bind the port while the old one
// drains (the kernel then spreads packets over both sockets; see
// docs/operations.md).
func listenH3(tcpAddr net.Addr, tc *tls.Config, handler http.Handler, maxHeaderBytes int) (*h3, error) {
	ta, ok := tcpAddr.(*net.TCPAddr)
	if !ok {
		return nil, fmt.Errorf("http3: listener address %v is not TCP", tcpAddr)
	}
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		return errors.Join(err, serr)
	}}
	addr := net.JoinHostPort(ta.IP.String(), strconv.Itoa(ta.Port))
	conn, err := lc.ListenPacket(context.Background(), "udp", addr)
	if err != nil {
		return nil, fmt.Errorf("http3: bind udp %s: %w", addr, err)
	}
	// Every handshake gets a clone of the listener's config as it is at
	// that moment: its certificates (by SNI), client authentication and
	// the session ticket keys current after a rotation (http3 sets h3 as
	// the ALPN of what this returns).
	base := tc.Clone()
	base.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if tc.GetConfigForClient != nil {
			return tc.GetConfigForClient(hello)
		}
		c := tc.Clone()
		return c, nil
	}
	srv := &http3.Server{
		Handler:        handler,
		TLSConfig:      base,
		MaxHeaderBytes: maxHeaderBytes,
		// No 0-RTT: early data can be replayed, and the gateway cannot
		// know which upstream requests are safe to replay.
		QUICConfig: &quic.Config{Allow0RTT: false},
	}
	return &h3{srv: srv, conn: conn, altSvc: []string{fmt.Sprintf(`h3=":%d"; ma=86400`, ta.Port)}}, nil
}

// advertise wraps next so that every answer carries Alt-Svc for h3.
func (h *h3) advertise(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Alt-Svc"] = h.altSvc
		next.ServeHTTP(w, r)
	})
}
