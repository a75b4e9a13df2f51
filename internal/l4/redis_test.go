package l4_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startRedis runs a real redis-server on a free port of 127.0.0.1 until
// the test ends and returns its address. The test is skipped when
// redis-server is not installed (scripts/test-deps.sh installs it).
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed (apt-get install redis-server)")
	}
	addr := deadAddr(t) // a free port, for redis to take
	_, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no",
		"--dir", t.TempDir(), "--daemonize", "no", "--protected-mode", "no")
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	waitFor(t, "redis-server to answer PING", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Second))
		got, err := resp(c, "PING")
		return err == nil && got == "+PONG"
	})
	return addr
}

// resp sends one RESP command and returns the first line of the answer
// (a bulk string's value instead of its length line).
func resp(c net.Conn, args ...string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(c, b.String()); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(line, "$") {
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return line, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return line, nil
}

// A real Redis behind the proxy: raw RESP on one connection, and
// redis-cli through the listener.
func TestRedisThroughProxy(t *testing.T) {
	redis := startRedis(t)
	g := startGateway(t, tcpConfig([]string{redis}, "", `health_check: {active: {send: "PING\r\n", expect: "+PONG", interval: 1s}}`))
	addr := g.addr("db")

	c := dial(t, addr)
	steps := []struct {
		cmd  []string
		want string
	}{
		{[]string{"PING"}, "+PONG"},
		{[]string{"SET", "rampart", "l4"}, "+OK"},
		{[]string{"GET", "rampart"}, "l4"},
		{[]string{"INCR", "n"}, ":1"},
		{[]string{"INCR", "n"}, ":2"},
	}
	for _, s := range steps {
		got, err := resp(c, s.cmd...)
		if err != nil || got != s.want {
			t.Fatalf("%v: got %q, %v; want %q", s.cmd, got, err, s.want)
		}
	}

	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Log("redis-cli not installed; raw RESP only")
		return
	}
	host, port, _ := net.SplitHostPort(addr)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"PING"}, "PONG"},
		{[]string{"GET", "rampart"}, "l4"},
		{[]string{"DBSIZE"}, "2"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		out, err := exec.CommandContext(ctx, cli, append([]string{"-h", host, "-p", port}, tc.args...)...).CombinedOutput()
		cancel()
		if err != nil || strings.TrimSpace(string(out)) != tc.want {
			t.Errorf("redis-cli %v: %q, %v; want %q", tc.args, out, err, tc.want)
		}
	}
}
