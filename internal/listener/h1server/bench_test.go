package h1server

import (
	"bytes"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/listener/guard"
)

// BenchmarkServer measures the fast path's own cost per keep-alive request
// (a trivial handler writing 100 bytes, a raw client on one connection)
// against net/http behind the guard serving the same handler.
func BenchmarkServer(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 100)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", "100")
		w.Write(body)
	})
	for _, tc := range []string{"fast", "net/http"} {
		b.Run(tc, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			cfg := &guard.Config{}
			var closeSrv func()
			if tc == "fast" {
				s := &Server{Handler: handler, Config: cfg, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
				go s.Serve(ln)
				closeSrv = func() { s.Close() }
			} else {
				s := &http.Server{Handler: guard.Handler(handler, cfg), ConnContext: guard.ConnContext}
				go s.Serve(guardListener{ln, cfg})
				closeSrv = func() { s.Close() }
			}
			defer closeSrv()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			req := []byte("GET /bench HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
			buf := make([]byte, 4096)
			rt := func() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				n := 0
				for {
					m, err := c.Read(buf[n:])
					if err != nil {
						b.Fatal(err)
					}
					n += m
					if i := bytes.Index(buf[:n], []byte("\r\n\r\n")); i >= 0 && n >= i+4+100 {
						return
					}
				}
			}
			rt()
			b.ReportAllocs()
			for b.Loop() {
				rt()
			}
		})
	}
}
