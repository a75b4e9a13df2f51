package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// hasScale reports whether any run comes from the scale phase.
func hasScale(runs []Run) bool {
	return slices.ContainsFunc(runs, func(r Run) bool { return r.Phase == "scale" })
}

// scaleNotes returns the text of the "# scale-note: " comments of a results
// file: why a connection count was lowered.
func scaleNotes(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open results: %w", err)
	}
	defer f.Close()
	var notes []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if n, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "# scale-note: "); ok {
			notes = append(notes, n)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	return notes, nil
}

// writeScale prints the scaling table: CPU per request of rampart and nginx at
// every connection count of the scale phase, their ratio, and the throughput;
// the 2-core row last.
func writeScale(w io.Writer, runs []Run, notes []string) {
	type key struct{ conns, cores int }
	cpu := map[key]map[string][]float64{}
	rps := map[key]map[string][]float64{}
	var keys []key
	for _, r := range runs {
		if r.Phase != "scale" {
			continue
		}
		c, err := strconv.Atoi(r.Conns)
		if err != nil {
			continue
		}
		k := key{c, max(r.Cores, 1)}
		if cpu[k] == nil {
			cpu[k], rps[k] = map[string][]float64{}, map[string][]float64{}
			keys = append(keys, k)
		}
		cpu[k][r.Target] = append(cpu[k][r.Target], r.CPUUSPerReq)
		rps[k][r.Target] = append(rps[k][r.Target], r.Wrk.RPS)
	}
	slices.SortFunc(keys, func(a, b key) int {
		if a.cores != b.cores {
			return a.cores - b.cores
		}
		return a.conns - b.conns
	})
	fmt.Fprintln(w, "### scale: CPU per request against active keep-alive connections, and with 2 cores")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "HTTP/1.1, 100-byte body, every connection busy (wrk). Medians over the rounds. With 1 core the proxy")
	fmt.Fprintln(w, "has one pinned CPU and one thread or worker; with 2 cores rampart runs GOMAXPROCS=2 and nginx 2 workers,")
	fmt.Fprintln(w, "sharing both CPUs with wrk and the backend, which then cap the throughput: that row says how far each")
	fmt.Fprintln(w, "proxy gets on this machine, not what it could do with 2 cores of its own.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| connections | cores | rampart µs/req | nginx µs/req | ratio | rampart req/s | nginx req/s | req/s ratio |")
	fmt.Fprintln(w, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, k := range keys {
		rc, nc := summarize(cpu[k]["rampart"]), summarize(cpu[k]["nginx"])
		rr, nr := summarize(rps[k]["rampart"]), summarize(rps[k]["nginx"])
		fmt.Fprintf(w, "| %d | %d | %s | %s | %s | %s | %s | %s |\n", k.conns, k.cores,
			med(rc, "%.1f"), med(nc, "%.1f"), ratio(rc, nc), med(rr, "%.0f"), med(nr, "%.0f"), ratio(rr, nr))
	}
	for _, n := range notes {
		fmt.Fprintf(w, "\nNote: %s.\n", strings.TrimSuffix(n, "."))
	}
}

func med(s stat, format string) string {
	if !s.ok {
		return "–"
	}
	return fmt.Sprintf(format, s.med)
}
