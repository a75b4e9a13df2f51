package telemetry

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
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
	r.AddAttrs(slog.String("request_id", e.RequestID))
	if e.TraceID != ([16]byte{}) {
		r.AddAttrs(slog.String("trace_id", hex.EncodeToString(e.TraceID[:])))
	}
	if e.SpanID != ([8]byte{}) {
		r.AddAttrs(slog.String("span_id", hex.EncodeToString(e.SpanID[:])))
	}
	r.AddAttrs(
		slog.String("client_ip", e.ClientIP),
		slog.String("remote_addr", e.RemoteAddr),
		slog.String("consumer", e.Consumer),
		slog.String("method", e.Method),
		slog.String("host", e.Host),
		slog.String("path", e.Path),
		slog.String("proto", e.Proto),
		slog.String("route", e.Route),
		slog.String("upstream", e.Upstream),
		slog.String("target", e.Target),
		slog.Int("status", e.Status),
		slog.String("code", e.Code),
	)
	if e.RefusedBy != "" {
		r.AddAttrs(slog.String("refused_by", e.RefusedBy), slog.String("reason", e.Reason))
	}
	r.AddAttrs(
		slog.Int64("bytes_in", e.BytesIn),
		slog.Int64("bytes_out", e.BytesOut),
		slog.Float64("duration", float64(e.Duration.Microseconds())/1e6),
		slog.Float64("upstream_duration", float64(e.UpstreamDuration.Microseconds())/1e6),
		slog.Int("attempts", e.Attempts),
	)
	if e.RejectedBy != "" {
		r.AddAttrs(slog.String("rejected_by", e.RejectedBy))
	}
	if len(e.WAFRules) > 0 {
		r.AddAttrs(slog.Any("waf_rules", e.WAFRules), slog.Int("waf_score", e.WAFScore))
	}
	if e.TLSVersion != 0 {
		r.AddAttrs(slog.String("tls_version", tls.VersionName(e.TLSVersion)), slog.String("sni", e.SNI))
	}
	r.AddAttrs(slog.String("user_agent", e.UserAgent))
	if n, err := strconv.Atoi(e.GRPCStatus); err == nil {
		r.AddAttrs(slog.Int("grpc_status", n))
	}
	h.Handle(context.Background(), r)
	return buf.Bytes()
}

