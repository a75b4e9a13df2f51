package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"
)

func TestMeasure(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The server runs in this process, so measure ourselves.
	res, err := Measure(ctx, Config{URL: srv.URL + "/", Conns: 50, PID: os.Getpid(), Parallel: 8, Settle: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Opened != 50 || res.BeforeKB <= 0 || res.AfterKB <= 0 {
		t.Fatalf("Measure = %+v, want 50 connections and positive RSS", res)
	}
}

func TestMeasureRejects(t *testing.T) {
	tests := []struct {
		name string
		url  string
	}{
		{"https", "https://127.0.0.1:1/"},
		{"no host", "http:///x"},
		{"not a url", "::"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Measure(context.Background(), Config{URL: tt.url, Conns: 1, PID: os.Getpid()}); err == nil {
				t.Fatalf("Measure(%q) succeeded, want an error", tt.url)
			}
		})
	}
}
