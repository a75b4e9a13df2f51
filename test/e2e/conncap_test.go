package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// TestMaxConnectionsPerIP opens max_connections_per_ip connections from
// 127.0.0.1 with real sockets, each proven admitted by a request; the next
// one is closed at once (and counted), the admitted ones keep working, and
// closing one frees a slot for a new connection. max_connections is far
// above, so the per-IP cap is what refuses.
func TestMaxConnectionsPerIP(t *testing.T) {
	for _, perIP := range []int{1, 3} {
		t.Run(fmt.Sprintf("max_connections_per_ip=%d", perIP), func(t *testing.T) {
			g := startGateway(t, listenerYAML(fmt.Sprintf("{max_connections: 100, max_connections_per_ip: %d}", perIP))+fmt.Sprintf(`
upstreams:
  echo: {targets: [{address: %q}]}
routes:
  - {name: all, match: {path: {prefix: /}}, upstream: echo}
`, echoUpstream(t, "echo")))

			var open []*capConn
			for i := range perIP {
				c, err := dialCap(g.Addr)
				if err != nil {
					t.Fatalf("connection %d: %v", i, err)
				}
				t.Cleanup(func() { c.Close() })
				if err := c.roundTrip(); err != nil {
					t.Fatalf("connection %d of %d not served: %v", i+1, perIP, err)
				}
				open = append(open, c)
			}

			before := rejectedConns(t, g.Admin)
			assertRefused(t, g.Addr)
			// The counter is bumped just after the reset the client saw.
			gwtest.WaitFor(t, 2*time.Second, "rampart_rejected_connections_total to count the refusal", func() bool {
				return rejectedConns(t, g.Admin) == before+1
			})
			for i, c := range open {
				if err := c.roundTrip(); err != nil {
					t.Errorf("admitted connection %d stopped working: %v", i+1, err)
				}
			}

			// The gateway sees the close asynchronously: poll, bounded,
			// with new connections until one is admitted.
			open[0].Close()
			deadline := time.Now().Add(5 * time.Second)
			for {
				c, err := dialCap(g.Addr)
				if err == nil {
					err = c.roundTrip()
					if err == nil {
						t.Cleanup(func() { c.Close() })
						break
					}
					c.Close()
				}
				if time.Now().After(deadline) {
					t.Fatalf("no connection admitted within 5s after one was closed: %v", err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			// The freed slot is taken again: the cap still holds.
			assertRefused(t, g.Addr)
		})
	}
}

// capConn is a client connection that sends keep-alive requests.
type capConn struct {
	net.Conn
	br *bufio.Reader
}

func dialCap(addr string) (*capConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &capConn{Conn: c, br: bufio.NewReader(c)}, nil
}

// roundTrip sends one GET and reads a 200 answer.
func (c *capConn) roundTrip() error {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET /x HTTP/1.1\r\nHost: gw.test\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// assertRefused dials addr and expects the connection closed at once with
// nothing served: reset during or just after the handshake.
func assertRefused(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		return
	case err != nil:
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	io.WriteString(c, "GET /x HTTP/1.1\r\nHost: gw.test\r\n\r\n")
	start := time.Now()
	b, err := io.ReadAll(c)
	if len(b) > 0 {
		t.Errorf("connection over the per-IP cap got an answer: %.200q", b)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Errorf("connection over the per-IP cap was left open (read timed out after %s), want closed at once", time.Since(start))
	}
}

var rejectedLine = regexp.MustCompile(`(?m)^rampart_rejected_connections_total\{listener="public"\} ([0-9]+)$`)

// rejectedConns reads rampart_rejected_connections_total for the public
// listener (0 while it has no series).
func rejectedConns(t *testing.T, admin string) int {
	t.Helper()
	_, body := get(t, newClient(t), admin+"/metrics")
	m := rejectedLine.FindSubmatch(body)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}
