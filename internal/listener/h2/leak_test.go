package h2

import (
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestNoGoroutineLeak: after streams on several connections (finished,
// reset by the client mid-answer, and blocked on a closed window) and
// Close, the server's readers, handlers and parked workers are all gone.
func TestNoGoroutineLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/block":
			<-release
		case "/big":
			buf := make([]byte, 32<<10)
			for i := 0; i < 64; i++ { // 2 MiB: beyond every window
				if _, err := w.Write(buf); err != nil {
					return
				}
			}
		default:
			io.WriteString(w, "ok")
		}
	})
	s := &Server{Handler: h}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	var srv sync.WaitGroup
	srv.Add(1)
	go func() {
		defer srv.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			srv.Add(1)
			go func() { defer srv.Done(); s.ServeConn(c) }()
		}
	}()
	var wg sync.WaitGroup
	for c := 0; c < 4; c++ {
		cl := h2cClient()
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				path := "/ok"
				switch i % 4 {
				case 1:
					path = "/big"
				case 2:
					path = "/block"
				}
				resp, err := cl.Get("http://" + addr + path)
				if err != nil {
					return
				}
				if path == "/big" {
					// Read a little, then give up: the stream is reset
					// while its handler waits for window.
					resp.Body.Read(make([]byte, 100))
				} else if path != "/block" {
					io.Copy(io.Discard, resp.Body)
				}
				resp.Body.Close()
			}(i)
		}
		defer cl.CloseIdleConnections()
	}
	// Let the /block handlers start, then close the server under them.
	time.Sleep(200 * time.Millisecond)
	ln.Close()
	s.Close()
	close(release)
	wg.Wait()
	srv.Wait() // every ServeConn returned
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= base+2 { // the test's own transports may keep a reader for a moment
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: %d before, %d after Close\n%s", base, n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
