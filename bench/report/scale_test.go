package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeResults writes the captured wrk and h2load outputs and a results file
// made of lines into a temporary directory and returns the results file's path.
func writeResults(t *testing.T, lines ...string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range map[string]string{"a.txt": "wrk-100b.txt", "h2.txt": "h2load-100b.txt"} {
		b, err := os.ReadFile(filepath.Join("testdata", src))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "results.txt")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReportScale(t *testing.T) {
	// a.txt: 142908 requests at 68136.05 req/s.
	path := writeResults(t,
		"# scale-note: 10000 connections asked, 9900 measured: the open-files limit is 20000",
		"scenario=scale-50 mode=h1 size=100 conns=50 duration=2s round=1 target=rampart wrk=a.txt cpu_ticks=500 clk_tck=100 rss_kb=8192 phase=scale cores=1",
		"scenario=scale-50 mode=h1 size=100 conns=50 duration=2s round=1 target=nginx wrk=a.txt cpu_ticks=250 clk_tck=100 rss_kb=4096 phase=scale cores=1",
		"scenario=scale-9900 mode=h1 size=100 conns=9900 duration=2s round=1 target=rampart wrk=a.txt cpu_ticks=900 clk_tck=100 rss_kb=8192 phase=scale cores=1",
		"scenario=scale-9900 mode=h1 size=100 conns=9900 duration=2s round=2 target=rampart wrk=a.txt cpu_ticks=700 clk_tck=100 rss_kb=8192 phase=scale cores=1",
		"scenario=scale-9900 mode=h1 size=100 conns=9900 duration=2s round=1 target=nginx wrk=a.txt cpu_ticks=400 clk_tck=100 rss_kb=4096 phase=scale cores=1",
		"scenario=scale-1000 mode=h1 size=100 conns=1000 duration=2s round=1 target=rampart wrk=a.txt cpu_ticks=600 clk_tck=100 rss_kb=8192 phase=scale cores=1",
		"scenario=scale-1000 mode=h1 size=100 conns=1000 duration=2s round=1 target=nginx wrk=a.txt cpu_ticks=300 clk_tck=100 rss_kb=4096 phase=scale cores=1",
		"scenario=scale-2cpu-1000 mode=h1 size=100 conns=1000 duration=2s round=1 target=rampart wrk=a.txt cpu_ticks=600 clk_tck=100 rss_kb=8192 phase=scale cores=2",
		"scenario=scale-2cpu-1000 mode=h1 size=100 conns=1000 duration=2s round=1 target=nginx wrk=a.txt cpu_ticks=200 clk_tck=100 rss_kb=4096 phase=scale cores=2",
		// Not part of the scaling table.
		"scenario=100B mode=h1 size=100 conns=50 duration=2s round=1 target=nginx wrk=a.txt cpu_ticks=250 clk_tck=100 rss_kb=4096",
	)
	runs, _, err := load(path)
	if err != nil {
		t.Fatal(err)
	}
	notes, err := scaleNotes(path)
	if err != nil {
		t.Fatal(err)
	}
	if !hasScale(runs) {
		t.Fatal("hasScale = false")
	}
	var b strings.Builder
	writeScale(&b, runs, notes)
	out := b.String()
	rows := []string{
		// 5 s / 142908 requests = 35.0 µs; 2.5 s: 17.5 µs.
		"| 50 | 1 | 35.0 | 17.5 | 2.00× | 68136 | 68136 | 1.00× |",
		"| 1000 | 1 | 42.0 | 21.0 | 2.00× |",
		// Median of 63.0 and 49.0 µs is 56.0; nginx 28.0.
		"| 9900 | 1 | 56.0 | 28.0 | 2.00× |",
		"| 1000 | 2 | 42.0 | 14.0 | 3.00× |",
		"Note: 10000 connections asked, 9900 measured: the open-files limit is 20000.",
	}
	last := -1
	for _, want := range rows {
		i := strings.Index(out, want)
		if i < 0 {
			t.Errorf("scale table lacks %q; got:\n%s", want, out)
			continue
		}
		if i < last {
			t.Errorf("%q is out of order (1 core by connections, then 2 cores):\n%s", want, out)
		}
		last = i
	}
	if strings.Count(out, "\n| ") != 2+4 {
		t.Errorf("want a header, a rule and 4 rows (the 100B scenario is not a scale run):\n%s", out)
	}
}

func TestReportGRPCBackendCalls(t *testing.T) {
	// h2.txt: 75090 succeeded, 5 failed, 25032.24 req/s.
	path := writeResults(t,
		"scenario=grpc-100B mode=grpc size=100 conns=50 streams=10 duration=3s round=1 target=nginx h2load=h2.txt cpu_ticks=150 clk_tck=100 rss_kb=4096 backend_calls=75090",
		// The proxy answered 90 calls itself: they are errors, not requests.
		"scenario=grpc-100B mode=grpc size=100 conns=50 streams=10 duration=3s round=1 target=rampart h2load=h2.txt cpu_ticks=150 clk_tck=100 rss_kb=4096 backend_calls=75000",
	)
	runs, _, err := load(path)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	write(&b, runs)
	out := b.String()
	for _, want := range []string{
		"### grpc-100B: gRPC unary over h2c both sides, 100-byte body, 50 connections × 10 streams, 3s per run",
		"| nginx | 1 | 25032 [25032–25032] | – | – | 20.0 [20.0–20.0] | 4.0 [4.0–4.0] | 5 |",
		// 1.5 s over 75000 calls = 20.0 µs; 5 + 90 errors.
		"| rampart | 1 | 25032 [25032–25032] | – | – | 20.0 [20.0–20.0] | 4.0 [4.0–4.0] | 95 |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q; got:\n%s", want, out)
		}
	}
}
