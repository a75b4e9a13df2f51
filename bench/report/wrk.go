package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Wrk is what one wrk run reports. Latencies are in microseconds.
type Wrk struct {
	Requests   int64   // requests completed
	DurationUS int64   // wall time of the run
	RPS        float64 // "Requests/sec"
	P50US      float64
	P99US      float64
	// MeanUS is the mean latency, only known for h2load (0 for wrk).
	MeanUS float64
	// Errors counts socket errors (connect, read, write, timeout) and
	// responses with a status outside 2xx/3xx.
	Errors int64
	// Exact is true when the figures come from the BENCH line printed by
	// bench/wrk-report.lua rather than from wrk's rounded human units.
	Exact bool
}

// ErrNoResult is returned when the output holds no request count: wrk failed
// before the run (for example it could not connect at all).
var ErrNoResult = errors.New("no wrk result in output")

// ParseWrk reads the output of `wrk --latency`, with or without the
// bench/wrk-report.lua `done` script. The script's BENCH line wins where present
// because it carries exact microseconds; otherwise the human-readable summary is
// used ("571.00us", "1.23ms", "2.00s").
func ParseWrk(r io.Reader) (Wrk, error) {
	var w Wrk
	var haveRequests, haveP50, haveP99 bool
	var human struct{ socketErrs, non2xx int64 }
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	inDist := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "BENCH "):
			kv := keyValues(f[1:])
			var err error
			get := func(k string) float64 {
				v, ok := kv[k]
				if !ok {
					err = errors.Join(err, fmt.Errorf("parse BENCH line: missing %s", k))
					return 0
				}
				x, perr := strconv.ParseFloat(v, 64)
				if perr != nil {
					err = errors.Join(err, fmt.Errorf("parse BENCH line: %s: %w", k, perr))
				}
				return x
			}
			w.Requests = int64(get("requests"))
			w.DurationUS = int64(get("duration_us"))
			w.P50US = get("p50_us")
			w.P99US = get("p99_us")
			w.Errors = int64(get("err_connect") + get("err_read") + get("err_write") + get("err_timeout") + get("err_status"))
			if err != nil {
				return Wrk{}, err
			}
			w.Exact = true
			haveRequests, haveP50, haveP99 = true, true, true
		case line == "Latency Distribution":
			inDist = true
		case inDist && len(f) == 2 && strings.HasSuffix(f[0], "%"):
			d, err := parseDurationUS(f[1])
			if err != nil {
				return Wrk{}, fmt.Errorf("parse latency %s: %w", f[0], err)
			}
			if w.Exact {
				continue
			}
			switch f[0] {
			case "50%":
				w.P50US, haveP50 = d, true
			case "99%":
				w.P99US, haveP99 = d, true
			}
		case len(f) >= 4 && f[1] == "requests" && f[2] == "in":
			inDist = false
			if w.Exact {
				continue
			}
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return Wrk{}, fmt.Errorf("parse request count: %w", err)
			}
			d, err := parseDurationUS(strings.TrimSuffix(f[3], ","))
			if err != nil {
				return Wrk{}, fmt.Errorf("parse run duration: %w", err)
			}
			w.Requests, w.DurationUS, haveRequests = n, int64(math.Round(d)), true
		case strings.HasPrefix(line, "Socket errors:"):
			// "Socket errors: connect 0, read 12, write 0, timeout 3"
			for i := 2; i+1 < len(f); i += 2 {
				n, err := strconv.ParseInt(strings.TrimSuffix(f[i+1], ","), 10, 64)
				if err != nil {
					return Wrk{}, fmt.Errorf("parse socket errors: %w", err)
				}
				human.socketErrs += n
			}
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:"):
			n, err := strconv.ParseInt(f[len(f)-1], 10, 64)
			if err != nil {
				return Wrk{}, fmt.Errorf("parse non-2xx count: %w", err)
			}
			human.non2xx = n
		case strings.HasPrefix(line, "Requests/sec:") && len(f) == 2:
			x, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return Wrk{}, fmt.Errorf("parse requests/sec: %w", err)
			}
			w.RPS = x
		}
	}
	if err := sc.Err(); err != nil {
		return Wrk{}, fmt.Errorf("read wrk output: %w", err)
	}
	if !haveRequests {
		return Wrk{}, ErrNoResult
	}
	if !haveP50 || !haveP99 {
		return Wrk{}, errors.New("parse wrk output: no latency distribution (run wrk with --latency)")
	}
	if !w.Exact {
		w.Errors = human.socketErrs + human.non2xx
	}
	if w.RPS == 0 && w.DurationUS > 0 {
		w.RPS = float64(w.Requests) / (float64(w.DurationUS) / 1e6)
	}
	return w, nil
}

// keyValues splits "k=v" fields into a map.
func keyValues(fields []string) map[string]string {
	m := make(map[string]string, len(fields))
	for _, f := range fields {
		if k, v, ok := strings.Cut(f, "="); ok {
			m[k] = v
		}
	}
	return m
}

// parseDurationUS converts wrk's units ("571.00us", "0.91ms", "2.10s", "1.00m")
// to microseconds.
func parseDurationUS(s string) (float64, error) {
	units := []struct {
		suffix string
		us     float64
	}{
		{"us", 1}, {"ms", 1e3}, {"s", 1e6}, {"m", 60e6}, {"h", 3600e6},
	}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			x, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("parse duration %q: %w", s, err)
			}
			return x * u.us, nil
		}
	}
	return 0, fmt.Errorf("parse duration %q: unknown unit", s)
}
