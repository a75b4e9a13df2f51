package discovery

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rampart-gw/rampart/internal/app"
	"github.com/rampart-gw/rampart/internal/discovery"
	"github.com/rampart-gw/rampart/test/gwtest"
)

// rampartBin is the gateway binary, for `rampart register`.
var rampartBin string

func TestMain(m *testing.M) { gwtest.MainWithBinary(m, &rampartBin) }

// etcdServer is a real etcd (the Debian etcd-server package) on free
// loopback ports; stop and start keep its ports and data.
type etcdServer struct {
	t        *testing.T
	args     []string
	endpoint string
	cmd      *exec.Cmd
	done     chan struct{}
	out      *syncBuf
}

// startEtcd starts etcd, stopped when the test ends, and returns its
// endpoint.
func startEtcd(t *testing.T) string { return startEtcdServer(t).endpoint }

func startEtcdServer(t *testing.T) *etcdServer {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatalf("etcd is not installed (run scripts/test-deps.sh, which installs the Debian package etcd-server): %v", err)
	}
	client, peer := gwtest.FreeAddr(t), gwtest.FreeAddr(t)
	e := &etcdServer{t: t, endpoint: client, args: []string{bin, "--name", "disc-test", "--data-dir", filepath.Join(t.TempDir(), "etcd"),
		"--listen-client-urls", "http://" + client, "--advertise-client-urls", "http://" + client,
		"--listen-peer-urls", "http://" + peer, "--initial-advertise-peer-urls", "http://" + peer,
		"--initial-cluster", "disc-test=http://" + peer, "--log-level", "error", "--logger", "zap"}}
	e.start()
	t.Cleanup(e.stop)
	return e
}

