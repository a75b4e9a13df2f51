package e2e

import (
	"io"
	"net"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// scrapeValue returns the value of the sample whose name and labels are
// series (as written in the text format, `name{l="v"}` or `name`) in the
// admin API's /metrics, and whether it is there.
func scrapeValue(t *testing.T, admin, series string) (float64, bool) {
	t.Helper()
	resp, err := newClient(t).Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatalf("%s: %v", series, err)
	}
	return v, true
}

// TestRuntimeMetrics scrapes a running gateway: the Go runtime and process
// collectors are exported, rampart_active_connections follows the open
// client connections of a listener, and rampart_access_log_dropped_total
// is there from the start.
func TestRuntimeMetrics(t *testing.T) {
	up := echoUpstream(t, "echo")
	g := startGateway(t, listenerYAML("")+`
upstreams:
  echo: {targets: [{address: "`+up+`"}]}
routes:
  - {name: all, match: {path: {prefix: /}}, upstream: echo}
`)
	for _, s := range []string{"go_goroutines", "go_threads", "go_memstats_heap_alloc_bytes", `go_gc_duration_seconds_count`,
		"process_resident_memory_bytes", "process_open_fds", "process_cpu_seconds_total", "process_start_time_seconds",
		"rampart_access_log_dropped_total"} {
		if _, ok := scrapeValue(t, g.Admin, s); !ok {
			t.Errorf("%s is not exported", s)
		}
	}
	if v, _ := scrapeValue(t, g.Admin, "rampart_access_log_dropped_total"); v != 0 {
		t.Errorf("rampart_access_log_dropped_total = %v at start", v)
	}

	active := func() float64 {
		v, _ := scrapeValue(t, g.Admin, `rampart_active_connections{listener="public"}`)
		return v
	}
	var conns []net.Conn
	for range 3 {
		c, err := net.DialTimeout("tcp", g.Addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	gwtest.WaitFor(t, 5*time.Second, "3 active connections", func() bool { return active() == 3 })
	for _, c := range conns {
		c.Close()
	}
	gwtest.WaitFor(t, 5*time.Second, "0 active connections", func() bool { return active() == 0 })
}
