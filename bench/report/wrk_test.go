package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseWrk(t *testing.T) {
	tests := []struct {
		name string
		file string
		want Wrk
	}{
		{
			name: "lua done script gives exact microseconds",
			file: "wrk-100b.txt",
			want: Wrk{Requests: 142908, DurationUS: 2097392, RPS: 68136.05, P50US: 571, P99US: 5469, Exact: true},
		},
		{
			name: "human units without the script",
			file: "wrk-16k-noscript.txt",
			want: Wrk{Requests: 78934, DurationUS: 2020000, RPS: 39085.14, P50US: 4260, P99US: 14850},
		},
		{
			name: "socket errors and non-2xx responses are counted",
			file: "wrk-errors.txt",
			want: Wrk{Requests: 99360, DurationUS: 3000059, RPS: 33119.80, P50US: 1410, P99US: 4123, Errors: 57, Exact: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, err := ParseWrk(f)
			if err != nil {
				t.Fatalf("ParseWrk: %v", err)
			}
			if !near(got.RPS, tt.want.RPS) || !near(got.P50US, tt.want.P50US) || !near(got.P99US, tt.want.P99US) {
				t.Errorf("got rps=%v p50=%v p99=%v, want rps=%v p50=%v p99=%v",
					got.RPS, got.P50US, got.P99US, tt.want.RPS, tt.want.P50US, tt.want.P99US)
			}
			got.RPS, got.P50US, got.P99US = tt.want.RPS, tt.want.P50US, tt.want.P99US
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseWrkFailures(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		wantErr error
	}{
		{name: "connection refused", input: "unable to connect to 127.0.0.1:1 Connection refused\n", wantErr: ErrNoResult},
		{name: "empty", input: "", wantErr: ErrNoResult},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseWrk(strings.NewReader(tt.input))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			}
		})
	}

	t.Run("no latency distribution", func(t *testing.T) {
		in := "  10 requests in 1.00s, 1.00KB read\nRequests/sec:     10.00\n"
		if _, err := ParseWrk(strings.NewReader(in)); err == nil {
			t.Fatal("want an error when --latency was not given")
		}
	})
}

func TestParseDurationUS(t *testing.T) {
	tests := []struct {
		in   string
		want float64
	}{
		{"571.00us", 571}, {"0.91ms", 910}, {"2.10s", 2.1e6}, {"1.00m", 60e6},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseDurationUS(tt.in)
			if err != nil || !near(got, tt.want) {
				t.Fatalf("parseDurationUS(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestReport(t *testing.T) {
	dir := t.TempDir()
	sample, err := os.ReadFile(filepath.Join("testdata", "wrk-100b.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), sample, 0o644); err != nil {
		t.Fatal(err)
	}
	h2, err := os.ReadFile(filepath.Join("testdata", "h2load-100b.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "h2.txt"), h2, 0o644); err != nil {
		t.Fatal(err)
	}
	results := strings.Join([]string{
		"# comment",
		"scenario=100B size=100 conns=50 duration=2s round=1 target=direct wrk=a.txt",
		// 142908 requests and 2.5 s of CPU: 17.5 µs per request.
		"scenario=100B size=100 conns=50 duration=2s round=1 target=nginx wrk=a.txt cpu_ticks=250 clk_tck=100 rss_kb=4096",
		"scenario=100B size=100 conns=50 duration=2s round=1 target=rampart wrk=a.txt cpu_ticks=500 clk_tck=100 rss_kb=8192",
		"scenario=100B size=100 conns=50 duration=2s round=1 target=haproxy wrk=a.txt cpu_ticks=300 clk_tck=100 rss_kb=4096",
		// 75090 requests and 1.5 s of CPU: 19.98 µs per request.
		"scenario=h2-100B size=100 conns=50 duration=3s round=1 target=nginx h2load=h2.txt cpu_ticks=150 clk_tck=100 rss_kb=4096",
		"scenario=idle target=nginx conns=1000 opened=1000 rss_before_kb=4096 rss_after_kb=5096 kib_per_conn=1.00 settle_ms=2000",
	}, "\n")
	path := filepath.Join(dir, "results.txt")
	if err := os.WriteFile(path, []byte(results), 0o644); err != nil {
		t.Fatal(err)
	}
	runs, idles, err := load(path)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	write(&b, runs)
	writeIdle(&b, idles)
	out := b.String()
	for _, want := range []string{
		"| direct | 1 | 68136 [68136–68136] | 571 [571–571] | 5469 [5469–5469] | – | – | 0 |",
		"| nginx | 1 | 68136 [68136–68136] | 571 [571–571] | 5469 [5469–5469] | 17.5 [17.5–17.5] | 4.0 [4.0–4.0] | 0 |",
		"| rampart/nginx | 1.00× | 1.00× | 1.00× | 2.00× | 2.00× |",
		"| rampart/direct | 1.00× | 1.00× | 1.00× | – | – |",
		"| haproxy/nginx | 1.00× | 1.00× | 1.00× | 1.20× | 1.00× |",
		"| nginx | 1 | 25032 [25032–25032] | – | – | 20.0 [20.0–20.0] | 4.0 [4.0–4.0] | 5 |",
		"| nginx | 1000 | 4.0 | 5.0 | 1.00 | 150 |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q; got:\n%s", want, out)
		}
	}
	if strings.Index(out, "| rampart |") > strings.Index(out, "| nginx |") {
		t.Errorf("rampart should be listed before nginx:\n%s", out)
	}
}

func near(a, b float64) bool {
	d := a - b
	return d < 1e-6*b+1e-9 && -d < 1e-6*b+1e-9
}
