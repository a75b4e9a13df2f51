// Command report turns the results file written by bench/run.sh into a table
// of medians with min–max per scenario and target, plus the ratios of rampart
// to direct and of every proxy to NGINX, and a table of memory per idle
// keep-alive connection.
//
// The results file has one line per measured run, as space-separated key=value
// fields; lines starting with # are comments:
//
//	scenario=100B size=100 conns=50 duration=10s round=1 target=nginx wrk=wrk/100B-1-nginx.txt cpu_ticks=812 clk_tck=100 rss_kb=5120
//
// wrk names a file holding that run's wrk output (relative to the results
// file), or h2load one holding h2load's; cpu_ticks is the gateway's utime+stime delta over the run from
// /proc/PID/stat and is absent for the direct target; rss_kb is VmRSS after the
// run. Optional fields: mode (h1, h2, h2tls, tls, grpc), streams (h2load's
// concurrent streams per connection), backend_calls (grpc: calls the backend
// answered during the run; h2load successes beyond it count as errors, as the
// proxy answered them itself), phase=scale with cores (the scaling table). Lines
// with scenario=idle come from bench/idleconns instead:
//
//	scenario=idle target=nginx conns=10000 opened=10000 rss_before_kb=3000 rss_after_kb=9000 kib_per_conn=0.60 settle_ms=2500
//
// Comment lines "# scale-note: ..." are printed under the scaling table.
package main

import (
	"bufio"
	"errors"
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
	runs, idles, err := load(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
	notes, err := scaleNotes(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
	write(os.Stdout, runs)
	if hasScale(runs) {
		fmt.Println()
		writeScale(os.Stdout, runs, notes)
	}
	if len(idles) > 0 {
		if len(runs) > 0 {
			fmt.Println()
		}
		writeIdle(os.Stdout, idles)
	}
}

// Run is one measured wrk run against one target.
type Run struct {
	Scenario string
	Size     string
	Conns    string
	Duration string
	Round    int
	Target   string
	// Mode is the protocol of the run (h1, h2, h2tls, tls, grpc); empty in
	// older results files.
	Mode string
	// Streams is h2load's concurrent streams per connection; empty for wrk.
	Streams string
	// Phase is "scale" for the scaling phase's runs, Cores the CPUs the
	// proxy had there (1 or 2).
	Phase string
	Cores int
	Wrk   Wrk
	// CPUUSPerReq is the gateway's CPU time per request; negative when not measured.
	CPUUSPerReq float64
	// RSSKB is the gateway's resident set size after the run; negative when not measured.
	RSSKB float64
}

// Idle is one memory-per-idle-connection measurement.
type Idle struct {
	Target            string
	Conns, Opened     int
	BeforeKB, AfterKB float64
}

// KiBPerConn is the RSS growth per connection held open.
func (i Idle) KiBPerConn() float64 {
	if i.Opened == 0 {
		return 0
	}
	return (i.AfterKB - i.BeforeKB) / float64(i.Opened)
}

func load(path string) ([]Run, []Idle, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open results: %w", err)
	}
	defer f.Close()
	dir := filepath.Dir(path)
	var runs []Run
	var idles []Idle
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "scenario=idle ") {
			i, err := parseIdle(line)
			if err != nil {
				return nil, nil, fmt.Errorf("%s:%d: %w", path, n, err)
			}
			idles = append(idles, i)
			continue
		}
		r, err := parseLine(line, dir)
		if err != nil {
			return nil, nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		runs = append(runs, r)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read results: %w", err)
	}
	return runs, idles, nil
}

func parseIdle(line string) (Idle, error) {
	kv := keyValues(strings.Fields(line))
	i := Idle{Target: kv["target"]}
	var err error
	num := func(k string) float64 {
		x, perr := strconv.ParseFloat(kv[k], 64)
		if perr != nil {
			err = errors.Join(err, fmt.Errorf("parse idle line: %s=%q", k, kv[k]))
		}
		return x
	}
	i.Conns, i.Opened = int(num("conns")), int(num("opened"))
	i.BeforeKB, i.AfterKB = num("rss_before_kb"), num("rss_after_kb")
	if i.Target == "" {
		err = errors.Join(err, errors.New("parse idle line: target is required"))
	}
	return i, err
}

