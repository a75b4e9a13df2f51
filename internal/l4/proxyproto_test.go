package l4_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
)

// seen is what a PROXY-aware test server read from one connection's
// header, decoded here byte by byte (not with package proxyproto, so that
// the two cannot agree on a mistake).
type seen struct {
	version  int
	local    bool
	src, dst netip.AddrPort
	err      error
}

// proxyTarget is a server that wants a PROXY protocol header (v1 or v2)
// first on every connection, records it, and then serves the rest with
// then (an echo when nil). A connection without a valid header is closed.
type proxyTarget struct {
	*target
	mu   sync.Mutex
	seen []seen
}

func newProxyTarget(t *testing.T, then func(r *bufio.Reader, c net.Conn)) *proxyTarget {
	pt := &proxyTarget{}
	pt.target = newTargetWith(t, "", func(c net.Conn) {
		r := bufio.NewReader(c)
		s := readHeader(r)
		pt.mu.Lock()
		pt.seen = append(pt.seen, s)
		pt.mu.Unlock()
		if s.err != nil {
			return
		}
		if then != nil {
			then(r, c)
			return
		}
		io.Copy(c, r)
	})
	return pt
}

func (pt *proxyTarget) headers() []seen {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	return append([]seen(nil), pt.seen...)
}

func readHeader(r *bufio.Reader) seen {
	first, err := r.Peek(12)
	if err != nil {
		return seen{err: err}
	}
	if bytes.Equal(first, []byte("\r\n\r\n\x00\r\nQUIT\n")) {
		var fixed [16]byte
		if _, err := io.ReadFull(r, fixed[:]); err != nil {
			return seen{err: err}
		}
		rest := make([]byte, binary.BigEndian.Uint16(fixed[14:]))
		if _, err := io.ReadFull(r, rest); err != nil {
			return seen{err: err}
		}
		s := seen{version: 2}
		switch {
		case fixed[12] == 0x20:
			s.local = true
		case fixed[12] == 0x21 && fixed[13] == 0x11 && len(rest) >= 12:
			s.src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(rest[0:4])), binary.BigEndian.Uint16(rest[8:]))
			s.dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(rest[4:8])), binary.BigEndian.Uint16(rest[10:]))
		default:
			s.err = fmt.Errorf("v2 command/family %#x %#x", fixed[12], fixed[13])
		}
		return s
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return seen{err: err}
	}
	f := strings.Fields(line)
	switch {
	case len(f) >= 2 && f[0] == "PROXY" && f[1] == "UNKNOWN":
		return seen{version: 1, local: true}
	case len(f) == 6 && f[0] == "PROXY" && f[1] == "TCP4" && strings.HasSuffix(line, "\r\n"):
		src, err1 := netip.ParseAddrPort(f[2] + ":" + f[4])
		dst, err2 := netip.ParseAddrPort(f[3] + ":" + f[5])
		if err1 != nil || err2 != nil {
			return seen{err: fmt.Errorf("v1 line %q", line)}
		}
		return seen{version: 1, src: src, dst: dst}
	}
	return seen{err: fmt.Errorf("no PROXY header: %q", line)}
}

// With proxy_protocol, every connection to a target starts with a header
// naming the client's address and the one it connected to; the client's
// bytes follow untouched.
func TestProxyProtocolToTarget(t *testing.T) {
	for _, v := range []int{1, 2} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			pt := newProxyTarget(t, nil)
			g := startGateway(t, tcpConfig([]string{pt.addr()}, "", fmt.Sprintf("proxy_protocol: v%d", v)))
			c := dial(t, g.addr("db"))
			if got, err := roundTrip(c, "PROXY TCP4 6.6.6.6 7.7.7.7 1 2\r\nthe client's bytes"); err != nil {
				t.Fatalf("echo: %q, %v", got, err)
			}
			hs := pt.headers()
			if len(hs) != 1 {
				t.Fatalf("target read %d headers, want 1: %+v", len(hs), hs)
			}
			want := seen{version: v, src: netip.MustParseAddrPort(c.LocalAddr().String()), dst: netip.MustParseAddrPort(c.RemoteAddr().String())}
			if hs[0] != want {
				t.Fatalf("target read %+v, want %+v", hs[0], want)
			}
		})
	}
}

