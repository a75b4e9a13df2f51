package listener

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
)

// Reasons of rampart_tls_handshake_errors_total.
const (
	HandshakeTimeout     = "timeout"            // not done within read_header_timeout
	HandshakeClosed      = "closed"             // the client closed or reset the connection
	HandshakeNotTLS      = "not_tls"            // the first bytes are not a TLS record (plain HTTP, say)
	HandshakeVersion     = "version"            // no protocol version in common (min_version)
	HandshakeCipher      = "cipher"             // no cipher suite, curve or signature scheme in common
	HandshakeClientCert  = "client_certificate" // client_auth: no certificate, or one that does not verify
	HandshakeClientAlert = "client_alert"       // the client aborted with an alert (it refused our certificate, say)
	HandshakeOther       = "other"
)

// HandshakeReason classifies the error of a failed server TLS handshake
// for rampart_tls_handshake_errors_total. crypto/tls has few error types,
// so some reasons are told by its (stable) messages.
func HandshakeReason(err error) string {
	var ne net.Error
	var rh tls.RecordHeaderError
	var cv *tls.CertificateVerificationError
	var op *net.OpError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return HandshakeTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed), errors.Is(err, context.Canceled):
		return HandshakeClosed
	case errors.As(err, &rh):
		return HandshakeNotTLS
	case errors.As(err, &cv):
		return HandshakeClientCert
	case errors.As(err, &op) && op.Op == "remote error":
		return HandshakeClientAlert
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "client didn't provide a certificate"), strings.Contains(msg, "failed to verify certificate"),
		strings.Contains(msg, "failed to parse client certificate"):
		return HandshakeClientCert
	case strings.Contains(msg, "unsupported versions"), strings.Contains(msg, "protocol version"):
		return HandshakeVersion
	case strings.Contains(msg, "no cipher suite"), strings.Contains(msg, "no ECDHE curve"),
		strings.Contains(msg, "no mutually supported"), strings.Contains(msg, "no supported elliptic curves"):
		return HandshakeCipher
	}
	return HandshakeOther
}

// hsConn is a server TLS connection that counts a failed handshake once.
// net/http, behind the framing guard, never calls Handshake: the first
// Read (or Write) runs it, as tls.Conn does, but through here so the error
// is seen. Unwrap gives the *tls.Conn, for the code that looks for it.
type hsConn struct {
	*tls.Conn
	done    atomic.Bool
	counted atomic.Bool
	count   func(reason string)
}

func (c *hsConn) handshake() error {
	if c.done.Load() {
		return nil
	}
	if err := c.Conn.Handshake(); err != nil {
		if c.counted.CompareAndSwap(false, true) {
			c.count(HandshakeReason(err))
		}
		return err
	}
	c.done.Store(true)
	return nil
}

func (c *hsConn) Read(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *hsConn) Write(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// Unwrap returns the TLS connection.
func (c *hsConn) Unwrap() net.Conn { return c.Conn }