// start starts the server and waits until it answers.
func (e *etcdServer) start() {
	e.t.Helper()
	e.cmd, e.done, e.out = exec.Command(e.args[0], e.args[1:]...), make(chan struct{}), &syncBuf{}
	e.cmd.Stdout, e.cmd.Stderr = e.out, e.out
	if err := e.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	cmd, done := e.cmd, e.done
	go func() { cmd.Wait(); close(done) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + e.endpoint + "/health")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), `"true"`) {
				return
			}
		}
		select {
		case <-done:
			e.t.Fatalf("etcd exited: %s", e.out.String())
		default:
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("etcd not healthy after 20s: %s", e.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop stops the server (SIGTERM, then SIGKILL after 5s).
func (e *etcdServer) stop() {
	if e.cmd == nil {
		return
	}
	e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.done:
	case <-time.After(5 * time.Second):
		e.cmd.Process.Kill()
		<-e.done
	}
	e.cmd = nil
}

// syncBuf is a buffer safe for a writer and concurrent readers.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ctx2 is a context for one etcd call of a test.
func ctx2(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func etcdConfig(endpoint, service string) string {
	return gwtest.Head + fmt.Sprintf(`upstreams:
  app:
    discovery: {type: etcd, name: %s, endpoints: [%q], timeout: 1s}
routes:
  - {name: all, match: {path: {prefix: /}}, upstream: app}
`, service, endpoint)
}

func etcdClient(t *testing.T, endpoint string) *clientv3.Client {
	t.Helper()
	c, err := discovery.EtcdClient([]string{endpoint}, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestEtcdRegistration: an instance registered with a lease is a target
// while the lease lives and goes away when it expires; `rampart register`
// adds one and keeps it, and removes it on SIGTERM.
func TestEtcdRegistration(t *testing.T) {
	ep := startEtcd(t)
	a, b := newBackend(t, "a", "127.0.0.1:0"), newBackend(t, "b", "127.0.0.1:0")
	g := gwtest.Start(t, etcdConfig(ep, "app"))
	cl := gwtest.Client(t, 5*time.Second)

	// Nothing registered yet: a clear 503.
	r := get(cl, g.URL+"/")
	if e := decodeError(t, r.body); r.status != http.StatusServiceUnavailable || !strings.Contains(e.Error.Message, "found no instance") {
		t.Fatalf("before any registration: %d %s", r.status, r.body)
	}

	// a registers with a short lease it never renews (an instance that
	// dies without deregistering).
	c := etcdClient(t, ep)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lease, err := c.Grant(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, discovery.Key(discovery.DefaultPrefix, "app", "a"), fmt.Sprintf(`{"address": %q, "zone": "z1", "metadata": {"version": "1"}}`, a.addr), clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	gwtest.WaitFor(t, 15*time.Second, "a registered", func() bool { return slices.Equal(addrs(t, g, "app"), []string{a.addr}) })
	if r := get(cl, g.URL+"/"); r.backend != "a" {
		t.Fatalf("got %d %s, want a", r.status, r.body)
	}

	// b registers with `rampart register`.
	var out syncBuf
	p := gwtest.StartProc(t, rampartBin, &out, "register", "--etcd", ep, "--service", "app", "--address", b.addr, "--ttl", "2s", "--weight", "3")
	gwtest.WaitFor(t, 20*time.Second, "rampart register registered", func() bool { return strings.Contains(out.String(), "registered "+b.addr) })
	gwtest.WaitFor(t, 15*time.Second, "b a target", func() bool { return slices.Contains(addrs(t, g, "app"), b.addr) })

	// a's lease expires: a goes; b's lease is kept alive past its TTL.
	gwtest.WaitFor(t, 20*time.Second, "a's lease expired", func() bool { return slices.Equal(addrs(t, g, "app"), []string{b.addr}) })
	time.Sleep(3 * time.Second) // longer than b's TTL
	if got := addrs(t, g, "app"); !slices.Equal(got, []string{b.addr}) {
		t.Fatalf("targets %v after b's TTL: the registrar did not keep its lease alive", got)
	}
	for _, tv := range upstream(t, g, "app").Targets {
		if tv.Weight != 3 {
			t.Errorf("b's weight %d, want 3", tv.Weight)
		}
	}
	for range 5 {
		if r := get(cl, g.URL+"/"); r.backend != "b" {
			t.Fatalf("got %d %s, want b", r.status, r.body)
		}
	}

	// SIGTERM: the registrar deletes its key and exits 0.
	p.Signal(t, syscall.SIGTERM)
	if code := p.WaitExit(t, 10*time.Second); code != 0 {
		t.Fatalf("rampart register exited %d: %s", code, p.Stderr())
	}
	if !strings.Contains(out.String(), "deregistered") {
		t.Errorf("output %q", out.String())
	}
	// Deleted and revoked before it exited, not left to expire.
	bKey := discovery.Key(discovery.DefaultPrefix, "app", b.addr)
	if resp, err := c.Get(ctx2(t), bKey); err != nil || len(resp.Kvs) != 0 {
		t.Errorf("key %s after exit: %v %v", bKey, resp, err)
	}
	var leaseHex string
	if _, after, ok := strings.Cut(out.String(), "(lease "); ok {
		leaseHex, _, _ = strings.Cut(after, ",")
	}
	id, err := strconv.ParseInt(leaseHex, 16, 64)
	if err != nil {
		t.Fatalf("no lease in output %q", out.String())
	}
	if ttl, err := c.TimeToLive(ctx2(t), clientv3.LeaseID(id)); err != nil || ttl.TTL != -1 {
		t.Errorf("lease %x after exit: %+v %v, want revoked (TTL -1)", id, ttl, err)
	}
	gwtest.WaitFor(t, 15*time.Second, "b gone from the targets", func() bool { return len(addrs(t, g, "app")) == 0 })
	if r := get(cl, g.URL+"/"); r.status != http.StatusServiceUnavailable {
		t.Errorf("after the last instance left: %d %s", r.status, r.body)
	}
	d := upstream(t, g, "app").Discovery
	if d == nil || d.Type != "etcd" || d.LastRefresh == nil || d.Targets != 0 || !strings.HasPrefix(d.Source, "etcd /rampart/services/app/ at ") {
		t.Errorf("discovery %+v", d)
	}
}

// TestEtcdBadValues: values that are not instances are skipped, each
// logged once; the valid ones are targets, and a fixed value becomes one.
func TestEtcdBadValues(t *testing.T) {
	ep := startEtcd(t)
	a, b := newBackend(t, "a", "127.0.0.1:0"), newBackend(t, "b", "127.0.0.1:0")
	c := etcdClient(t, ep)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key := func(id string) string { return discovery.Key(discovery.DefaultPrefix, "app", id) }
	bad := map[string]string{
		"text":          "not json at all",
		"no-address":    `{"weight": 2}`,
		"no-port":       `{"address": "127.0.0.1"}`,
		"weight":        `{"address": "127.0.0.1:1", "weight": -1}`,
		"unknown-field": `{"address": "127.0.0.1:1", "port": 80}`,
		"meta-not-text": `{"address": "127.0.0.1:1", "metadata": {"n": 1}}`,
	}
	for id, v := range bad {
		if _, err := c.Put(ctx, key(id), v); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Put(ctx, key("a"), fmt.Sprintf(`{"address": %q}`, a.addr)); err != nil {
		t.Fatal(err)
	}
	// Another service's instance is not ours.
	if _, err := c.Put(ctx, discovery.Key(discovery.DefaultPrefix, "app2", "x"), fmt.Sprintf(`{"address": %q}`, b.addr)); err != nil {
		t.Fatal(err)
	}
	var log syncBuf
	path := filepath.Join(t.TempDir(), "rampart.yaml")
	if err := os.WriteFile(path, []byte(etcdConfig(ep, "app")), 0o600); err != nil {
		t.Fatal(err)
	}
	g := gwtest.Run(t, app.Options{ConfigPath: path, Log: slog.New(slog.NewTextHandler(&log, nil))})
	if got := addrs(t, g, "app"); !slices.Equal(got, []string{a.addr}) {
		t.Fatalf("targets %v, want only the valid registration", got)
	}
	if n := strings.Count(log.String(), "skipping a registration"); n != len(bad) {
		t.Errorf("%d skip lines, want %d:\n%s", n, len(bad), log.String())
	}
	for id := range bad {
		if !strings.Contains(log.String(), key(id)) {
			t.Errorf("no log line names %s", key(id))
		}
	}
	// A bad value fixed in place becomes a target; a good one broken
	// stops being one.
	if _, err := c.Put(ctx, key("text"), fmt.Sprintf(`{"address": %q}`, b.addr)); err != nil {
		t.Fatal(err)
	}
	both := []string{a.addr, b.addr}
	slices.Sort(both) // the admin API lists targets by address
	gwtest.WaitFor(t, 15*time.Second, "the fixed value", func() bool { return slices.Equal(addrs(t, g, "app"), both) })
	if _, err := c.Put(ctx, key("a"), "garbage"); err != nil {
		t.Fatal(err)
	}
	gwtest.WaitFor(t, 15*time.Second, "the broken value", func() bool { return slices.Equal(addrs(t, g, "app"), []string{b.addr}) })
}

// TestEtcdUnreachable: discovery that cannot reach etcd has never
// succeeded, and the upstream says so in its 503.
func TestEtcdUnreachable(t *testing.T) {
	g := gwtest.Start(t, strings.Replace(etcdConfig(gwtest.FreeAddr(t), "app"), "timeout: 1s", "timeout: 300ms", 1))
	r := get(gwtest.Client(t, 5*time.Second), g.URL+"/")
	e := decodeError(t, r.body)
	if r.status != http.StatusServiceUnavailable || e.Error.Code != "no_healthy_upstream" || !strings.Contains(e.Error.Message, "has not succeeded yet") {
		t.Fatalf("got %d %s", r.status, r.body)
	}
}

// TestEtcdOutage: while etcd is down the targets stay and keep serving,
// and the admin API shows the error; when etcd is back the error clears
// and the watch goes on.
func TestEtcdOutage(t *testing.T) {
	e := startEtcdServer(t)
	a, b := newBackend(t, "a", "127.0.0.1:0"), newBackend(t, "b", "127.0.0.1:0")
	put := func(id, addr string) {
		t.Helper()
		c := etcdClient(t, e.endpoint)
		if _, err := c.Put(ctx2(t), discovery.Key(discovery.DefaultPrefix, "app", id), fmt.Sprintf(`{"address": %q}`, addr)); err != nil {
			t.Fatal(err)
		}
	}
	put("a", a.addr)
	g := gwtest.Start(t, strings.Replace(etcdConfig(e.endpoint, "app"), "timeout: 1s", "timeout: 500ms", 1))
	cl := gwtest.Client(t, 5*time.Second)
	e.stop()
	gwtest.WaitFor(t, 20*time.Second, "the outage reported", func() bool {
		d := upstream(t, g, "app").Discovery
		return d != nil && strings.Contains(d.LastError, "etcd unreachable")
	})
	if got := addrs(t, g, "app"); !slices.Equal(got, []string{a.addr}) {
		t.Fatalf("targets during the outage %v", got)
	}
	for range 5 {
		if r := get(cl, g.URL+"/"); r.backend != "a" {
			t.Fatalf("during the outage: %d %s", r.status, r.body)
		}
	}
	e.start()
	gwtest.WaitFor(t, 30*time.Second, "the error cleared", func() bool {
		d := upstream(t, g, "app").Discovery
		return d != nil && d.LastError == ""
	})
	put("b", b.addr)
	both := []string{a.addr, b.addr}
	slices.Sort(both)
	gwtest.WaitFor(t, 30*time.Second, "a registration after the outage", func() bool { return slices.Equal(addrs(t, g, "app"), both) })
}
