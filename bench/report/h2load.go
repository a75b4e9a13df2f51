package main

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ParseH2load reads the output of `h2load -D SECONDS` into a Wrk. h2load prints
// no percentiles, only min/max/mean per request, so P50US and P99US are -1
// (shown as "–") and MeanUS carries the mean. Requests counts the successful
// ones (h2load counts a response outside 2xx/3xx as failed); errors are the
// failed, errored and timed-out requests.
func ParseH2load(r io.Reader) (Wrk, error) {
	w := Wrk{P50US: -1, P99US: -1, Exact: true}
	var haveFinished, haveRequests bool
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "finished in ") && len(f) >= 5:
			// "finished in 3.00s, 45678.33 req/s, 2.34MB/s"
			d, err := parseDurationUS(strings.TrimSuffix(f[2], ","))
			if err != nil {
				return Wrk{}, fmt.Errorf("parse h2load duration: %w", err)
			}
			rps, err := strconv.ParseFloat(f[3], 64)
			if err != nil {
				return Wrk{}, fmt.Errorf("parse h2load req/s: %w", err)
			}
			w.DurationUS, w.RPS, haveFinished = int64(d), rps, true
		case strings.HasPrefix(line, "requests:"):
			// "requests: 10 total, 10 started, 10 done, 9 succeeded, 1 failed, 0 errored, 0 timeout"
			n := map[string]int64{}
			for i := 1; i+1 < len(f); i += 2 {
				x, err := strconv.ParseInt(f[i], 10, 64)
				if err != nil {
					return Wrk{}, fmt.Errorf("parse h2load requests: %w", err)
				}
				n[strings.TrimSuffix(f[i+1], ",")] = x
			}
			w.Requests = n["succeeded"]
			w.Errors += n["failed"] + n["errored"] + n["timeout"]
			haveRequests = true
		case strings.HasPrefix(line, "time for request:") && len(f) >= 6:
			d, err := parseDurationUS(f[5])
			if err != nil {
				return Wrk{}, fmt.Errorf("parse h2load mean: %w", err)
			}
			w.MeanUS = d
		}
	}
	if err := sc.Err(); err != nil {
		return Wrk{}, fmt.Errorf("read h2load output: %w", err)
	}
	if !haveFinished || !haveRequests {
		return Wrk{}, ErrNoResult
	}
	return w, nil
}
