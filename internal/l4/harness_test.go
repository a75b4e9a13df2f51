package l4_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/admin"
	"github.com/rampart-gw/rampart/internal/app"
	"github.com/rampart-gw/rampart/internal/config"
)

// ioTimeout bounds every wait of these tests on a socket or a condition;
// none of them measures speed.
const ioTimeout = 10 * time.Second

// gateway is a real gateway (app.App) serving a config, on 127.0.0.1.
type gateway struct {
	t     *testing.T
	app   *app.App
	stop  context.CancelFunc
	done  chan error
	admin string
}

// startGateway runs the gateway on doc until the test ends. The admin API
// listens on a free port; the access log is off.
func startGateway(t *testing.T, doc string) *gateway {
	t.Helper()
	cfg, err := config.LoadBytes("tcp.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	a, err := app.New(app.Options{Config: cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &gateway{t: t, app: a, stop: cancel, done: make(chan error, 1), admin: a.AdminAddr()}
	go func() { g.done <- a.Run(ctx, nil) }()
	t.Cleanup(func() { g.shutdown() })
	return g
}

// shutdown drains the gateway (as SIGTERM does) and waits for Run to
// return; it returns how long that took.
func (g *gateway) shutdown() time.Duration {
	start := time.Now()
	if g.stop == nil {
		return 0
	}
	g.stop()
	g.stop = nil
	select {
	case err := <-g.done:
		if err != nil {
			g.t.Errorf("Run: %v", err)
		}
	case <-time.After(ioTimeout):
		g.t.Errorf("the gateway did not stop within %v", ioTimeout)
	}
	return time.Since(start)
}

// addr is the bound address of the listener named name.
func (g *gateway) addr(name string) string {
	g.t.Helper()
	a := g.app.ListenerAddr(name)
	if a == "" {
		g.t.Fatalf("no listener %q", name)
	}
	return a
}

// apply applies doc as a new config, as PUT /api/v1/config does.
func (g *gateway) apply(doc string) {
	g.t.Helper()
	if _, err := g.app.ApplyConfig(admin.Document{Name: "tcp.yaml", Data: []byte(doc)}); err != nil {
		g.t.Fatalf("apply: %v", err)
	}
}

var sample = regexp.MustCompile(`^([a-z_]+)(\{[^}]*\})? (\S+)$`)

// metric returns the value of the series name{labels} on /metrics (labels
// as Prometheus prints them, e.g. `listener="db",upstream="pg"`), 0 when
// it is absent.
func (g *gateway) metric(name, labels string) float64 {
	g.t.Helper()
	resp, err := http.Get("http://" + g.admin + "/metrics")
	if err != nil {
		g.t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := sample.FindStringSubmatch(sc.Text())
		if m == nil || m[1] != name {
			continue
		}
		if got := strings.Trim(m[2], "{}"); labels != "" && !sameLabels(got, labels) {
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			g.t.Fatalf("sample %q: %v", sc.Text(), err)
		}
		return v
	}
	return 0
}

// sameLabels reports whether the label set got has every label of want.
func sameLabels(got, want string) bool {
	for _, kv := range strings.Split(want, ",") {
		if !strings.Contains(","+got+",", ","+kv+",") {
			return false
		}
	}
	return true
}

// waitFor polls cond until it holds or ioTimeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// target is a TCP server on 127.0.0.1 that echoes what it reads until EOF,
// then closes; it counts accepted and open connections. With a banner, it
// writes the banner on accept, before reading anything.
type target struct {
	ln       net.Listener
	banner   string
	accepted atomic.Int64
	open     atomic.Int64
	// onConn, if set, serves connections instead of the echo.
	onConn func(net.Conn)

	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func newTarget(t *testing.T) *target {
	return newTargetWith(t, "", nil)
}

func newTargetWith(t *testing.T, banner string, onConn func(net.Conn)) *target {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tg := &target{ln: ln, banner: banner, onConn: onConn, conns: map[net.Conn]bool{}}
	tg.wg.Add(1)
	go tg.serve()
	t.Cleanup(tg.Close)
	return tg
}

func (tg *target) addr() string { return tg.ln.Addr().String() }

func (tg *target) serve() {
	defer tg.wg.Done()
	for {
		c, err := tg.ln.Accept()
		if err != nil {
			return
		}
		tg.accepted.Add(1)
		tg.open.Add(1)
		tg.mu.Lock()
		tg.conns[c] = true
		tg.mu.Unlock()
		tg.wg.Add(1)
		go func() {
			defer tg.wg.Done()
			defer func() {
				c.Close()
				tg.mu.Lock()
				delete(tg.conns, c)
				tg.mu.Unlock()
				tg.open.Add(-1)
			}()
			if tg.onConn != nil {
				tg.onConn(c)
				return
			}
			if tg.banner != "" {
				io.WriteString(c, tg.banner)
			}
			io.Copy(c, c)
		}()
	}
}

// Close stops the target: its port refuses connections from now on and
// its open connections are closed.
func (tg *target) Close() {
	tg.ln.Close()
	tg.mu.Lock()
	for c := range tg.conns {
		c.Close()
	}
	tg.mu.Unlock()
	tg.wg.Wait()
}

// deadAddr returns an address on 127.0.0.1 that refuses connections.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

// dial connects to addr with the test's deadline on every operation.
func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c.SetDeadline(time.Now().Add(ioTimeout))
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// roundTrip writes msg on c and reads len(msg) bytes back.
func roundTrip(c net.Conn, msg string) (string, error) {
	if _, err := io.WriteString(c, msg); err != nil {
		return "", err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return string(buf), err
	}
	return string(buf), nil
}

// closed reports whether the peer closed c: a read returns EOF or a reset
// before the deadline.
func closed(c net.Conn, within time.Duration) error {
	c.SetReadDeadline(time.Now().Add(within))
	var b [1]byte
	n, err := c.Read(b[:])
	switch {
	case n > 0:
		return fmt.Errorf("read %q, want the connection closed", b[:n])
	case err == nil:
		return errors.New("read returned nothing and no error")
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("still open after %v", within)
	}
	return nil // EOF or reset: closed
}

// writeConfig writes doc to a file in the test's directory (for tests
// that need file paths, such as certificates).
func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// tcpConfig is a gateway config with a tcp listener "db" on upstream
// "pg" over targets, the admin API on a free port and a short drain;
// upstream and listener are appended to the upstream's and the listener's
// mappings (each line indented as a key of them).
func tcpConfig(targets []string, listener, upstream string) string {
	var b strings.Builder
	b.WriteString("listeners:\n  - name: db\n    address: \"127.0.0.1:0\"\n    protocol: tcp\n    upstream: pg\n")
	b.WriteString(indent(listener, "    "))
	b.WriteString("admin: {address: \"127.0.0.1:0\"}\ndrain_timeout: 1s\nobservability: {access_log: {path: \"off\"}}\n")
	b.WriteString("upstreams:\n  pg:\n    connect_timeout: 1s\n    targets:\n")
	for _, a := range targets {
		fmt.Fprintf(&b, "      - {address: %q}\n", a)
	}
	b.WriteString(indent(upstream, "    "))
	return b.String()
}

func indent(s, by string) string {
	if s == "" {
		return ""
	}
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString(by + line + "\n")
	}
	return b.String()
}
