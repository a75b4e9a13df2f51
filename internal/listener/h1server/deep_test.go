//go:build linux

package h1server

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/listener/guard"
)

// rebindConn is what the listener's counting connection is to the fast
// path: a wrapper whose inner TCP connection may be replaced.
type rebindConn struct {
	net.Conn
	mu     sync.Mutex
	closed bool
}

func (c *rebindConn) InnerTCP() *net.TCPConn { tc, _ := c.Conn.(*net.TCPConn); return tc }

func (c *rebindConn) RebindTCP(tc *net.TCPConn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	if tc == nil {
		c.Conn = parkedConn{}
		return true
	}
	c.Conn = tc
	return true
}

// parkedConn stands in for the connection of a wrapper parked deep.
type parkedConn struct{}

func (parkedConn) Read([]byte) (int, error)         { return 0, net.ErrClosed }
func (parkedConn) Write([]byte) (int, error)        { return 0, net.ErrClosed }
func (parkedConn) Close() error                     { return nil }
func (parkedConn) LocalAddr() net.Addr              { return nil }
func (parkedConn) RemoteAddr() net.Addr             { return nil }
func (parkedConn) SetDeadline(time.Time) error      { return nil }
func (parkedConn) SetReadDeadline(time.Time) error  { return nil }
func (parkedConn) SetWriteDeadline(time.Time) error { return nil }

func (c *rebindConn) Close() error {
	c.mu.Lock()
	c.closed = true
	inner := c.Conn
	c.mu.Unlock()
	return inner.Close()
}

func (c *rebindConn) Unwrap() net.Conn { return c.Conn }

type rebindListener struct{ net.Listener }

func (l rebindListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &rebindConn{Conn: c}, nil
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// deepCount is the number of connections parked deep.
func deepCount(s *Server) int {
	s.poll.mu.Lock()
	defer s.poll.mu.Unlock()
	n := 0
	for c := s.poll.head; c != nil; c = c.next {
		if c.deep {
			n++
		}
	}
	return n
}

// TestDeepPark checks that an idle connection parked without Go's socket
// (behind a Rebinder) is served again when its next request comes, keeps
// its address, pipelined requests and request count, and that closing the
// server leaves no descriptor behind.
func TestDeepPark(t *testing.T) {
	old := deepAfter
	deepAfter = 0
	defer func() { deepAfter = old }()
	fds := openFDs(t)
	var remotes sync.Map
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		remotes.Store(r.RemoteAddr, true)
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Method+" "+r.URL.Path+" "+string(b))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: handler, Config: &guard.Config{MaxRequests: 5}, ReadHeaderTimeout: time.Minute, IdleTimeout: time.Minute}
	done := make(chan struct{})
	go func() { s.Serve(rebindListener{ln}); close(done) }()
	const n = 3
	conns := make([]net.Conn, n)
	brs := make([]*bufio.Reader, n)
	for i := range conns {
		if conns[i], err = net.Dial("tcp", ln.Addr().String()); err != nil {
			t.Fatal(err)
		}
		conns[i].SetDeadline(time.Now().Add(30 * time.Second))
		brs[i] = bufio.NewReader(conns[i])
	}
	get := func(i int, raw string, want ...string) {
		t.Helper()
		if _, err := io.WriteString(conns[i], raw); err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			resp, err := http.ReadResponse(brs[i], nil)
			if err != nil {
				t.Fatalf("conn %d: %v", i, err)
			}
			b, _ := io.ReadAll(resp.Body)
			if string(b) != w {
				t.Fatalf("conn %d: body %q, want %q", i, b, w)
			}
		}
	}
	for round := range 3 {
		for i := range conns {
			switch round {
			case 0:
				get(i, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n", "GET /a ")
			case 1:
				get(i, "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n"+strconv.Itoa(i)+
					"GET /c HTTP/1.1\r\nHost: x\r\n\r\n", "POST /b "+strconv.Itoa(i), "GET /c ")
			case 2:
				get(i, "GET /d HTTP/1.1\r\nHost: x\r\n\r\n", "GET /d ")
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for deepCount(s) != n {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: %d of %d connections parked deep", round, deepCount(s), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The fifth request on a connection is its last (MaxRequests): the
	// count survived the deep parks.
	resp := func(i int) *http.Response {
		io.WriteString(conns[i], "GET /e HTTP/1.1\r\nHost: x\r\n\r\n")
		r, err := http.ReadResponse(brs[i], nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, r.Body)
		return r
	}(0)
	if !resp.Close {
		t.Errorf("fifth request: no Connection: close")
	}
	count := 0
	remotes.Range(func(k, v any) bool { count++; return true })
	if count != n {
		t.Errorf("%d remote addresses seen, want %d", count, n)
	}
	s.Close()
	<-done
	for _, c := range conns {
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for openFDs(t) > fds {
		if time.Now().After(deadline) {
			t.Fatalf("%d descriptors open after Close, %d before", openFDs(t), fds)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDeepParkExpires checks that a connection parked deep is closed at
// its idle timeout, and its descriptor with it.
func TestDeepParkExpires(t *testing.T) {
	old := deepAfter
	deepAfter = 0
	defer func() { deepAfter = old }()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: http.NotFoundHandler(), Config: &guard.Config{}, ReadHeaderTimeout: time.Minute, IdleTimeout: 2 * time.Second}
	go s.Serve(rebindListener{ln})
	defer s.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	r, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, r.Body)
	fds := openFDs(t) // the server's side of c among them
	deadline := time.Now().Add(10 * time.Second)
	for deepCount(s) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("not parked deep")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if openFDs(t) != fds {
		t.Errorf("%d descriptors open while parked deep, %d before", openFDs(t), fds)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("read after idle timeout: %v, want EOF", err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for openFDs(t) > fds-1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d descriptors open, %d before", openFDs(t), fds)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
