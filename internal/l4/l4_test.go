package l4_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Bytes go through both ways, and a client that shuts down its writing
// (half-close) still reads the whole answer: the proxy passes the FIN on
// and keeps the other direction open.
func TestEchoAndHalfClose(t *testing.T) {
	echo := newTarget(t)
	g := startGateway(t, tcpConfig([]string{echo.addr()}, "", ""))
	tests := []struct {
		name string
		size int
	}{
		{"one byte", 1},
		{"a line", 64},
		{"large", 4 << 20}, // many splice rounds
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, g.addr("db"))
			msg := bytes.Repeat([]byte("0123456789abcdef"), tt.size/16+1)[:tt.size]
			errc := make(chan error, 1)
			go func() {
				_, err := c.Write(msg)
				if err == nil {
					err = c.CloseWrite()
				}
				errc <- err
			}()
			got, err := io.ReadAll(c) // to EOF: the echo closes after our FIN
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if err := <-errc; err != nil {
				t.Fatalf("write: %v", err)
			}
			if !bytes.Equal(got, msg) {
				t.Fatalf("echo returned %d bytes, want %d (equal: %v)", len(got), len(msg), bytes.Equal(got, msg))
			}
		})
	}
	// Bytes in and out are counted per listener and upstream.
	in := g.metric("rampart_tcp_received_bytes_total", `listener="db",upstream="pg"`)
	out := g.metric("rampart_tcp_sent_bytes_total", `listener="db",upstream="pg"`)
	want := float64(1 + 64 + 4<<20)
	waitFor(t, "byte counters", func() bool {
		in = g.metric("rampart_tcp_received_bytes_total", `listener="db",upstream="pg"`)
		out = g.metric("rampart_tcp_sent_bytes_total", `listener="db",upstream="pg"`)
		return in == want && out == want
	})
	waitFor(t, "rampart_tcp_connections_total{result=ok} 3", func() bool {
		return g.metric("rampart_tcp_connections_total", `listener="db",upstream="pg",result="ok"`) == 3
	})
}

