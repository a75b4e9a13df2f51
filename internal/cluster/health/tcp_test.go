package health

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// lineServer is a TCP server on 127.0.0.1 that hands each connection to
// serve and records the first bytes each one sent.
type lineServer struct {
	ln   net.Listener
	mu   sync.Mutex
	got  [][]byte
	wg   sync.WaitGroup
	tls  *tls.Config
	serv func(s *lineServer, c net.Conn)
}

func newLineServer(t *testing.T, tc *tls.Config, serve func(s *lineServer, c net.Conn)) *lineServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &lineServer{ln: ln, tls: tc, serv: serve}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if s.tls != nil {
					c = tls.Server(c, s.tls)
				}
				s.serv(s, c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

// record reads up to n bytes (or until the client pauses) and keeps them.
func (s *lineServer) record(c net.Conn, n int) []byte {
	buf := make([]byte, n)
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	k, _ := io.ReadAtLeast(c, buf, n)
	s.mu.Lock()
	s.got = append(s.got, buf[:k])
	s.mu.Unlock()
	return buf[:k]
}

// The TCP probe: a bare connect, or send and expect, over plain TCP or
// TLS, with a preamble (a PROXY header) before what it sends.
func TestTCPProbe(t *testing.T) {
	pong := func(s *lineServer, c net.Conn) {
		if bytes.Contains(s.record(c, len("PROXY x\r\nPING\r\n")), []byte("PING")) {
			io.WriteString(c, "+PO")
			time.Sleep(20 * time.Millisecond) // the answer comes in two reads
			io.WriteString(c, "NG\r\n")
		}
	}
	plain := newLineServer(t, nil, pong)
	wrong := newLineServer(t, nil, func(s *lineServer, c net.Conn) { s.record(c, 6); io.WriteString(c, "-ERR unknown\r\n") })
	silent := newLineServer(t, nil, func(s *lineServer, c net.Conn) { s.record(c, 6); time.Sleep(2 * time.Second) })
	banner := newLineServer(t, nil, func(_ *lineServer, c net.Conn) { io.WriteString(c, "220 smtp ready\r\n") })
	cert := httptest.NewTLSServer(nil) // only for its certificate
	cert.Close()
	secure := newLineServer(t, &tls.Config{Certificates: cert.TLS.Certificates}, pong)
	dead := closedPort(t)

	tests := []struct {
		name     string
		addr     string
		cfg      Config
		tls      *tls.Config
		healthy  bool
		isExpect bool
		// sent, if set, is what the server must have received first.
		srv  *lineServer
		sent string
	}{
		{"connect", plain.addr(), Config{}, nil, true, false, nil, ""},
		{"connect refused", dead, Config{}, nil, false, false, nil, ""},
		{"send and expect", plain.addr(), Config{Send: []byte("PING\r\n"), Expect: []byte("+PONG")}, nil, true, false, plain, "PING\r\n"},
		{"preamble first", plain.addr(), Config{Preamble: []byte("PROXY x\r\n"), Send: []byte("PING\r\n"), Expect: []byte("+PONG")}, nil, true, false, plain, "PROXY x\r\nPING\r\n"},
		{"wrong answer", wrong.addr(), Config{Send: []byte("PING\r\n"), Expect: []byte("+PONG")}, nil, false, true, nil, ""},
		{"no answer in time", silent.addr(), Config{Send: []byte("PING\r\n"), Expect: []byte("+PONG")}, nil, false, false, nil, ""},
		{"expect a banner", banner.addr(), Config{Expect: []byte("220 ")}, nil, true, false, nil, ""},
		{"banner mismatch", banner.addr(), Config{Expect: []byte("554 ")}, nil, false, true, nil, ""},
		{"tls send and expect", secure.addr(), Config{Send: []byte("PING\r\n"), Expect: []byte("+PONG")}, &tls.Config{InsecureSkipVerify: true}, true, false, nil, ""},
		{"tls handshake fails on plain", plain.addr(), Config{}, &tls.Config{InsecureSkipVerify: true}, false, false, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.TCP = true
			tt.cfg.Timeout = 500 * time.Millisecond
			c := New(tt.cfg, Deps{TLS: tt.tls})
			defer c.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
			defer cancel()
			err := c.tcpProbe(ctx, tt.addr)
			if (err == nil) != tt.healthy {
				t.Fatalf("probe = %v, want healthy %v", err, tt.healthy)
			}
			if tt.isExpect && !errors.Is(err, ErrExpect) {
				t.Fatalf("err %v does not wrap ErrExpect", err)
			}
			if tt.srv != nil {
				s := tt.srv
				s.mu.Lock()
				last := string(s.got[len(s.got)-1])
				s.mu.Unlock()
				if !strings.HasPrefix(last, tt.sent) {
					t.Fatalf("server received %q, want %q first", last, tt.sent)
				}
			}
		})
	}
}

func (s *lineServer) addr() string { return s.ln.Addr().String() }
