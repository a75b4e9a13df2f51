package h2

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// serve starts s on a real socket; it returns the address.
func serve(t testing.TB, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); s.ServeConn(c) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// h2cClient is an HTTP/2 client with prior knowledge over TCP.
func h2cClient() *http.Client {
	return &http.Client{Transport: &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}, Timeout: 10 * time.Second}
}

func TestServe(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 20000) // 320 KB: beyond every window
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hello":
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("X-Proto", r.Proto)
			fmt.Fprintf(w, "hello %s %s %s", r.Method, r.Host, r.URL.RawQuery)
		case "/echo":
			b, err := io.ReadAll(r.Body)
			if err != nil {
				w.WriteHeader(500)
				return
			}
			w.Header().Set("Trailer", "X-Sum")
			w.WriteHeader(201)
			w.Write(b)
			w.Header().Set("X-Sum", fmt.Sprint(len(b)))
		case "/big":
			w.Write(big)
		case "/trailer-prefix":
			w.Write([]byte("x"))
			w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
		case "/empty":
			w.WriteHeader(204)
		case "/flush":
			w.Write([]byte("a"))
			w.(http.Flusher).Flush()
			w.Write([]byte("b"))
		case "/panic":
			panic(http.ErrAbortHandler)
		}
	})
	addr := serve(t, &Server{Handler: h})
	cl := h2cClient()
	get := func(method, path string, body io.Reader) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addr+path, body)
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s %s: body: %v", method, path, err)
		}
		return resp, string(b)
	}
	resp, body := get("GET", "/hello?a=1", nil)
	if resp.StatusCode != 200 || body != "hello GET "+addr+" a=1" || resp.Header.Get("X-Proto") != "HTTP/2.0" || resp.ContentLength != int64(len(body)) {
		t.Errorf("hello: %d %q %v cl %d", resp.StatusCode, body, resp.Header, resp.ContentLength)
	}
	resp, body = get("POST", "/echo", bytes.NewReader(big))
	if resp.StatusCode != 201 || body != string(big) || resp.Trailer.Get("X-Sum") != fmt.Sprint(len(big)) {
		t.Errorf("echo: %d len %d trailer %v", resp.StatusCode, len(body), resp.Trailer)
	}
	resp, body = get("GET", "/big", nil)
	if body != string(big) {
		t.Errorf("big: len %d", len(body))
	}
	resp, _ = get("GET", "/trailer-prefix", nil)
	if resp.Trailer.Get("Grpc-Status") != "0" {
		t.Errorf("trailer-prefix: %v", resp.Trailer)
	}
	resp, _ = get("GET", "/empty", nil)
	if resp.StatusCode != 204 {
		t.Errorf("empty: %d", resp.StatusCode)
	}
	resp, body = get("GET", "/flush", nil)
	if body != "ab" {
		t.Errorf("flush: %q", body)
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/panic", nil)
	if _, err := cl.Do(req); err == nil {
		t.Errorf("panic: no error")
	}
	// Many concurrent streams on one connection.
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", "http://"+addr+"/echo", strings.NewReader(strings.Repeat("x", i*100)))
			resp, err := cl.Do(req)
			if err != nil {
				errs <- err
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if len(b) != i*100 {
				errs <- fmt.Errorf("stream %d: %d bytes", i, len(b))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestResetCancelsContext checks that RST_STREAM cancels the handler's
// context.
func TestResetCancelsContext(t *testing.T) {
	done := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			done <- nil
		case <-time.After(5 * time.Second):
			done <- errors.New("context not cancelled")
		}
	})
	addr := serve(t, &Server{Handler: h})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/", nil)
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	h2cClient().Do(req)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestShutdown(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		w.Write([]byte("done"))
	})
	s := &Server{Handler: h}
	addr := serve(t, s)
	res := make(chan string, 1)
	go func() {
		resp, err := h2cClient().Get("http://" + addr + "/")
		if err != nil {
			res <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		res <- string(b)
	}()
	<-started
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	time.Sleep(50 * time.Millisecond)
	close(release)
	if got := <-res; got != "done" {
		t.Errorf("in-flight request: %q", got)
	}
	if err := <-shut; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}
