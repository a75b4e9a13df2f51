package h1server

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/listener/guard"
)

// TestServerAbortWithBodyReader: a handler that aborts while a goroutine of
// its own (as an upstream transport's) still reads the request body. The
// reader must end with an error, not block on the socket or read the
// connection's buffer after it went back to the pool (-race sees that).
func TestServerAbortWithBodyReader(t *testing.T) {
	readerDone := make(chan error, 1)
	started := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		go func() {
			buf := make([]byte, 3)
			var err error
			for err == nil {
				_, err = r.Body.Read(buf)
				select {
				case <-started:
				default:
					close(started)
				}
			}
			readerDone <- err
		}()
		<-started
		panic(http.ErrAbortHandler)
	})
	ts := startServer(t, h, &guard.Config{}, nil)
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// 10 bytes of a 100,000-byte body: the reader soon waits on the socket.
	if _, err := io.WriteString(c, "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n0123456789"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-readerDone:
		if err == nil || err == io.EOF {
			t.Fatalf("body reader ended with %v, want an error", err)
		}
	case <-time.After(ioTimeout):
		t.Fatal("the body reader was still blocked after the handler aborted")
	}
	c.SetReadDeadline(time.Now().Add(ioTimeout))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("the connection answered after an abort (%d bytes)", n)
	}
}
