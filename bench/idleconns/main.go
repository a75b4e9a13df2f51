// Command idleconns measures how much memory a server spends per idle
// keep-alive client connection. It reads the server's resident set size, opens
// N HTTP/1.1 connections, sends one request on each and reads the response,
// keeps them all open and idle, waits until the server's RSS stops changing, and
// reads it again:
//
//	idleconns -url http://127.0.0.1:8080/ -n 10000 -pid 1234
//
// It prints one line of key=value fields for bench/run.sh and bench/report:
//
//	conns=10000 opened=10000 rss_before_kb=21000 rss_after_kb=61000 kib_per_conn=4.00 settle_ms=3500
//
// RSS is VmRSS from /proc/PID/status summed over PID and its direct children
// (NGINX's master and worker). The client needs one file descriptor per
// connection: raise `ulimit -n` first.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	var cfg Config
	flag.StringVar(&cfg.URL, "url", "", "http:// URL of the server to connect to")
	flag.IntVar(&cfg.Conns, "n", 10000, "idle connections to open")
	flag.IntVar(&cfg.PID, "pid", 0, "process whose VmRSS (plus its children's) is measured")
	flag.IntVar(&cfg.Parallel, "parallel", 32, "connections opened at the same time")
	flag.DurationVar(&cfg.Settle, "settle", 2*time.Second, "RSS must stay within 1% this long to count as stable")
	flag.DurationVar(&cfg.Timeout, "timeout", 60*time.Second, "give up after this long")
	flag.Parse()
	if cfg.URL == "" || cfg.PID <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	defer cancel()
	res, err := Measure(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "idleconns:", err)
		os.Exit(1)
	}
	fmt.Println(res)
}

// Config says what to measure.
type Config struct {
	URL      string        // http:// URL; one GET per connection
	Conns    int           // connections to open
	PID      int           // process to measure
	Parallel int           // concurrent dials
	Settle   time.Duration // how long RSS must stay within 1 % to be stable
	Timeout  time.Duration // for the whole measurement (main's context)
}

// Result is one measurement.
type Result struct {
	Conns, Opened int
	BeforeKB      int64
	AfterKB       int64
	SettleTime    time.Duration
}

// KiBPerConn is the RSS growth divided by the connections held open.
func (r Result) KiBPerConn() float64 {
	if r.Opened == 0 {
		return 0
	}
	return float64(r.AfterKB-r.BeforeKB) / float64(r.Opened)
}

func (r Result) String() string {
	return fmt.Sprintf("conns=%d opened=%d rss_before_kb=%d rss_after_kb=%d kib_per_conn=%.2f settle_ms=%d",
		r.Conns, r.Opened, r.BeforeKB, r.AfterKB, r.KiBPerConn(), r.SettleTime.Milliseconds())
}

// Measure opens the connections, holds them while it measures, and closes them
// before it returns.
func Measure(ctx context.Context, cfg Config) (Result, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return Result{}, fmt.Errorf("parse url %q: want http://HOST:PORT/PATH", cfg.URL)
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 1
	}
	res := Result{Conns: cfg.Conns}

	// One warm-up connection first, so lazily built state (buffers, pools,
	// the upstream connection) is part of "before", not of the per-connection figure.
	c, err := open(ctx, u)
	if err != nil {
		return res, fmt.Errorf("warm up: %w", err)
	}
	c.Close()
	if res.BeforeKB, _, err = stableRSS(ctx, cfg.PID, cfg.Settle); err != nil {
		return res, err
	}

	conns := make([]net.Conn, cfg.Conns)
	errs := make([]error, cfg.Conns)
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < cfg.Parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				conns[i], errs[i] = open(ctx, u)
			}
		}()
	}
	for i := range cfg.Conns {
		next <- i
	}
	close(next)
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	var firstErr error
	for i, c := range conns {
		if c != nil {
			res.Opened++
		} else if firstErr == nil {
			firstErr = errs[i]
		}
	}
	if res.Opened < cfg.Conns {
		return res, fmt.Errorf("open connections: %d of %d failed, first: %w", cfg.Conns-res.Opened, cfg.Conns, firstErr)
	}
	if res.AfterKB, res.SettleTime, err = stableRSS(ctx, cfg.PID, cfg.Settle); err != nil {
		return res, err
	}
	// The server must still hold every connection: a closed one would read EOF
	// at once instead of timing out.
	if n := closedByPeer(conns); n > 0 {
		return res, fmt.Errorf("check connections: the server closed %d of %d while measuring", n, len(conns))
	}
	return res, nil
}

// open dials u, sends one keep-alive GET and reads the whole response, leaving
// the connection idle.
func open(ctx context.Context, u *url.URL) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	path := u.RequestURI()
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: rampart-idleconns\r\n\r\n", path, u.Host); err != nil {
		c.Close()
		return nil, fmt.Errorf("write request: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("read response: %w", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.Close || resp.StatusCode != http.StatusOK {
		c.Close()
		return nil, fmt.Errorf("read response: status %d, close %v, err %v", resp.StatusCode, resp.Close, err)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// closedByPeer counts connections that read EOF (or an error other than a timeout) at once.
func closedByPeer(conns []net.Conn) int {
	n := 0
	buf := make([]byte, 1)
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
		_, err := c.Read(buf)
		var ne net.Error
		if err == nil || !(errors.As(err, &ne) && ne.Timeout()) {
			n++
		}
	}
	return n
}

// stableRSS polls the RSS of pid every 250 ms until it has stayed within 1 %
// for settle, and returns the last value and how long that took.
func stableRSS(ctx context.Context, pid int, settle time.Duration) (int64, time.Duration, error) {
	start := time.Now()
	ref, err := RSS(pid)
	if err != nil {
		return 0, 0, err
	}
	since := time.Now()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0, 0, fmt.Errorf("wait for stable RSS: %w", ctx.Err())
		case <-tick.C:
		}
		cur, err := RSS(pid)
		if err != nil {
			return 0, 0, err
		}
		if diff := cur - ref; diff*100 > ref || -diff*100 > ref {
			ref, since = cur, time.Now()
			continue
		}
		if time.Since(since) >= settle {
			return cur, time.Since(start), nil
		}
	}
}

// RSS is VmRSS in KiB of pid plus that of its direct children.
func RSS(pid int) (int64, error) {
	total, err := vmRSS(pid)
	if err != nil {
		return 0, err
	}
	kids, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range kids {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// The fields after the command name (which may hold spaces) start with state, ppid.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(s[i+1:])
		if len(fields) < 2 || fields[1] != strconv.Itoa(pid) {
			continue
		}
		child, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
		if kb, err := vmRSS(child); err == nil {
			total += kb
		}
	}
	return total, nil
}

func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read RSS: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("read RSS: no VmRSS in /proc/%d/status", pid)
}
