package l4_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
)

// pong answers "+PONG\r\n" to every "PING" line, like Redis.
func pong(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if strings.TrimSpace(line) == "PING" {
			io.WriteString(c, "+PONG\r\n")
		}
	}
}

// Active TCP health checks keep connections off unhealthy targets: a
// connect check off a dead port, a send/expect check off a target that
// accepts but answers wrong.
func TestActiveHealth(t *testing.T) {
	const fast = "interval: 100ms, healthy_threshold: 1, unhealthy_threshold: 2"
	tests := []struct {
		name   string
		active string
		// bad is the target that must get no client connection.
		bad func(t *testing.T) string
	}{
		{"connect check", "{" + fast + "}", deadAddr},
		{"send and expect", `{send: "PING\r\n", expect: "+PONG", ` + fast + "}", func(t *testing.T) string { return newTarget(t).addr() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			good := newTargetWith(t, "", pong)
			bad := tt.bad(t)
			g := startGateway(t, tcpConfig([]string{bad, good.addr()}, "", "health_check: {active: "+tt.active+"}"))
			waitFor(t, "the bad target marked unhealthy", func() bool {
				return g.metric("rampart_upstream_target_healthy", fmt.Sprintf("upstream=%q,target=%q", "pg", bad)) == 0 &&
					g.metric("rampart_upstream_target_healthy", fmt.Sprintf("upstream=%q,target=%q", "pg", good.addr())) == 1
			})
			failures := g.metric("rampart_tcp_connect_failures_total", fmt.Sprintf("upstream=%q,target=%q", "pg", bad))
			for i := range 10 {
				c := dial(t, g.addr("db"))
				// The echo (the bad target) would answer PING itself.
				got, err := ask(c, "PING\r\n", len("+PONG\r\n"))
				c.Close()
				if err != nil || got != "+PONG\r\n" {
					t.Fatalf("connection %d reached %q, %v; want the healthy target's +PONG", i, got, err)
				}
			}
			if n := g.metric("rampart_tcp_connect_failures_total", fmt.Sprintf("upstream=%q,target=%q", "pg", bad)); n != failures {
				t.Errorf("connect failures of the unhealthy target went from %v to %v: it was tried", failures, n)
			}
		})
	}
}

// Passive health: a target whose connects fail is ejected, so it is tried
// once, not by every connection.
func TestConnectFailuresEject(t *testing.T) {
	dead := deadAddr(t)
	a, b := newTarget(t), newTarget(t)
	g := startGateway(t, tcpConfig([]string{dead, a.addr(), b.addr()}, "",
		"health_check: {passive: {consecutive_connect_failures: 1, base_ejection_time: 1h}}"))
	for i := range 12 {
		c := dial(t, g.addr("db"))
		if got, err := roundTrip(c, "hi\n"); err != nil {
			t.Fatalf("connection %d: %q, %v", i, got, err)
		}
		c.Close()
	}
	if n := g.metric("rampart_tcp_connect_failures_total", fmt.Sprintf("upstream=%q,target=%q", "pg", dead)); n != 1 {
		t.Errorf("connect failures of the dead target = %v, want 1: ejected after the first", n)
	}
	if n := g.metric("rampart_upstream_target_healthy", fmt.Sprintf("upstream=%q,target=%q", "pg", dead)); n != 0 {
		t.Errorf("rampart_upstream_target_healthy of the ejected target = %v, want 0", n)
	}
}

// ask writes msg on c and reads n bytes of answer.
func ask(c net.Conn, msg string, n int) (string, error) {
	if _, err := io.WriteString(c, msg); err != nil {
		return "", err
	}
	buf := make([]byte, n)
	k, err := io.ReadFull(c, buf)
	return string(buf[:k]), err
}
