package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"
)

// cmdDrain asks a running gateway to drain through its admin API and waits
// until it has stopped serving the admin API (the process has exited), or
// until --wait passes. It is meant for a Kubernetes preStop hook, which
// runs inside the container and so reaches the admin API on loopback
// (where mutating calls need no token).
func cmdDrain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("drain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	admin := fs.String("admin", "127.0.0.1:9901", "the gateway's admin API address")
	wait := fs.Duration("wait", 60*time.Second, "how long to wait for the gateway to stop (0: do not wait)")
	tokenFile := fs.String("token-file", "", "file holding the admin bearer token, if admin.token_file is set")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+*admin+"/api/v1/drain", nil)
	if err != nil {
		fmt.Fprintln(stderr, "rampart drain:", err)
		return 2
	}
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			fmt.Fprintln(stderr, "rampart drain:", err)
			return 1
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(b)))
	}
	cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := cl.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			fmt.Fprintln(stdout, "not running")
			return 0
		}
		fmt.Fprintln(stderr, "rampart drain:", err)
		return 1
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		fmt.Fprintf(stderr, "rampart drain: %s: %s\n", resp.Status, strings.TrimSpace(string(body)))
		return 1
	}
	fmt.Fprintln(stdout, "draining")
	if *wait <= 0 {
		return 0
	}
	deadline := time.Now().Add(*wait)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", *admin, time.Second)
		if err != nil {
			fmt.Fprintln(stdout, "stopped")
			return 0
		}
		c.Close()
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintf(stderr, "rampart drain: still running after %s\n", *wait)
	return 1
}
