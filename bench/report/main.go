// Command report turns the results file written by bench/run.sh into a table
// of medians with min–max per scenario and target, plus the ratios of rampart
// to every other target.
//
// The results file has one line per measured run, as space-separated key=value
// fields; lines starting with # are comments:
//
//	scenario=100B size=100 conns=50 duration=10s round=1 target=nginx wrk=wrk/100B-1-nginx.txt cpu_ticks=812 clk_tck=100 rss_kb=5120
//
// wrk names a file holding that run's wrk output (relative to the results
// file); cpu_ticks is the gateway's utime+stime delta over the run from
// /proc/PID/stat and is absent for the direct target; rss_kb is VmRSS after the
// run.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

func main() {
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: report RESULTS_FILE")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	runs, err := load(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
	write(os.Stdout, runs)
}

// Run is one measured wrk run against one target.
type Run struct {
	Scenario string
	Size     string
	Conns    string
	Duration string
	Round    int
	Target   string
	Wrk      Wrk
	// CPUUSPerReq is the gateway's CPU time per request; negative when not measured.
	CPUUSPerReq float64
	// RSSKB is the gateway's resident set size after the run; negative when not measured.
	RSSKB float64
}

func load(path string) ([]Run, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open results: %w", err)
	}
	defer f.Close()
	dir := filepath.Dir(path)
	var runs []Run
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r, err := parseLine(line, dir)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		runs = append(runs, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	return runs, nil
}

func parseLine(line, dir string) (Run, error) {
	kv := keyValues(strings.Fields(line))
	r := Run{
		Scenario: kv["scenario"], Size: kv["size"], Conns: kv["conns"], Duration: kv["duration"],
		Target: kv["target"], CPUUSPerReq: -1, RSSKB: -1,
	}
	if r.Scenario == "" || r.Target == "" || kv["wrk"] == "" {
		return Run{}, fmt.Errorf("parse results line: scenario, target and wrk are required")
	}
	r.Round, _ = strconv.Atoi(kv["round"])
	wp := kv["wrk"]
	if !filepath.IsAbs(wp) {
		wp = filepath.Join(dir, wp)
	}
	f, err := os.Open(wp)
	if err != nil {
		return Run{}, fmt.Errorf("open wrk output: %w", err)
	}
	defer f.Close()
	if r.Wrk, err = ParseWrk(f); err != nil {
		return Run{}, fmt.Errorf("%s: %w", wp, err)
	}
	if t, ok := kv["cpu_ticks"]; ok && r.Wrk.Requests > 0 {
		ticks, err1 := strconv.ParseFloat(t, 64)
		hz, err2 := strconv.ParseFloat(kv["clk_tck"], 64)
		if err1 != nil || err2 != nil || hz <= 0 {
			return Run{}, fmt.Errorf("parse cpu_ticks=%q clk_tck=%q", t, kv["clk_tck"])
		}
		r.CPUUSPerReq = ticks / hz * 1e6 / float64(r.Wrk.Requests)
	}
	if v, ok := kv["rss_kb"]; ok {
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return Run{}, fmt.Errorf("parse rss_kb: %w", err)
		}
		r.RSSKB = x
	}
	return r, nil
}

// stat is the median, minimum and maximum of one column; ok is false when no
// run measured it.
type stat struct {
	med, min, max float64
	ok            bool
}

func summarize(xs []float64) stat {
	xs = slices.DeleteFunc(slices.Clone(xs), func(x float64) bool { return x < 0 })
	if len(xs) == 0 {
		return stat{}
	}
	slices.Sort(xs)
	n := len(xs)
	med := xs[n/2]
	if n%2 == 0 {
		med = (xs[n/2-1] + xs[n/2]) / 2
	}
	return stat{med: med, min: xs[0], max: xs[n-1], ok: true}
}

// row is the summary of one target in one scenario.
type row struct {
	target                  string
	rounds                  int
	errors                  int64
	rps, p50, p99, cpu, rss stat
}

// targetOrder puts the well-known targets first, in the order a reader compares them.
var targetOrder = []string{"direct", "rampart", "nginx", "haproxy", "caddy"}

func rank(t string) int {
	if i := slices.Index(targetOrder, t); i >= 0 {
		return i
	}
	return len(targetOrder)
}

func write(w io.Writer, runs []Run) {
	var scenarios []string
	for _, r := range runs {
		if !slices.Contains(scenarios, r.Scenario) {
			scenarios = append(scenarios, r.Scenario)
		}
	}
	for i, sc := range scenarios {
		if i > 0 {
			fmt.Fprintln(w)
		}
		writeScenario(w, sc, runs)
	}
}

func writeScenario(w io.Writer, scenario string, all []Run) {
	byTarget := map[string][]Run{}
	var targets []string
	var first Run
	for _, r := range all {
		if r.Scenario != scenario {
			continue
		}
		if first.Scenario == "" {
			first = r
		}
		if _, ok := byTarget[r.Target]; !ok {
			targets = append(targets, r.Target)
		}
		byTarget[r.Target] = append(byTarget[r.Target], r)
	}
	slices.SortStableFunc(targets, func(a, b string) int { return rank(a) - rank(b) })

	rows := make([]row, 0, len(targets))
	for _, t := range targets {
		rs := byTarget[t]
		var rps, p50, p99, cpu, rss []float64
		var errs int64
		for _, r := range rs {
			rps = append(rps, r.Wrk.RPS)
			p50 = append(p50, r.Wrk.P50US)
			p99 = append(p99, r.Wrk.P99US)
			cpu = append(cpu, r.CPUUSPerReq)
			if r.RSSKB >= 0 {
				rss = append(rss, r.RSSKB/1024)
			} else {
				rss = append(rss, -1)
			}
			errs += r.Wrk.Errors
		}
		rows = append(rows, row{
			target: t, rounds: len(rs), errors: errs,
			rps: summarize(rps), p50: summarize(p50), p99: summarize(p99),
			cpu: summarize(cpu), rss: summarize(rss),
		})
	}

	fmt.Fprintf(w, "### %s: %s-byte body, %s connections, %s per run\n\n",
		scenario, orDash(first.Size), orDash(first.Conns), orDash(first.Duration))
	fmt.Fprintln(w, "Median [min–max] over the rounds.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | rounds | req/s | p50 µs | p99 µs | CPU µs/req | RSS MiB | errors |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s | %d |\n", r.target, r.rounds,
			cell(r.rps, "%.0f"), cell(r.p50, "%.0f"), cell(r.p99, "%.0f"),
			cell(r.cpu, "%.1f"), cell(r.rss, "%.1f"), r.errors)
	}

	i := slices.IndexFunc(rows, func(r row) bool { return r.target == "rampart" })
	if i < 0 || len(rows) < 2 {
		return
	}
	rp := rows[i]
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| ratio of medians | req/s | p50 | p99 | CPU/req | RSS |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: |")
	for _, o := range rows {
		if o.target == "rampart" {
			continue
		}
		fmt.Fprintf(w, "| rampart/%s | %s | %s | %s | %s | %s |\n", o.target,
			ratio(rp.rps, o.rps), ratio(rp.p50, o.p50), ratio(rp.p99, o.p99),
			ratio(rp.cpu, o.cpu), ratio(rp.rss, o.rss))
	}
}

func cell(s stat, format string) string {
	if !s.ok {
		return "–"
	}
	return fmt.Sprintf(format+" ["+format+"–"+format+"]", s.med, s.min, s.max)
}

func ratio(a, b stat) string {
	if !a.ok || !b.ok || b.med == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a.med/b.med)
}

func orDash(s string) string {
	if s == "" {
		return "?"
	}
	return s
}
