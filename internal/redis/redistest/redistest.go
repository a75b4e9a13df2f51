// Package redistest runs a real redis-server for tests: on a free port of
// 127.0.0.1, without persistence, stopped when the test ends. Tests that
// need it skip, saying why, only when no redis-server binary is installed
// (scripts/test-deps.sh installs it).
package redistest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/rueidis"
)

// Server is one redis-server process.
type Server struct {
	t    testing.TB
	bin  string
	port int
	args []string
	// sentinel, when set, is the contents of a sentinel's config file
	// ("{port}" for the port): the server runs as a Redis Sentinel.
	sentinel string
	cmd      *exec.Cmd
	out      *bytes.Buffer
}

// Binary returns the redis-server path, or skips t when there is none.
func Binary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		for _, p := range []string{"/usr/bin/redis-server", "/usr/local/bin/redis-server"} {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
		t.Skip("redis-server not found: install it (apt-get install redis-server, or make test-deps) to run the Redis tests")
	}
	return bin
}

// Start runs a redis-server on a free port with extra arguments (for
// example "--requirepass", "secret"; "{port}" in an argument stands for the
// port, as in "--port", "0", "--tls-port", "{port}") and stops it when t
// ends.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	s := &Server{t: t, bin: Binary(t), args: extra}
	var err error
	for range 5 { // a free port may be taken between finding and binding it
		s.port = freePort(t)
		if err = s.start(); err == nil {
			t.Cleanup(s.Stop)
			return s
		}
	}
	t.Fatalf("start redis-server: %v", err)
	return nil
}

// Addr is host:port of the server.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

func (s *Server) start() error {
	args := []string{
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "no",
		"--enable-debug-command", "yes", "--loglevel", "warning",
	}
	for _, a := range s.args {
		args = append(args, strings.ReplaceAll(a, "{port}", strconv.Itoa(s.port)))
	}
	dir := s.t.TempDir()
	if s.sentinel != "" {
		// A sentinel rewrites its config file, which comes first.
		conf := filepath.Join(dir, "sentinel.conf")
		if err := os.WriteFile(conf, []byte(strings.ReplaceAll(s.sentinel, "{port}", strconv.Itoa(s.port))), 0o600); err != nil {
			return err
		}
		args = []string{conf, "--sentinel", "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--protected-mode", "no"}
	}
	cmd := exec.Command(s.bin, args...)
	s.out = &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = s.out, s.out
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd = cmd
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			s.cmd = nil
			return fmt.Errorf("redis-server exited: %s", s.out.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", s.Addr(), 100*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	<-exited
	s.cmd = nil
	return fmt.Errorf("redis-server did not listen on %s within 10s: %s", s.Addr(), s.out.String())
}

// Kill stops the server with SIGKILL, as a crash would.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	for i := 0; i < 500; i++ { // until the port is free (bounded: 5s)
		if c, err := net.DialTimeout("tcp", s.Addr(), 50*time.Millisecond); err != nil {
			break
		} else {
			c.Close()
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.cmd = nil
}

// Restart starts the server again on the same port (empty: no
// persistence).
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	var err error
	for range 50 { // the port may linger a moment after the kill
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("restart redis-server: %v", err)
}

// Stop kills the server (cleanup).
func (s *Server) Stop() { s.Kill() }

// Do runs one command on the server and returns its reply as a string
// (integers and arrays formatted), failing the test on a connection error.
func (s *Server) Do(args ...string) (string, error) {
	s.t.Helper()
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{s.Addr()}, ForceSingleClient: true, DisableCache: true})
	if err != nil {
		return "", err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	res := c.Do(ctx, c.B().Arbitrary(args[0]).Args(args[1:]...).Build())
	if err := res.Error(); err != nil {
		return "", err
	}
	m, _ := res.ToMessage()
	return format(m), nil
}

func format(m rueidis.RedisMessage) string {
	if arr, err := m.ToArray(); err == nil {
		parts := make([]string, len(arr))
		for i := range arr {
			parts[i] = format(arr[i])
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	if n, err := m.AsInt64(); err == nil {
		return strconv.FormatInt(n, 10)
	}
	str, _ := m.ToString()
	return str
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Cluster is a Redis Cluster of real redis-server processes, one primary
// per node and no replicas, the slots spread by redis-cli --cluster create.
type Cluster struct {
	Nodes []*Server
}

// Addrs are the nodes' addresses.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr()
	}
	return out
}

// StartCluster runs an n-node Redis Cluster and waits until every node
// reports cluster_state:ok. It skips t when redis-cli is missing too.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	bin := Binary(t)
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli not found: install redis-tools (or make test-deps) to run the Redis Cluster tests")
	}
	c := &Cluster{}
	for range n {
		s := &Server{t: t, bin: bin, args: []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000"}}
		for try := 0; ; try++ {
			// The cluster bus listens on port + 10000.
			s.port = freeBusPort(t)
			if err = s.start(); err == nil {
				break
			}
			if try == 4 {
				t.Fatalf("start cluster node: %v", err)
			}
		}
		t.Cleanup(s.Stop)
		c.Nodes = append(c.Nodes, s)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, s := range c.Nodes {
		ok := false
		for range 500 { // bounded: 10s
			if info, err := s.Do("CLUSTER", "INFO"); err == nil && strings.Contains(info, "cluster_state:ok") {
				ok = true
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if !ok {
			t.Fatalf("cluster node %s did not reach cluster_state:ok within 10s", s.Addr())
		}
	}
	return c
}

// freeBusPort returns a free port p below 55536 whose p + 10000 is free
// too (the cluster bus).
func freeBusPort(t testing.TB) int {
	t.Helper()
	for range 100 {
		p := freePort(t)
		if p+10000 > 65535 {
			p -= 20000
		}
		l1, err1 := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		l2, err2 := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000))
		if l1 != nil {
			l1.Close()
		}
		if l2 != nil {
			l2.Close()
		}
		if err1 == nil && err2 == nil {
			return p
		}
	}
	t.Fatal("no free port pair for a cluster node")
	return 0
}

// StartSentinel runs a Redis Sentinel monitoring master under the name
// master (quorum 1), and waits until it knows the master's address.
func StartSentinel(t testing.TB, name string, master *Server) *Server {
	t.Helper()
	s := &Server{t: t, bin: Binary(t), sentinel: fmt.Sprintf("port {port}\nsentinel resolve-hostnames no\nsentinel monitor %s 127.0.0.1 %d 1\nsentinel down-after-milliseconds %s 5000\n", name, master.port, name)}
	var err error
	for range 5 {
		s.port = freePort(t)
		if err = s.start(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("start redis sentinel: %v", err)
	}
	t.Cleanup(s.Stop)
	for range 500 { // bounded: 10s
		if out, err := s.Do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", name); err == nil && strings.Contains(out, strconv.Itoa(master.port)) {
			return s
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("sentinel does not know master %s after 10s", name)
	return nil
}
