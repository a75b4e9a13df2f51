package main

import (
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCallOnce(t *testing.T) {
	tests := []struct {
		name              string
		serverSize, ask   int
		wantErr           string
		wantCallsAnswered int64
	}{
		{name: "answer of the asked size", serverSize: 100, ask: 100, wantCallsAnswered: 1},
		{name: "empty messages", serverSize: 0, ask: 0, wantCallsAnswered: 1},
		{name: "answer of another size fails the check", serverSize: 10, ask: 100, wantErr: "answer has 10 bytes, want 100", wantCallsAnswered: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, calls := newServer(tt.serverSize)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go func() { _ = srv.Serve(ln) }()
			defer srv.Stop()
			err = callOnce(ln.Addr().String(), tt.ask)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("callOnce: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("callOnce error = %v, want %q", err, tt.wantErr)
			}
			if got := calls.Load(); got != tt.wantCallsAnswered {
				t.Errorf("calls answered = %d, want %d", got, tt.wantCallsAnswered)
			}
		})
	}
}

func TestCallOnceNoServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if err := callOnce(addr, 100); err == nil {
		t.Fatal("callOnce succeeded with nothing listening")
	}
}

func TestWriteRequest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "req.bin")
	if err := writeRequest(path, 100); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 105 || b[0] != 0 || binary.BigEndian.Uint32(b[1:5]) != 100 {
		t.Fatalf("request = % x..., want flag 0, length 100 and 100 bytes", b[:min(len(b), 8)])
	}
}
