package grpc

import (
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// freezer forwards TCP connections to a target and can turn the ones open
// into black holes (bytes are dropped both ways, nothing is closed), as a
// dead peer behind a NAT or a crashed host looks.
type freezer struct {
	ln       net.Listener
	accepted atomic.Int64
	mu       sync.Mutex
	frozen   []*atomic.Bool
}

func startFreezer(t *testing.T, target string) *freezer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.accepted.Add(1)
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			t.Cleanup(func() { c.Close(); up.Close() })
			frozen := new(atomic.Bool)
			f.mu.Lock()
			f.frozen = append(f.frozen, frozen)
			f.mu.Unlock()
			pipe := func(dst, src net.Conn) {
				b := make([]byte, 32<<10)
				for {
					n, err := src.Read(b)
					if n > 0 && !frozen.Load() {
						if _, err := dst.Write(b[:n]); err != nil {
							return
						}
					}
					if err != nil {
						if err != io.EOF {
							return
						}
						dst.(*net.TCPConn).CloseWrite()
						return
					}
				}
			}
			go pipe(up, c)
			go pipe(c, up)
		}
	}()
	return f
}

// freeze black-holes every connection open now; later ones work.
func (f *freezer) freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.frozen {
		b.Store(true)
	}
}

// TestH2PingHealth: a pooled HTTP/2 connection whose peer goes silent is
// found dead by PING (keepalive.ping_interval, ping_timeout) and closed:
// the next call takes a new connection instead of waiting on the dead one.
// Without the short ping settings the same call waits until its deadline.
func TestH2PingHealth(t *testing.T) {
	b := startBackend(t)
	for _, tc := range []struct {
		name      string
		keepalive string
		ok        bool
	}{
		{"pings find the dead connection", "    keepalive: {ping_interval: 200ms, ping_timeout: 300ms}\n", true},
		{"without them the call waits on it", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFreezer(t, b.Addr)
			ups := fmt.Sprintf("  echo:\n    protocol: h2c\n%s    targets: [{address: %q}]\n", tc.keepalive, f.ln.Addr().String())
			g := startGateway(t, ups, "routes:\n  - {name: grpc, match: {path: {prefix: /}}, upstream: echo, retry: {attempts: 1}}\n")
			cc := dial(t, g.Addr, nil, "")
			if _, err := unary(ctxTimeout(t, 5*time.Second), cc, "before"); err != nil {
				t.Fatal(err)
			}
			f.freeze()
			time.Sleep(1200 * time.Millisecond) // a ping, its timeout, and margin
			start := time.Now()
			out, err := unary(ctxTimeout(t, time.Second), cc, "after")
			if tc.ok {
				if err != nil || out != "echo:after" {
					t.Fatalf("after the freeze: %q, %v (in %v)", out, err, time.Since(start))
				}
				if n := f.accepted.Load(); n < 2 {
					t.Fatalf("%d connections: the call did not take a new one", n)
				}
				t.Logf("answered in %v on a new connection", time.Since(start).Round(time.Millisecond))
				return
			}
			if status.Code(err) != codes.DeadlineExceeded {
				t.Fatalf("without pings: %q, %v; want DeadlineExceeded on the dead connection", out, err)
			}
		})
	}
}
