package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// TestErrors checks every gateway-made error status and its JSON body.
func TestErrors(t *testing.T) {
	var hits atomic.Int64
	counted := gwtest.Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.Copy(io.Discard, r.Body)
		w.Write([]byte("ok"))
	}))
	slow := gwtest.Upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		w.Write([]byte("late"))
	}))
	closed := gwtest.FreeAddr(t) // nothing listens here
	g := startGateway(t, listenerYAML("{max_body_bytes: 1024, max_header_bytes: 4096}")+fmt.Sprintf(`
upstreams:
  counted: {targets: [{address: %q}]}
  slow: {targets: [{address: %q}]}
  closed: {connect_timeout: 1s, targets: [{address: %q}]}
routes:
  - {name: counted, match: {path: {prefix: /counted}}, upstream: counted}
  - {name: slow, match: {path: {exact: /slow}}, upstream: slow, timeout: 300ms}
  - {name: closed, match: {path: {exact: /closed}}, upstream: closed}
`, counted, slow, closed))
	c := newClient(t)

	t.Run("404 route_not_found", func(t *testing.T) {
		resp, body := get(t, c, g.URL+"/nothing/here")
		checkError(t, resp, body, http.StatusNotFound, "route_not_found")
	})
	t.Run("404 keeps a sane client request id", func(t *testing.T) {
		req := newRequest(t, http.MethodGet, g.URL+"/nothing", nil)
		req.Header.Set("X-Request-ID", "client-id-1")
		resp, body := do(t, c, req)
		checkError(t, resp, body, http.StatusNotFound, "route_not_found")
		if resp.Header.Get("X-Request-ID") != "client-id-1" {
			t.Errorf("X-Request-ID %q, want client-id-1", resp.Header.Get("X-Request-ID"))
		}
	})
	t.Run("404 concurrently", func(t *testing.T) {
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 20 {
					resp, err := c.Get(g.URL + "/nothing")
					if err != nil {
						t.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusNotFound {
						t.Errorf("status %d, want 404", resp.StatusCode)
					}
				}
			}()
		}
		wg.Wait()
	})
	t.Run("502 upstream_unreachable", func(t *testing.T) {
		resp, body := get(t, c, g.URL+"/closed")
		checkError(t, resp, body, http.StatusBadGateway, "upstream_unreachable")
	})
	t.Run("504 upstream_timeout", func(t *testing.T) {
		start := time.Now()
		resp, body := get(t, c, g.URL+"/slow")
		took := time.Since(start)
		checkError(t, resp, body, http.StatusGatewayTimeout, "upstream_timeout")
		if took < 250*time.Millisecond || took > 3*time.Second {
			t.Errorf("504 after %s, want near the 300ms route timeout", took)
		}
	})
	t.Run("413 declared content-length", func(t *testing.T) {
		before := hits.Load()
		req := newRequest(t, http.MethodPost, g.URL+"/counted", bytes.NewReader(make([]byte, 4096)))
		resp, body := do(t, c, req)
		checkError(t, resp, body, http.StatusRequestEntityTooLarge, "body_too_large")
		if n := hits.Load() - before; n != 0 {
			t.Errorf("upstream received %d requests, want none", n)
		}
	})
	t.Run("413 chunked body over the limit", func(t *testing.T) {
		// io.MultiReader hides the length, so the client sends chunks.
		req := newRequest(t, http.MethodPost, g.URL+"/counted", io.MultiReader(bytes.NewReader(make([]byte, 8192))))
		resp, body := do(t, c, req)
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want 413; body %s", resp.StatusCode, body)
		}
		checkError(t, resp, body, http.StatusRequestEntityTooLarge, "body_too_large")
	})
	t.Run("body at the limit passes", func(t *testing.T) {
		resp, body := do(t, c, newRequest(t, http.MethodPost, g.URL+"/counted", bytes.NewReader(make([]byte, 1024))))
		if resp.StatusCode != 200 || string(body) != "ok" {
			t.Errorf("got %d %q, want 200 ok", resp.StatusCode, body)
		}
	})
	t.Run("431 headers_too_large", func(t *testing.T) {
		before := hits.Load()
		req := newRequest(t, http.MethodGet, g.URL+"/counted", nil)
		req.Header.Set("X-Big", strings.Repeat("x", 5000))
		resp, body := do(t, c, req)
		checkError(t, resp, body, http.StatusRequestHeaderFieldsTooLarge, "headers_too_large")
		if n := hits.Load() - before; n != 0 {
			t.Errorf("upstream received %d requests, want none", n)
		}
	})
	t.Run("431 grossly oversized head", func(t *testing.T) {
		// Cut off by the HTTP server before the handler: status only.
		raw := rawExchange(t, g.Addr, "GET /counted HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("x", 64<<10)+"\r\n\r\n")
		if got := statusOf(t, raw); got != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("status %d, want 431; response %.200q", got, raw)
		}
	})
	for _, tc := range []struct{ name, req string }{
		// At least 14 bytes: with h2c enabled, net/http first waits for
		// enough bytes to rule out the HTTP/2 preface "PRI * HTTP/2.0".
		{"400 bad request line", "THIS IS NOT HTTP AT ALL\r\n\r\n"},
		{"400 bad header", "GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"},
		{"400 missing host", "GET /counted HTTP/1.1\r\n\r\n"},
		{"400 bad content-length", "POST /counted HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := rawExchange(t, g.Addr, tc.req)
			if got := statusOf(t, raw); got != http.StatusBadRequest {
				t.Errorf("status %d, want 400; response %.200q", got, raw)
			}
		})
	}
}

