package l4

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// noIdleTick is how often a relay without idle timeout wakes up to
// account the bytes of a long transfer.
const noIdleTick = 15 * time.Second

// counters receive the bytes a relay moves: in from the client, out to it.
type counters struct {
	in, out interface{ Add(float64) }
}

// relay copies bytes between client and server until both directions are
// done, then closes both. A direction is done at its reader's EOF, which
// half-closes the other side's writing (so a client that shuts down its
// writing still gets the whole answer); it also ends on an error, which
// closes both connections at once. With idle > 0 the connection is closed
// once no byte moved either way for idle (checked every idle/4, so it is
// closed between idle and 1.25 × idle after the last byte). Plain TCP
// connections are copied with splice(2) (io.Copy between *net.TCPConn).
func relay(client, server net.Conn, idle time.Duration, n counters) {
	r := &relayState{client: client, server: server, idle: idle}
	r.last.Store(time.Now().UnixNano())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.copy(server, client, n.in)
	}()
	r.copy(client, server, n.out)
	wg.Wait()
	client.Close()
	server.Close()
}

type relayState struct {
	client, server net.Conn
	idle           time.Duration
	// last is when a byte last moved either way, in Unix nanoseconds.
	last atomic.Int64
	once sync.Once
}

// abort closes both connections, which ends both directions.
func (r *relayState) abort() {
	r.once.Do(func() {
		r.client.Close()
		r.server.Close()
	})
}

// copy moves bytes from src to dst until src's EOF (then it half-closes
// dst), an error, or the idle timeout.
func (r *relayState) copy(dst, src net.Conn, count interface{ Add(float64) }) {
	tick := noIdleTick
	if r.idle > 0 {
		tick = max(r.idle/4, time.Millisecond)
	}
	// The innermost connections, so that io.Copy between two TCP
	// connections splices; closing stays with the wrappers, which release
	// the listener's and the breaker's places.
	rd, wr := unwrap(src), unwrap(dst)
	for {
		rd.SetReadDeadline(time.Now().Add(tick))
		n, err := io.Copy(wr, rd)
		if n > 0 {
			count.Add(float64(n))
			r.last.Store(time.Now().UnixNano())
		}
		if err == nil {
			// src's EOF: the peer of dst learns it with a FIN.
			closeWrite(dst)
			return
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			if r.idle > 0 && time.Since(time.Unix(0, r.last.Load())) >= r.idle {
				r.abort()
				return
			}
			continue
		}
		r.abort()
		return
	}
}

// closeWrite half-closes c when it can (TCP shutdown(SHUT_WR), TLS
// close_notify); otherwise it closes it.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		if cw.CloseWrite() == nil {
			return
		}
	}
	c.Close()
}

// unwrap returns the connection beneath c's wrappers (the listener's
// counted connection, the breaker's limited one), bounded.
func unwrap(c net.Conn) net.Conn {
	for range 8 {
		if _, ok := c.(*net.TCPConn); ok {
			return c
		}
		u, ok := c.(interface{ Unwrap() net.Conn })
		if !ok {
			return c
		}
		c = u.Unwrap()
	}
	return c
}
