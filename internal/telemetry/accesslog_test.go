package telemetry

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// slogLine is the line the access log wrote through log/slog before it
// encoded lines itself: the reference appendEntry must match.
func slogLine(t time.Time, e *Entry) []byte {
	var buf bytes.Buffer
	h := slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.LevelKey {
			return slog.Attr{}
		}
		return a
	}})
	r := slog.NewRecord(t, slog.LevelInfo, "access", 0)
	r.AddAttrs(
		slog.String("request_id", e.RequestID),
		slog.String("route", e.Route),
		slog.String("upstream", e.Upstream),
		slog.String("target", e.Target),
		slog.String("method", e.Method),
		slog.String("host", e.Host),
		slog.String("path", e.Path),
		slog.String("proto", e.Proto),
		slog.Int("status", e.Status),
		slog.String("code", e.Code),
		slog.Int64("bytes_in", e.BytesIn),
		slog.Int64("bytes", e.BytesOut),
		slog.Float64("duration_ms", float64(e.Duration.Microseconds())/1000),
		slog.String("remote_addr", e.RemoteAddr),
		slog.String("client_ip", e.ClientIP),
		slog.String("user_agent", e.UserAgent),
		slog.Int("attempts", e.Attempts),
	)
	if n, err := strconv.Atoi(e.GRPCStatus); err == nil {
		r.AddAttrs(slog.Int("grpc_status", n))
	}
	h.Handle(context.Background(), r)
	return buf.Bytes()
}

func TestAccessLogMatchesSlog(t *testing.T) {
	full := Entry{RequestID: "4bf92f3577b34da6a3ce929d0e0e4736", Route: "users", Upstream: "backend", Target: "10.0.0.7:8080",
		Method: "POST", Path: "/v1/users/42", Host: "api.example.com", RemoteAddr: "192.0.2.1:51234", ClientIP: "198.51.100.7", Proto: "HTTP/1.1",
		Status: 201, BytesIn: 512, BytesOut: 100, Duration: 1234567 * time.Nanosecond, Code: "", UserAgent: "curl/8.5.0", Attempts: 2}
	odd := "q\"b\\s/\n\r\t\x00\x01\x1f\x7f <>&' é ☃ \u2028\u2029 \xff\xfe end"
	tests := []struct {
		name string
		e    Entry
	}{
		{"empty", Entry{}},
		{"full", full},
		{"odd strings", Entry{RequestID: odd, Route: odd, Upstream: odd, Target: odd, Method: odd, Host: odd, Path: odd,
			Proto: odd, Code: odd, RemoteAddr: odd, UserAgent: odd}},
		{"truncated utf-8", Entry{Path: "/a\xe2\x82", UserAgent: "\xe2\x80\xa8x"}},
		{"long duration", Entry{Duration: 90 * time.Hour, Status: 504, Code: "upstream_timeout"}},
		{"sub-millisecond", Entry{Duration: 7 * time.Microsecond}},
		{"sub-microsecond", Entry{Duration: 999}},
		{"negative", Entry{Duration: -1500 * time.Microsecond, BytesIn: -1, Status: -1, Attempts: -3}},
		{"grpc", Entry{Status: 200, Code: "upstream_timeout", GRPCStatus: "4"}},
		{"grpc ok", Entry{Status: 200, GRPCStatus: "0"}},
		{"extremes", Entry{BytesIn: math.MaxInt64, BytesOut: math.MinInt64, Duration: math.MaxInt64}},
	}
	times := []time.Time{
		time.Date(2026, 12, 2, 4, 17, 28, 123456789, time.UTC),
		time.Date(2026, 12, 2, 4, 17, 28, 0, time.FixedZone("x", -(7*3600+30*60))),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Now(),
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, at := range times {
				want := slogLine(at, &tc.e)
				if got := appendEntry(nil, at, &tc.e); !bytes.Equal(got, want) {
					t.Fatalf("line differs from slog's\n got %s\nwant %s", got, want)
				}
			}
		})
	}
	t.Run("floats", func(t *testing.T) {
		for _, f := range []float64{0, 1, -1, 0.001, 1e-6, 9.99e-7, 1e-7, 1.5e-10, 1e20, 1e21, 1.234e25, -3e-8, 123456.789} {
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, nil)).LogAttrs(context.Background(), slog.LevelInfo, "", slog.Float64("f", f))
			line := buf.String()
			i := strings.Index(line, `"f":`)
			want := strings.TrimSuffix(line[i+4:], "}\n")
			if got := string(appendFloat(nil, f)); got != want {
				t.Errorf("appendFloat(%v) = %s, slog %s", f, got, want)
			}
		}
	})
}

// TestAccessLogLines checks that concurrent lines are written whole, one
// Write each.
func TestAccessLogLines(t *testing.T) {
	var w lineWriter
	a := NewAccessLog(&w, nil)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := Entry{Path: strings.Repeat("p", 100*i), Status: 200}
			for range 50 {
				a.Log(&e)
			}
		}()
	}
	wg.Wait()
	if w.n != 400 {
		t.Fatalf("%d writes, want 400", w.n)
	}
}

type lineWriter struct {
	mu sync.Mutex
	n  int
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if bytes.Count(p, []byte("\n")) != 1 || p[len(p)-1] != '\n' || !bytes.HasPrefix(p, []byte(`{"time":"`)) {
		panic("not one whole line: " + string(p))
	}
	w.n++
	return len(p), nil
}

func BenchmarkAccessLog(b *testing.B) {
	a := NewAccessLog(io.Discard, nil)
	e := Entry{RequestID: "4bf92f3577b34da6a3ce929d0e0e4736", Route: "all", Upstream: "backend", Target: "127.0.0.1:8080",
		Method: "GET", Path: "/bench", Host: "bench", RemoteAddr: "127.0.0.1:5555", Proto: "HTTP/1.1", Status: 200,
		BytesOut: 100, Duration: 1234567 * time.Nanosecond, UserAgent: "bench", Attempts: 1}
	b.ReportAllocs()
	for b.Loop() {
		a.Log(&e)
	}
}
