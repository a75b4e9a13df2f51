package guard

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

type guardListener struct {
	net.Listener
	cfg *Config
}

func (l guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return New(c, l.cfg), nil
}

// TestServerNoLeak serves good, refused and failing requests through the
// guard and checks that no goroutine outlives the server.
func TestServerNoLeak(t *testing.T) {
	// net/http lingers 500 ms in closeWriteAndWait after a failed body;
	// that goroutine ends by itself and is not the guard's.
	defer goleak.VerifyNone(t, goleak.IgnoreAnyFunction("net/http.(*conn).closeWriteAndWait"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &Config{MaxBodyBytes: 1 << 20}
	srv := &http.Server{
		Handler: Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.Copy(io.Discard, r.Body); err != nil {
				w.WriteHeader(http.StatusBadGateway)
				return
			}
			io.WriteString(w, "ok")
		}), cfg),
		ConnContext:       ConnContext,
		ReadHeaderTimeout: 2 * time.Second,
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(guardListener{ln, cfg}) }()
	for _, tc := range []struct {
		raw    string
		status int
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 200},
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", 200},
	} {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, tc.raw)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%q: %v", tc.raw, err)
		}
		if resp.StatusCode != tc.status {
			t.Errorf("%q: status %d, want %d", strings.SplitN(tc.raw, "\r\n", 2)[0], resp.StatusCode, tc.status)
		}
		c.Close()
	}
	srv.Close()
	<-done
}