// writeV2 writes a version 2 PROXY header for src -> dst on c, by hand.
func writeV2(t *testing.T, c net.Conn, src, dst netip.AddrPort) {
	t.Helper()
	b := []byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c")
	s, d := src.Addr().As4(), dst.Addr().As4()
	b = append(append(b, s[:]...), d[:]...)
	b = binary.BigEndian.AppendUint16(b, src.Port())
	b = binary.BigEndian.AppendUint16(b, dst.Port())
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

// Connections from trusted_proxies start with a PROXY header: the client
// it names is the one passed on to the target (and counted per IP); a
// trusted peer without a valid header is closed; other peers' bytes are
// relayed as they are.
func TestProxyProtocolFromTrustedPeer(t *testing.T) {
	client := netip.MustParseAddrPort("203.0.113.7:4242")
	front := netip.MustParseAddrPort("198.51.100.1:5432")
	t.Run("v2 and v1 from a trusted peer", func(t *testing.T) {
		pt := newProxyTarget(t, nil)
		g := startGateway(t, tcpConfig([]string{pt.addr()}, "trusted_proxies: [127.0.0.0/8]", "proxy_protocol: v1"))
		c := dial(t, g.addr("db"))
		writeV2(t, c, client, front)
		if got, err := roundTrip(c, "after the v2 header"); err != nil {
			t.Fatalf("echo: %q, %v", got, err)
		}
		c2 := dial(t, g.addr("db"))
		if got, err := ask(c2, "PROXY TCP4 203.0.113.8 198.51.100.1 1000 5432\r\nafter the v1 header", len("after the v1 header")); got != "after the v1 header" || err != nil {
			t.Fatalf("echo: %q, %v", got, err)
		}
		hs := pt.headers()
		want := []seen{{version: 1, src: client, dst: front}, {version: 1, src: netip.MustParseAddrPort("203.0.113.8:1000"), dst: front}}
		if fmt.Sprint(hs) != fmt.Sprint(want) {
			t.Fatalf("target read %+v, want %+v", hs, want)
		}
	})
	t.Run("v1 header and data in one write", func(t *testing.T) {
		echo := newTarget(t)
		g := startGateway(t, tcpConfig([]string{echo.addr()}, "trusted_proxies: [127.0.0.1]", ""))
		c := dial(t, g.addr("db"))
		// Nothing after the header may be lost or kept back.
		if _, err := io.WriteString(c, "PROXY TCP4 203.0.113.8 198.51.100.1 1000 5432\r\nping"); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("echo: %q, %v", buf, err)
		}
	})
	t.Run("bad or missing header", func(t *testing.T) {
		echo := newTarget(t)
		g := startGateway(t, tcpConfig([]string{echo.addr()}, "trusted_proxies: [127.0.0.1]\nlimits: {read_header_timeout: 200ms}", ""))
		for _, tc := range []struct{ name, send string }{
			{"no header", "*1\r\n$4\r\nPING\r\n"},
			{"malformed v1", "PROXY TCP4 1.2.3.4 nowhere 1 2\r\n"},
			{"sends nothing", ""},
		} {
			c := dial(t, g.addr("db"))
			io.WriteString(c, tc.send)
			if err := closed(c, ioTimeout); err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
		}
		if n := echo.accepted.Load(); n != 0 {
			t.Errorf("the target got %d connections, want none", n)
		}
		waitFor(t, "three proxy_header results", func() bool {
			return g.metric("rampart_tcp_connections_total", `listener="db",upstream="pg",result="proxy_header"`) == 3
		})
	})
	t.Run("untrusted peer", func(t *testing.T) {
		echo := newTarget(t)
		g := startGateway(t, tcpConfig([]string{echo.addr()}, "trusted_proxies: [10.0.0.0/8]", ""))
		c := dial(t, g.addr("db"))
		msg := "PROXY TCP4 6.6.6.6 7.7.7.7 1 2\r\n"
		if got, err := roundTrip(c, msg); err != nil || got != msg {
			t.Fatalf("an untrusted peer's bytes: %q, %v; want them relayed", got, err)
		}
	})
	t.Run("per client ip cap counts the named client", func(t *testing.T) {
		echo := newTarget(t)
		g := startGateway(t, tcpConfig([]string{echo.addr()}, "trusted_proxies: [127.0.0.1]\nlimits: {max_connections_per_ip: 1}", ""))
		open := func(src string) net.Conn {
			c := dial(t, g.addr("db"))
			writeV2(t, c, netip.MustParseAddrPort(src), front)
			return c
		}
		// Two clients behind the same proxy: both fit.
		a, b := open("203.0.113.1:1"), open("203.0.113.2:1")
		for _, c := range []net.Conn{a, b} {
			if _, err := roundTrip(c, "x"); err != nil {
				t.Fatalf("a client under its cap: %v", err)
			}
		}
		// The first client again: over its cap of 1.
		if err := closed(open("203.0.113.1:2"), ioTimeout); err != nil {
			t.Fatalf("a client over its cap: %v", err)
		}
		a.Close()
		waitFor(t, "the client's place freed", func() bool {
			c := open("203.0.113.1:3")
			defer c.Close()
			_, err := roundTrip(c, "y")
			return err == nil
		})
	})
}

// With proxy_protocol, a send/expect health check starts with a header
// that says the connection is the gateway's own (v2 LOCAL, v1 UNKNOWN),
// so that targets that insist on a header stay healthy.
func TestHealthCheckSendsProxyHeader(t *testing.T) {
	for _, v := range []int{1, 2} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			pt := newProxyTarget(t, func(r *bufio.Reader, c net.Conn) { pong(readConn{c, r}) })
			g := startGateway(t, tcpConfig([]string{pt.addr()}, "",
				fmt.Sprintf("proxy_protocol: v%d\nhealth_check: {active: {send: \"PING\\r\\n\", expect: \"+PONG\", interval: 200ms, unhealthy_threshold: 1}}", v)))
			waitFor(t, "two health probes", func() bool { return len(pt.headers()) >= 2 })
			for _, h := range pt.headers() {
				if errors.Is(h.err, io.EOF) {
					// A probe that ran out of its timeout before writing
					// (a loaded machine): it sent nothing at all.
					continue
				}
				if h != (seen{version: v, local: true}) {
					t.Fatalf("a probe's header: %+v, want version %d local", h, v)
				}
			}
			waitFor(t, "the target healthy", func() bool {
				return g.metric("rampart_upstream_target_healthy", fmt.Sprintf("upstream=%q,target=%q", "pg", pt.addr())) == 1
			})
		})
	}
}

// readConn is a connection whose reads come from r (a bufio.Reader over
// it that may hold bytes already).
type readConn struct {
	net.Conn
	r io.Reader
}

func (c readConn) Read(b []byte) (int, error) { return c.r.Read(b) }
