package cluster

import (
	"context"
	"crypto/tls"
	"net"
	"time"

	"github.com/rampart-gw/rampart/internal/cluster/balancer"
	"github.com/rampart-gw/rampart/internal/cluster/breaker"
	"github.com/rampart-gw/rampart/internal/cluster/outlier"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/proxyproto"
)

// DialTCP connects to target t for the L4 proxy (a tcp listener): within
// the upstream's connect_timeout (the TLS handshake included when the
// upstream has tls), counted against circuit_breaker.max_connections until
// the connection is closed. A preamble (the PROXY protocol header) is
// written first, before TLS. The outcome goes to outlier detection: a
// failed connect or handshake is a connect failure, returned as a
// *DialError; a made connection is a success. A full breaker returns an
// *OverflowError without dialing. The connection returned unwraps (Unwrap)
// to the *net.TCPConn beneath, so that the proxy can splice.
func (u *Upstream) DialTCP(ctx context.Context, t *balancer.Target, preamble []byte) (net.Conn, error) {
	timeout := u.cfg.ConnectTimeout.D()
	if timeout <= 0 {
		timeout = config.DefaultConnectTimeout.D()
	}
	b := u.st.breaker.Load()
	if b != nil && !b.TryAcquireConnection() {
		return nil, &OverflowError{Resource: breaker.Connections}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := net.Dialer{KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", t.Addr)
	if err == nil && len(preamble) > 0 {
		if dl, ok := ctx.Deadline(); ok {
			c.SetWriteDeadline(dl)
		}
		if _, err = c.Write(preamble); err != nil {
			c.Close()
		}
		c.SetWriteDeadline(time.Time{})
	}
	if err == nil && u.tls != nil {
		tc := u.tls
		if tc.ServerName == "" {
			tc = tc.Clone()
			tc.ServerName, _, _ = net.SplitHostPort(t.Addr)
		}
		tlsConn := tls.Client(c, tc)
		if err = tlsConn.HandshakeContext(ctx); err != nil {
			c.Close()
		} else {
			c = tlsConn
		}
	}
	if err != nil {
		if b != nil {
			b.ReleaseConnection()
		}
		u.Report(t.Addr, outlier.ConnectFailure)
		return nil, &DialError{Addr: t.Addr, Err: err}
	}
	u.Report(t.Addr, outlier.Success)
	if b == nil {
		return c, nil
	}
	return &limitedConn{Conn: c, b: b}, nil
}

// ConnectTimeout is the upstream's connect_timeout.
func (u *Upstream) ConnectTimeout() time.Duration {
	if d := u.cfg.ConnectTimeout.D(); d > 0 {
		return d
	}
	return config.DefaultConnectTimeout.D()
}

// ProxyProtocol is the PROXY protocol version the upstream's targets want
// first on each connection (proxy_protocol): 1, 2, or 0 for none.
func (u *Upstream) ProxyProtocol() int { return proxyVersion(u.cfg.ProxyProtocol) }

func proxyVersion(s string) int {
	switch s {
	case "v1":
		return proxyproto.V1
	case "v2":
		return proxyproto.V2
	}
	return 0
}