func TestAccessLogMatchesSlog(t *testing.T) {
	full := Entry{RequestID: "4bf92f3577b34da6a3ce929d0e0e4736", Route: "users", Upstream: "backend", Target: "10.0.0.7:8080",
		Method: "POST", Path: "/v1/users/42", Host: "api.example.com", RemoteAddr: "192.0.2.1:51234", ClientIP: "198.51.100.7", Proto: "HTTP/1.1",
		Status: 201, BytesIn: 512, BytesOut: 100, Duration: 1234567 * time.Nanosecond, Code: "", UserAgent: "curl/8.5.0", Attempts: 2,
		TraceID:  [16]byte{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:   [8]byte{0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		Consumer: "alice", UpstreamDuration: 987654 * time.Nanosecond, RejectedBy: "rate_limit",
		WAFRules: []int{942100, 941110}, WAFScore: 10, TLSVersion: tls.VersionTLS13, SNI: "api.example.com"}
	odd := "q\"b\\s/\n\r\t\x00\x01\x1f\x7f <>&' é ☃ \u2028\u2029 \xff\xfe end"
	tests := []struct {
		name string
		e    Entry
	}{
		{"empty", Entry{}},
		{"full", full},
		{"odd strings", Entry{RequestID: odd, Route: odd, Upstream: odd, Target: odd, Method: odd, Host: odd, Path: odd,
			Proto: odd, Code: odd, RemoteAddr: odd, UserAgent: odd, ClientIP: odd, Consumer: odd, RefusedBy: odd, Reason: odd,
			RejectedBy: odd, SNI: odd, TLSVersion: tls.VersionTLS12}},
		{"guard refusal", Entry{RequestID: "r", RemoteAddr: "192.0.2.1:1", Status: 400, Code: "bad_request", RefusedBy: "guard", Reason: "malformed request line"}},
		{"trace only", Entry{TraceID: [16]byte{15: 1}}},
		{"span only", Entry{SpanID: [8]byte{0: 0xff}}},
		{"one waf rule", Entry{WAFRules: []int{-1}}},
		{"tls 1.0", Entry{TLSVersion: tls.VersionTLS10}},
		{"tls unknown", Entry{TLSVersion: 0x0305}},
		{"truncated utf-8", Entry{Path: "/a\xe2\x82", UserAgent: "\xe2\x80\xa8x"}},
		{"long duration", Entry{Duration: 90 * time.Hour, Status: 504, Code: "upstream_timeout"}},
		{"sub-millisecond", Entry{Duration: 7 * time.Microsecond}},
		{"sub-microsecond", Entry{Duration: 999}},
		{"negative", Entry{Duration: -1500 * time.Microsecond, BytesIn: -1, Status: -1, Attempts: -3}},
		{"grpc", Entry{Status: 200, Code: "upstream_timeout", GRPCStatus: "4"}},
		{"grpc ok", Entry{Status: 200, GRPCStatus: "0"}},
		{"extremes", Entry{BytesIn: math.MaxInt64, BytesOut: math.MinInt64, Duration: math.MaxInt64, UpstreamDuration: math.MinInt64}},
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
	t.Run("seconds", func(t *testing.T) {
		ds := []time.Duration{0, 1, 999, 1000, 1001, -1000, -999, 1500 * time.Microsecond, time.Second, -time.Second, 10 * time.Microsecond,
			123456789 * time.Microsecond, 999999999999999 * time.Microsecond, 1e15 * time.Microsecond, -1e15 * time.Microsecond,
			math.MaxInt64, math.MinInt64, 90 * time.Hour, 100 * time.Millisecond, 1234567 * time.Nanosecond}
		for i := range 2000 {
			ds = append(ds, time.Duration(i*i*i*7919+i))
		}
		for _, d := range ds {
			want := string(appendFloat(nil, float64(d.Microseconds())/1e6))
			if got := string(appendSeconds(nil, d)); got != want {
				t.Errorf("appendSeconds(%v) = %s, want %s", d, got, want)
			}
		}
	})
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

// TestAccessLogLines checks that concurrent lines arrive whole and in
// full: each write the writer makes is whole lines, none is lost below the
// buffer's size, and Close flushes them.
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
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if w.n != 400 || a.Dropped() != 0 {
		t.Fatalf("%d lines written, %d dropped; want 400 and 0", w.n, a.Dropped())
	}
	e := Entry{Status: 200}
	a.Log(&e) // after Close: dropped, never a panic or a block
	if a.Dropped() != 1 || w.n != 400 {
		t.Fatalf("a line logged after Close: %d dropped, %d written; want 1 and 400", a.Dropped(), w.n)
	}
}

type lineWriter struct {
	mu sync.Mutex
	n  int
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 || !bytes.HasPrefix(p, []byte(`{"time":"`)) || !json.Valid(p[:i]) {
			panic("not whole lines: " + string(p))
		}
		p = p[i+1:]
		w.n++
	}
	return n, nil
}

// TestAccessLogValidJSON checks that every line is one valid JSON object
// whose strings read back as logged (invalid UTF-8 as U+FFFD), whatever the
// request carried.
func TestAccessLogValidJSON(t *testing.T) {
	odd := []string{
		"", `"`, `\`, `\"`, "\x00", "\n\r\t", "\x1b[31mred", "\x7f", "\xff", "\xc3", "\xe2\x82", "\xed\xa0\x80", // surrogate
		"\u2028\u2029", "</script>", "é☃😀", `{"a":1}`, "a\x00b\"c\\d\ne", strings.Repeat("\xff\"", 2000),
	}
	var buf bytes.Buffer
	a := NewAccessLog(&buf, nil)
	for _, s := range odd {
		a.Log(&Entry{Path: "/" + s, UserAgent: s, Host: s, Method: s, Consumer: s, RequestID: s, Reason: s, RefusedBy: s,
			SNI: s, TLSVersion: tls.VersionTLS13, RejectedBy: s, Code: s})
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	sc.Buffer(nil, 1<<20)
	i := 0
	for ; sc.Scan(); i++ {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %d (%q) is not JSON: %v\n%s", i, odd[i], err, sc.Bytes())
		}
		// Each invalid byte reads back as one U+FFFD.
		want := string([]rune(odd[i]))
		for _, k := range []string{"user_agent", "host", "method", "consumer", "request_id", "reason", "refused_by", "sni", "rejected_by", "code"} {
			if odd[i] == "" && (k == "rejected_by" || k == "refused_by" || k == "reason") {
				continue // left out when empty
			}
			if m[k] != want {
				t.Errorf("line %d: %s = %q, want %q", i, k, m[k], want)
			}
		}
		if m["path"] != "/"+want {
			t.Errorf("line %d: path = %q, want %q", i, m["path"], "/"+want)
		}
	}
	if i != len(odd) {
		t.Fatalf("%d lines, want %d", i, len(odd))
	}
}

// blockedWriter blocks every Write until release is closed.
type blockedWriter struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	mu      sync.Mutex
	n       int
}

func (w *blockedWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	w.mu.Lock()
	w.n += bytes.Count(p, []byte("\n"))
	w.mu.Unlock()
	return len(p), nil
}

// TestAccessLogFullBufferDrops checks that a writer that does not return
// (a stalled disk or pipe) never blocks Log: once the buffer is full, lines
// are dropped and counted, and the lines held are written once the writer
// returns.
func TestAccessLogFullBufferDrops(t *testing.T) {
	w := &blockedWriter{entered: make(chan struct{}), release: make(chan struct{})}
	m := NewMetrics()
	e := Entry{Path: "/x", Status: 200}
	lineLen := len(appendEntry(nil, time.Date(2026, 1, 1, 0, 0, 0, 123456789, time.UTC), &e)) // the longest timestamp
	const room = 16
	a, err := OpenAccessLog(AccessLogConfig{Writer: w, Buffer: room * lineLen, Dropped: m.AccessLogDropped})
	if err != nil {
		t.Fatal(err)
	}
	a.Log(&e)
	<-w.entered // the writer is stuck in the first line's write
	const n = 1000
	start := time.Now()
	for range n {
		a.Log(&e)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("%d lines took %v with a blocked writer: Log blocks", n, d)
	}
	dropped := a.Dropped()
	if dropped < n-room-room/2 || dropped > n-room { // a short timestamp makes room for a few more
		t.Fatalf("dropped %d of %d with room for about %d", dropped, n, room)
	}
	if got := testutil.ToFloat64(m.AccessLogDropped); got != float64(dropped) {
		t.Fatalf("rampart_access_log_dropped_total = %v, want %d", got, dropped)
	}
	close(w.release)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if uint64(w.n) != 1+n-dropped {
		t.Fatalf("%d lines written, want %d", w.n, 1+n-dropped)
	}
}

// TestAccessLogCloseStalled checks that Close gives up on a writer that
// never returns instead of hanging the shutdown.
func TestAccessLogCloseStalled(t *testing.T) {
	if testing.Short() {
		t.Skip("waits closeTimeout")
	}
	w := &blockedWriter{entered: make(chan struct{}), release: make(chan struct{})}
	defer close(w.release)
	a := NewAccessLog(w, nil)
	a.Log(&Entry{})
	<-w.entered
	start := time.Now()
	if err := a.Close(); !errors.Is(err, errLogStalled) {
		t.Fatalf("Close = %v, want %v", err, errLogStalled)
	}
	if d := time.Since(start); d > closeTimeout+time.Second {
		t.Fatalf("Close took %v", d)
	}
}

// TestAccessLogReopen checks logrotate's way: the file is renamed, Reopen
// (SIGUSR1) creates a new one, and lines go on in the new file while the
// renamed one keeps what was written before.
func TestAccessLogReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	a, err := OpenAccessLog(AccessLogConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Path() != path {
		t.Fatalf("Path() = %q", a.Path())
	}
	a.Log(&Entry{RequestID: "before"})
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	a.Log(&Entry{RequestID: "renamed"}) // written to the renamed file, as by any process before it reopens
	if err := a.Reopen(); err != nil {
		t.Fatal(err)
	}
	a.Log(&Entry{RequestID: "after"})
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	ids := func(p string) []string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var m struct {
				RequestID string `json:"request_id"`
			}
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			out = append(out, m.RequestID)
		}
		return out
	}
	if got := strings.Join(ids(path+".1"), ","); got != "before,renamed" {
		t.Errorf("rotated file has %s, want before,renamed", got)
	}
	if got := strings.Join(ids(path), ","); got != "after" {
		t.Errorf("new file has %s, want after", got)
	}

	// A reopen that fails keeps the file in use.
	b, err := OpenAccessLog(AccessLogConfig{Path: filepath.Join(dir, "sub", "x.log")})
	if err == nil {
		b.Close()
		t.Fatal("opened a log in a missing directory")
	}
	c, err := OpenAccessLog(AccessLogConfig{Path: filepath.Join(dir, "c.log")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	os.Remove(filepath.Join(dir, "c.log"))
	os.Chmod(dir, 0o500)
	defer os.Chmod(dir, 0o700)
	if err := c.Reopen(); err == nil && os.Geteuid() != 0 {
		t.Error("Reopen in a read-only directory succeeded")
	}
	for _, p := range []string{"off", ""} {
		if l, err := OpenAccessLog(AccessLogConfig{Path: p}); l != nil || err != nil {
			t.Errorf("path %q: %v, %v; want nil, nil", p, l, err)
		}
	}
	var none *AccessLog
	none.Log(&Entry{})
	if none.Flush() != nil || none.Reopen() != nil || none.Close() != nil || none.Dropped() != 0 {
		t.Error("a nil log is not inert")
	}
}

// benchEntry is a typical proxied request's line.
var benchEntry = Entry{RequestID: "4bf92f3577b34da6a3ce929d0e0e4736", Route: "all", Upstream: "backend", Target: "127.0.0.1:8080",
	Method: "GET", Path: "/bench", Host: "bench", RemoteAddr: "127.0.0.1:5555", ClientIP: "127.0.0.1", Proto: "HTTP/1.1", Status: 200,
	BytesOut: 100, Duration: 1234567 * time.Nanosecond, UpstreamDuration: 987654 * time.Nanosecond, UserAgent: "bench", Attempts: 1}

// BenchmarkAccessLog is one line logged through the writer goroutine into
// io.Discard (the encoding, the queue and the write).
func BenchmarkAccessLog(b *testing.B) {
	a := NewAccessLog(io.Discard, nil)
	defer a.Close()
	e := benchEntry
	b.ReportAllocs()
	for b.Loop() {
		a.Log(&e)
	}
	b.StopTimer()
	a.Flush()
	if a.Dropped() != 0 {
		b.ReportMetric(float64(a.Dropped())/float64(b.N), "dropped/op")
	}
}

// BenchmarkAccessLogEncode is the encoding of one line alone.
func BenchmarkAccessLogEncode(b *testing.B) {
	e := benchEntry
	e.TraceID = [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	e.SpanID = [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
	buf := make([]byte, 0, 1024)
	t := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		buf = appendEntry(buf[:0], t, &e)
	}
}

// FuzzAccessLogLine checks that the line of any request strings is valid
// JSON and equal, byte for byte, to slog's.
func FuzzAccessLogLine(f *testing.F) {
	f.Add("/a\"b\\c", "curl/8\x00\xff", "h\u2028", "GET", int64(1500))
	f.Add("", "", "", "", int64(0))
	f.Add("/\xed\xa0\x80", "\x1b[0m", "[::1]:80", "PRI", int64(-1))
	at := time.Date(2026, 12, 7, 10, 0, 0, 123, time.UTC)
	f.Fuzz(func(t *testing.T, path, ua, host, method string, d int64) {
		e := Entry{Path: path, UserAgent: ua, Host: host, Method: method, Consumer: ua, SNI: host, TLSVersion: tls.VersionTLS13,
			RefusedBy: method, Reason: path, RejectedBy: host, Duration: time.Duration(d), UpstreamDuration: time.Duration(d / 2)}
		got := appendEntry(nil, at, &e)
		if !json.Valid(got) {
			t.Fatalf("not JSON: %q", got)
		}
		if want := slogLine(at, &e); !bytes.Equal(got, want) {
			t.Fatalf("line differs from slog's\n got %s\nwant %s", got, want)
		}
	})
}