func parseLine(line, dir string) (Run, error) {
	kv := keyValues(strings.Fields(line))
	r := Run{
		Scenario: kv["scenario"], Size: kv["size"], Conns: kv["conns"], Duration: kv["duration"],
		Target: kv["target"], Mode: kv["mode"], Streams: kv["streams"], Phase: kv["phase"],
		CPUUSPerReq: -1, RSSKB: -1,
	}
	r.Cores, _ = strconv.Atoi(kv["cores"])
	wp, parse := kv["wrk"], ParseWrk
	if h, ok := kv["h2load"]; ok {
		wp, parse = h, ParseH2load
	}
	if r.Scenario == "" || r.Target == "" || wp == "" {
		return Run{}, fmt.Errorf("parse results line: scenario, target and wrk (or h2load) are required")
	}
	r.Round, _ = strconv.Atoi(kv["round"])
	if !filepath.IsAbs(wp) {
		wp = filepath.Join(dir, wp)
	}
	f, err := os.Open(wp)
	if err != nil {
		return Run{}, fmt.Errorf("open wrk output: %w", err)
	}
	defer f.Close()
	if r.Wrk, err = parse(f); err != nil {
		return Run{}, fmt.Errorf("%s: %w", wp, err)
	}
	if v, ok := kv["backend_calls"]; ok {
		calls, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return Run{}, fmt.Errorf("parse backend_calls: %w", err)
		}
		// h2load counts any 2xx as a success; a gRPC error made by the proxy
		// (HTTP 200, grpc-status in the trailers) never reached the backend.
		if calls < r.Wrk.Requests {
			r.Wrk.Errors += r.Wrk.Requests - calls
			r.Wrk.Requests = calls
		}
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
var targetOrder = []string{"direct", "rampart", "rampart-b", "nginx", "haproxy", "caddy"}

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

	conns := orDash(first.Conns) + " connections"
	if first.Streams != "" {
		conns += " × " + first.Streams + " streams"
	}
	mode := ""
	if first.Mode != "" {
		mode = modeNames[first.Mode]
		if mode == "" {
			mode = first.Mode
		}
		mode += ", "
	}
	if first.Cores > 1 {
		mode += fmt.Sprintf("%d cores, ", first.Cores)
	}
	fmt.Fprintf(w, "### %s: %s%s-byte body, %s, %s per run\n\n",
		scenario, mode, orDash(first.Size), conns, orDash(first.Duration))
	fmt.Fprintln(w, "Median [min–max] over the rounds.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | rounds | req/s | p50 µs | p99 µs | CPU µs/req | RSS MiB | errors |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s | %d |\n", r.target, r.rounds,
			cell(r.rps, "%.0f"), cell(r.p50, "%.0f"), cell(r.p99, "%.0f"),
			cell(r.cpu, "%.1f"), cell(r.rss, "%.1f"), r.errors)
	}

	pairs := ratioPairs(rows)
	if len(pairs) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| ratio of medians | req/s | p50 | p99 | CPU/req | RSS |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: |")
	for _, p := range pairs {
		a, b := p[0], p[1]
		fmt.Fprintf(w, "| %s/%s | %s | %s | %s | %s | %s |\n", a.target, b.target,
			ratio(a.rps, b.rps), ratio(a.p50, b.p50), ratio(a.p99, b.p99),
			ratio(a.cpu, b.cpu), ratio(a.rss, b.rss))
	}
}

// modeNames describes a run's mode in the scenario headings.
var modeNames = map[string]string{
	"h1":    "HTTP/1.1",
	"h2":    "h2c (prior knowledge)",
	"h2tls": "h2 over TLS (ALPN)",
	"tls":   "HTTP/1.1 over TLS",
	"grpc":  "gRPC unary over h2c both sides",
}

// ratioPairs lists the comparisons worth quoting: rampart against no proxy,
// rampart against rampart-b (RAMPART_B, an A/B of two builds), then every
// proxy against NGINX, the reference of issue 6.
func ratioPairs(rows []row) [][2]row {
	find := func(t string) (row, bool) {
		i := slices.IndexFunc(rows, func(r row) bool { return r.target == t })
		if i < 0 {
			return row{}, false
		}
		return rows[i], true
	}
	var pairs [][2]row
	rp, haveRampart := find("rampart")
	if d, ok := find("direct"); ok && haveRampart {
		pairs = append(pairs, [2]row{rp, d})
	}
	// The A/B of RAMPART_B: this build against the other binary.
	if b, ok := find("rampart-b"); ok && haveRampart {
		pairs = append(pairs, [2]row{rp, b})
	}
	if ng, ok := find("nginx"); ok {
		for _, r := range rows {
			if r.target != "direct" && r.target != "nginx" {
				pairs = append(pairs, [2]row{r, ng})
			}
		}
	}
	return pairs
}

// writeIdle prints the memory per idle keep-alive connection, one row per
// measurement, and what 150,000 connections would take at that rate.
func writeIdle(w io.Writer, idles []Idle) {
	fmt.Fprintln(w, "### idle: memory per idle keep-alive HTTP/1.1 client connection")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "RSS (VmRSS) of the proxy before and after opening the connections (one request each), once stable.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | connections | RSS before MiB | RSS after MiB | KiB/conn | 150k conns MiB |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: |")
	for _, i := range idles {
		fmt.Fprintf(w, "| %s | %d | %.1f | %.1f | %.2f | %.0f |\n", i.Target, i.Opened,
			i.BeforeKB/1024, i.AfterKB/1024, i.KiBPerConn(), i.BeforeKB/1024+i.KiBPerConn()*150000/1024)
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
