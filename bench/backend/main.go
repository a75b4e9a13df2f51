// Command backend is the upstream used by the load benchmark: it answers every
// request with a fixed-size body over keep-alive HTTP/1.1 and does as little
// work as possible, so that the benchmark measures the proxy in front of it.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (port 0 picks a free port)")
	size := flag.Int("size", 100, "response body size in bytes")
	addrFile := flag.String("addr-file", "", "if set, write the bound address to this file once listening")
	flag.Parse()

	if err := run(*addr, *size, *addrFile); err != nil {
		slog.Error("backend failed", "err", err)
		os.Exit(1)
	}
}

func run(addr string, size int, addrFile string) error {
	if size < 0 {
		return fmt.Errorf("check size: %d is negative", size)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if addrFile != "" {
		// Write to a temporary name and rename, so a reader never sees half an address.
		tmp := addrFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(ln.Addr().String()+"\n"), 0o644); err != nil {
			return fmt.Errorf("write addr file: %w", err)
		}
		if err := os.Rename(tmp, addrFile); err != nil {
			return fmt.Errorf("write addr file: %w", err)
		}
	}

	srv := &http.Server{
		Handler:           handler(size),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// handler answers with the same body every time. The header values are built
// once and assigned directly, which avoids the canonicalisation and slice
// allocation that Header().Set would do per request.
func handler(size int) http.Handler {
	body := bytes.Repeat([]byte("x"), size)
	contentLength := []string{strconv.Itoa(size)}
	contentType := []string{"text/plain"}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Length"] = contentLength
		h["Content-Type"] = contentType
		// Date costs a time format per response; the proxies under test do not need it.
		h["Date"] = nil
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(body)
	})
}