// Connections are spread over three echo targets by the upstream's
// balancer: round robin evenly, ring_hash on the client IP all to one, and
// least_request by open connections.
func TestBalancing(t *testing.T) {
	tests := []struct {
		name     string
		balancer string
		conns    int
		// check gets each target's accepted connections.
		check func(counts []int64) error
	}{
		{"round robin", "balancer: round_robin", 30, func(c []int64) error {
			for i, n := range c {
				if n != 10 {
					return fmt.Errorf("target %d got %d connections, want 10 each: %v", i, n, c)
				}
			}
			return nil
		}},
		{"hash on client ip", "balancer: ring_hash\nhash_key: ip", 20, func(c []int64) error {
			ones := 0
			for _, n := range c {
				switch n {
				case 0:
				case 20:
					ones++
				default:
					return fmt.Errorf("connections from one IP spread over targets: %v", c)
				}
			}
			if ones != 1 {
				return fmt.Errorf("want all 20 connections on one target: %v", c)
			}
			return nil
		}},
		{"maglev on client ip", "balancer: maglev", 20, func(c []int64) error {
			for _, n := range c {
				if n != 0 && n != 20 {
					return fmt.Errorf("connections from one IP spread over targets: %v", c)
				}
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := []*target{newTarget(t), newTarget(t), newTarget(t)}
			g := startGateway(t, tcpConfig([]string{ts[0].addr(), ts[1].addr(), ts[2].addr()}, "", tt.balancer))
			for i := range tt.conns {
				c := dial(t, g.addr("db"))
				if got, err := roundTrip(c, fmt.Sprintf("ping %d\n", i)); err != nil {
					t.Fatalf("connection %d: %q, %v", i, got, err)
				}
				c.Close()
			}
			counts := make([]int64, len(ts))
			for i, tg := range ts {
				counts[i] = tg.accepted.Load()
			}
			if err := tt.check(counts); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// least_request counts open connections: with six held on one target, a
// reload that adds two more sends every new connection to the two idle
// ones (power of two choices never picks the busier of two).
func TestLeastRequestCountsOpenConnections(t *testing.T) {
	a, b, c := newTarget(t), newTarget(t), newTarget(t)
	g := startGateway(t, tcpConfig([]string{a.addr()}, "", "balancer: least_request"))
	var held []net.Conn
	for i := range 6 {
		conn := dial(t, g.addr("db"))
		if _, err := roundTrip(conn, fmt.Sprintf("hold %d\n", i)); err != nil {
			t.Fatal(err)
		}
		held = append(held, conn)
	}
	// The target keeps its in-flight count across the reload: same
	// address, weight and zone.
	g.apply(tcpConfig([]string{a.addr(), b.addr(), c.addr()}, "", "balancer: least_request"))
	for i := range 6 {
		conn := dial(t, g.addr("db"))
		if _, err := roundTrip(conn, fmt.Sprintf("new %d\n", i)); err != nil {
			t.Fatal(err)
		}
		held = append(held, conn)
	}
	if n := a.accepted.Load(); n != 6 {
		t.Errorf("the busy target got %d connections, want only the 6 held before the reload", n)
	}
	if nb, nc := b.accepted.Load(), c.accepted.Load(); nb+nc != 6 || nb == 0 || nc == 0 {
		t.Errorf("the idle targets got %d and %d connections, want 6 between them, some each", nb, nc)
	}
	for _, c := range held {
		c.Close()
	}
}

// A connect that fails moves on to the next target within the same
// client connection, so no client sees a dead target: neither one that
// was dead from the start nor one that dies under way. Connect failures
// are counted per target.
func TestFailover(t *testing.T) {
	dead := deadAddr(t)
	a, b := newTarget(t), newTarget(t)
	g := startGateway(t, tcpConfig([]string{dead, a.addr(), b.addr()}, "", "balancer: round_robin"))
	check := func(n int, when string) {
		t.Helper()
		for i := range n {
			c := dial(t, g.addr("db"))
			if got, err := roundTrip(c, "are you there\n"); err != nil {
				t.Fatalf("%s: connection %d failed: %q, %v", when, i, got, err)
			}
			c.Close()
		}
	}
	check(9, "one target dead")
	if n := g.metric("rampart_tcp_connect_failures_total", fmt.Sprintf("upstream=%q,target=%q", "pg", dead)); n < 1 {
		t.Errorf("connect failures of the dead target = %v, want at least 1", n)
	}
	a.Close() // dies under way: its port refuses from now on
	check(9, "two targets dead")
	if n := g.metric("rampart_tcp_connect_failures_total", fmt.Sprintf("upstream=%q,target=%q", "pg", a.addr())); n < 1 {
		t.Errorf("connect failures of the target that died = %v, want at least 1", n)
	}
	b.Close()
	c := dial(t, g.addr("db"))
	if err := closed(c, ioTimeout); err != nil {
		t.Errorf("with every target dead, the client connection: %v", err)
	}
	waitFor(t, "a connect_failed connection counted", func() bool {
		return g.metric("rampart_tcp_connections_total", `listener="db",upstream="pg",result="connect_failed"`) == 1
	})
}

// An upstream with no healthy target hands connections to its failover
// upstream.
func TestFailoverUpstream(t *testing.T) {
	backup := newTarget(t)
	doc := tcpConfig([]string{deadAddr(t)}, "", "failover: spare\nhealth_check:\n  panic_threshold: 0\n  passive: {consecutive_5xx: 1, base_ejection_time: 1h, max_ejection_percent: 100}") +
		fmt.Sprintf("  spare:\n    targets: [{address: %q}]\n", backup.addr())
	g := startGateway(t, doc)
	for i := range 3 {
		c := dial(t, g.addr("db"))
		got, err := roundTrip(c, "hello\n")
		c.Close()
		// The first connection finds the dead target (and ejects it); it
		// is passed on within the same connection.
		if err != nil {
			t.Fatalf("connection %d: %q, %v", i, got, err)
		}
	}
	if n := backup.accepted.Load(); n != 3 {
		t.Errorf("the failover upstream got %d connections, want 3", n)
	}
}

// A connection that carries no byte either way for idle_timeout is
// closed; one that keeps talking is not.
func TestIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	echo := newTarget(t)
	g := startGateway(t, tcpConfig([]string{echo.addr()}, "limits: {idle_timeout: 300ms}", ""))

	quiet := dial(t, g.addr("db"))
	start := time.Now()
	if _, err := roundTrip(quiet, "x"); err != nil {
		t.Fatal(err)
	}
	busy := dial(t, g.addr("db"))
	var wg sync.WaitGroup
	wg.Add(1)
	var busyErr error
	go func() {
		defer wg.Done()
		// Talks every idle/3 for 3 × idle: never idle for idle.
		for i := range 9 {
			if _, err := roundTrip(busy, "y"); err != nil {
				busyErr = fmt.Errorf("round trip %d: %w", i, err)
				return
			}
			time.Sleep(idle / 3)
		}
	}()
	if err := closed(quiet, ioTimeout); err != nil {
		t.Fatalf("idle connection: %v", err)
	}
	if d := time.Since(start); d < idle {
		t.Errorf("idle connection closed after %v, before idle_timeout %v", d, idle)
	}
	wg.Wait()
	if busyErr != nil {
		t.Errorf("busy connection was cut: %v", busyErr)
	}
}

// A client that sends nothing still gets what a server-first protocol
// says (its banner), and is closed at idle_timeout like any idle client.
func TestClientSendsNothing(t *testing.T) {
	banner := newTargetWith(t, "220 ready\r\n", nil)
	g := startGateway(t, tcpConfig([]string{banner.addr()}, "limits: {idle_timeout: 200ms}", ""))
	c := dial(t, g.addr("db"))
	buf := make([]byte, len("220 ready\r\n"))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "220 ready\r\n" {
		t.Fatalf("banner: %q, %v", buf, err)
	}
	if err := closed(c, ioTimeout); err != nil {
		t.Fatalf("silent client: %v", err)
	}
	waitFor(t, "the target's side closed", func() bool { return banner.open.Load() == 0 })
}

// max_connections caps the listener's open connections and
// max_connections_per_ip one client's: connections beyond are closed at
// once, without reaching a target, and counted as rejected.
func TestConnectionLimits(t *testing.T) {
	tests := []struct {
		name   string
		limits string
		max    int
	}{
		{"per listener", "limits: {max_connections: 2}", 2},
		{"per client ip", "limits: {max_connections_per_ip: 3}", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			echo := newTarget(t)
			g := startGateway(t, tcpConfig([]string{echo.addr()}, tt.limits, ""))
			var held []net.Conn
			for i := range tt.max {
				c := dial(t, g.addr("db"))
				if _, err := roundTrip(c, "in\n"); err != nil {
					t.Fatalf("connection %d under the cap: %v", i, err)
				}
				held = append(held, c)
			}
			// The reset may come before the dial returns.
			if over, err := net.DialTimeout("tcp", g.addr("db"), ioTimeout); err == nil {
				err := closed(over, ioTimeout)
				over.Close()
				if err != nil {
					t.Fatalf("connection over the cap: %v", err)
				}
			}
			if n := echo.accepted.Load(); n != int64(tt.max) {
				t.Errorf("the target got %d connections, want %d", n, tt.max)
			}
			// Counted just after the reset is sent.
			waitFor(t, "rampart_rejected_connections_total 1", func() bool {
				return g.metric("rampart_rejected_connections_total", `listener="db"`) == 1
			})
			// A place freed is a place taken.
			held[0].Close()
			waitFor(t, "the freed place", func() bool {
				c, err := net.DialTimeout("tcp", g.addr("db"), ioTimeout)
				if err != nil {
					return false
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(ioTimeout))
				_, err = roundTrip(c, "again\n")
				return err == nil
			})
			for _, c := range held {
				c.Close()
			}
		})
	}
}

// On drain, the listener stops accepting at once; an open connection keeps
// working until drain_timeout and is closed then, and the process is done
// within drain_timeout.
func TestDrain(t *testing.T) {
	echo := newTarget(t)
	g := startGateway(t, tcpConfig([]string{echo.addr()}, "", ""))
	addr := g.addr("db")
	open := dial(t, addr)
	if _, err := roundTrip(open, "before\n"); err != nil {
		t.Fatal(err)
	}
	done := make(chan time.Duration, 1)
	go func() { done <- g.shutdown() }()
	waitFor(t, "the listener to stop accepting", func() bool {
		c, err := net.DialTimeout("tcp", addr, ioTimeout)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	if got, err := roundTrip(open, "during the drain\n"); err != nil {
		t.Fatalf("an open connection during the drain: %q, %v", got, err)
	}
	if err := closed(open, ioTimeout); err != nil {
		t.Fatalf("at drain_timeout: %v", err)
	}
	if d := <-done; d > 3*time.Second {
		t.Errorf("drain took %v with drain_timeout 1s", d)
	}
	waitFor(t, "the target's side closed", func() bool { return echo.open.Load() == 0 })
}

// A connection whose client closes ends at once on the target's side too.
func TestClientCloseEndsTargetSide(t *testing.T) {
	echo := newTarget(t)
	g := startGateway(t, tcpConfig([]string{echo.addr()}, "", ""))
	c := dial(t, g.addr("db"))
	if _, err := roundTrip(c, "hi\n"); err != nil {
		t.Fatal(err)
	}
	if n := g.metric("rampart_tcp_active_connections", `listener="db",upstream="pg"`); n != 1 {
		t.Errorf("rampart_tcp_active_connections = %v, want 1", n)
	}
	c.Close()
	waitFor(t, "the target's side closed", func() bool { return echo.open.Load() == 0 })
	waitFor(t, "the gauge back to 0", func() bool {
		return g.metric("rampart_tcp_active_connections", `listener="db",upstream="pg"`) == 0
	})
}