// TestMaxConnections checks that connections beyond max_connections are
// closed at once while the admitted ones keep working.
func TestMaxConnections(t *testing.T) {
	g := startGateway(t, listenerYAML("{max_connections: 2}")+fmt.Sprintf(`
upstreams:
  echo: {targets: [{address: %q}]}
routes:
  - {name: all, match: {path: {prefix: /}}, upstream: echo}
`, echoUpstream(t, "echo")))

	type conn struct {
		c  net.Conn
		br *bufio.Reader
	}
	roundTrip := func(t *testing.T, cn conn) {
		t.Helper()
		cn.c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(cn.c, "GET /x HTTP/1.1\r\nHost: gw.test\r\n\r\n"); err != nil {
			t.Fatalf("write: %v", err)
		}
		resp, err := http.ReadResponse(cn.br, nil)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	var conns []conn
	for range 2 {
		c, err := net.DialTimeout("tcp", g.Addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		cn := conn{c, bufio.NewReader(c)}
		roundTrip(t, cn) // the request proves the gateway accepted it
		conns = append(conns, cn)
	}

	// The kernel completes the handshake and the gateway resets the
	// connection; the reset may even arrive before the dial returns.
	third, err := net.DialTimeout("tcp", g.Addr, 5*time.Second)
	switch {
	case errors.Is(err, syscall.ECONNRESET):
	case err != nil:
		t.Fatal(err)
	default:
		defer third.Close()
		third.SetDeadline(time.Now().Add(3 * time.Second))
		io.WriteString(third, "GET /x HTTP/1.1\r\nHost: gw.test\r\n\r\n")
		start := time.Now()
		b, err := io.ReadAll(third)
		if len(b) > 0 {
			t.Errorf("third connection got an answer: %.200q", b)
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("third connection was left open (read timed out after %s), want closed at once", time.Since(start))
		}
	}

	for i, cn := range conns {
		t.Run(fmt.Sprintf("admitted connection %d still works", i), func(t *testing.T) { roundTrip(t, cn) })
	}

	t.Run("a slot freed by a close is reused", func(t *testing.T) {
		conns[0].c.Close()
		// The gateway notices the close asynchronously; poll with new
		// connections until one is admitted.
		deadline := time.Now().Add(5 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", g.Addr, time.Second)
			if err == nil {
				c.SetDeadline(time.Now().Add(2 * time.Second))
				io.WriteString(c, "GET /x HTTP/1.1\r\nHost: gw.test\r\n\r\n")
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err == nil {
					resp.Body.Close()
					c.Close()
					if resp.StatusCode == 200 {
						return
					}
				}
				c.Close()
			}
			if time.Now().After(deadline) {
				t.Fatal("no connection admitted after one was closed")
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
