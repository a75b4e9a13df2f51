package reload

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/app"
	"github.com/rampart-gw/rampart/internal/source"
	"github.com/rampart-gw/rampart/test/gwtest"
)

// etcdConfig is a data-plane config answering from upstream up.
func etcdConfig(listen, adminAddr, up string) string {
	return head(listen, adminAddr) + fmt.Sprintf(`
upstreams:
  one: {targets: [{address: %q}]}
routes:
  - {name: r, match: {path: {prefix: /}}, upstream: one}
`, up)
}

// publishCLI publishes file with `rampart config publish`.
func publishCLI(t *testing.T, endpoint, prefix, file string) string {
	t.Helper()
	out, err := exec.Command(rampartBin, "config", "publish", "-c", file, "--etcd", endpoint, "--prefix", prefix).CombinedOutput()
	if err != nil {
		t.Fatalf("config publish: %v\n%s", err, out)
	}
	return string(out)
}

// answers waits until GET url answers body.
func answers(t *testing.T, c *http.Client, url, body, what string) {
	t.Helper()
	gwtest.WaitFor(t, 10*time.Second, what, func() bool {
		code, b, _ := get(c, url)
		return code == 200 && b == body
	})
}

// TestEtcdControlPlane: publish -> two data planes apply; an invalid
// revision is refused by both; etcd stopped -> both keep serving; a data
// plane restarted while etcd is down starts from its cache; etcd back -> a
// new revision reaches both.
func TestEtcdControlPlane(t *testing.T) {
	e := startEtcd(t)
	v1, v2, v3 := named(t, "v1", 0), named(t, "v2", 0), named(t, "v3", 0)
	const prefix = "/rampart/test"
	dir := t.TempDir()
	c := newClient(t)

	// Both data planes watch one prefix and share one config; its
	// listeners use port 0 so that both can run on this machine.
	type plane struct {
		name, cache string
		g           *gwtest.Gateway
	}
	planes := []*plane{{name: "a", cache: filepath.Join(dir, "cache-a")}, {name: "b", cache: filepath.Join(dir, "cache-b")}}
	publishAll := func(up string) {
		t.Helper()
		f := filepath.Join(dir, "rampart.yaml")
		os.WriteFile(f, []byte(etcdConfig("127.0.0.1:0", "127.0.0.1:0", up)), 0o600)
		if out := publishCLI(t, e.endpoint, prefix, f); !strings.Contains(out, "published version") {
			t.Fatalf("publish output %q", out)
		}
	}
	startPlane := func(p *plane) {
		ec := source.EtcdConfig{Endpoints: []string{e.endpoint}, Prefix: prefix}
		p.g = gwtest.Run(t, app.Options{Etcd: &ec, CacheDir: p.cache, EtcdStartTimeout: 2 * time.Second})
	}

	publishAll(v1)
	for _, p := range planes {
		startPlane(p)
		answers(t, c, p.g.URL+"/", "v1", "plane "+p.name+" serving v1")
	}

	t.Run("publish applies everywhere", func(t *testing.T) {
		publishAll(v2)
		for _, p := range planes {
			answers(t, c, p.g.URL+"/", "v2", "plane "+p.name+" serving v2")
		}
	})

	t.Run("invalid revision refused", func(t *testing.T) {
		e.publish(t, prefix, strings.Replace(etcdConfig("127.0.0.1:0", "127.0.0.1:0", v3), "upstream: one", "upstream: nowhere", 1))
		for _, p := range planes {
			gwtest.WaitFor(t, 10*time.Second, "refusal on "+p.name, func() bool {
				st := getStatus(t, c, p.g.Admin)
				return st.LastError != nil && st.LastError.Source == app.SourceEtcd
			})
			if code, b, _ := get(c, p.g.URL+"/"); code != 200 || b != "v2" {
				t.Errorf("plane %s after an invalid revision: %d %q, want v2", p.name, code, b)
			}
		}
	})

	t.Run("etcd down, restart from cache, etcd back", func(t *testing.T) {
		e.Stop()
		for _, p := range planes {
			for range 20 {
				if code, b, _ := get(c, p.g.URL+"/"); code != 200 || b != "v2" {
					t.Fatalf("plane %s with etcd down: %d %q", p.name, code, b)
				}
			}
		}
		// Restart plane b while etcd is down: it must start from its cache.
		b := planes[1]
		b.g.Stop()
		startPlane(b)
		st := getStatus(t, c, b.g.Admin)
		if !st.Active.FromCache || st.Etcd == nil || !st.Etcd.StartedFromCache || st.Active.Source != app.SourceCache {
			t.Errorf("restarted plane status %+v, want from_cache", st)
		}
		answers(t, c, b.g.URL+"/", "v2", "restarted plane serving v2 from its cache")

		e.Start()
		back := time.Now()
		gwtest.WaitFor(t, 5*time.Second, "restarted plane back in sync", func() bool {
			st := getStatus(t, c, b.g.Admin)
			return !st.Active.FromCache && st.Etcd.Connected
		})
		t.Logf("restarted plane in sync %v after etcd answered", time.Since(back).Round(time.Millisecond))
		publishAll(v3)
		published := time.Now()
		for _, p := range planes {
			answers(t, c, p.g.URL+"/", "v3", "plane "+p.name+" serving v3 after etcd returned")
			t.Logf("plane %s serving v3 %v after the publish", p.name, time.Since(published).Round(time.Millisecond))
		}
	})

	t.Run("publish refuses an invalid file", func(t *testing.T) {
		f := filepath.Join(dir, "bad.yaml")
		os.WriteFile(f, []byte(strings.Replace(etcdConfig(gwtest.FreeAddr(t), gwtest.FreeAddr(t), v1), "upstream: one", "upstream: nowhere", 1)), 0o600)
		out, err := exec.Command(rampartBin, "config", "publish", "-c", f, "--etcd", e.endpoint, "--prefix", prefix).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "bad.yaml:") || !strings.Contains(string(out), "not published") {
			t.Errorf("publish of an invalid file: %v\n%s", err, out)
		}
	})
}

// TestEtcdNoCacheNoStart: with etcd unreachable and no cache, the data
// plane does not start, and says why.
func TestEtcdNoCacheNoStart(t *testing.T) {
	ec := source.EtcdConfig{Endpoints: []string{gwtest.FreeAddr(t)}, Prefix: "/nothing"}
	_, err := app.New(app.Options{Etcd: &ec, CacheDir: t.TempDir(), EtcdStartTimeout: 500 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil || !strings.Contains(err.Error(), "cache") {
		t.Fatalf("app.New = %v, want an error naming the missing cache", err)
	}
}

// etcdForwarder is a TCP forwarder on 127.0.0.1 in front of a real etcd. It
// records when each connection arrives, so a test can see how often the data
// plane dials etcd while etcd is down: a connection it cannot pass on (etcd
// stopped) is closed at once.
type etcdForwarder struct {
	addr string
	mu   sync.Mutex
	at   []time.Time
}

func forwardEtcd(t *testing.T, to string) *etcdForwarder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &etcdForwarder{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	track := func(c net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if conns == nil {
			return false // closed
		}
		conns = append(conns, c)
		return true
	}
	conns = []net.Conn{}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		conns = nil
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for { // ends when the listener is closed
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.at = append(f.at, time.Now())
			f.mu.Unlock()
			up, err := net.DialTimeout("tcp", to, time.Second)
			if err != nil || !track(c) {
				c.Close()
				if up != nil {
					up.Close()
				}
				continue
			}
			if !track(up) {
				c.Close()
				up.Close()
				continue
			}
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(up, c); up.Close() }()
			go func() { defer wg.Done(); io.Copy(c, up); c.Close() }()
		}
	}()
	return f
}

// since returns the arrival times of connections after t0.
func (f *etcdForwarder) since(t0 time.Time) []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []time.Time
	for _, at := range f.at {
		if at.After(t0) {
			out = append(out, at)
		}
	}
	return out
}

// TestEtcdReconnectAfterLongOutage: however long etcd was down, the data
// plane dials it again at least every ~2 s (the documented backoff), so a
// revision published once etcd is back is applied within a few seconds.
// Before the fix the gRPC connection's own backoff grew towards 120 s: in a
// 14 s outage the gaps between dials reached 6-10 s, and after a 30 s one a
// revision published once etcd was back took 11-17 s to apply.
func TestEtcdReconnectAfterLongOutage(t *testing.T) {
	const (
		outage = 14 * time.Second
		maxGap = 4 * time.Second // 2 s backoff + 20 % jitter + slack for a loaded machine
		resync = 5 * time.Second
		prefix = "/rampart/outage"
	)
	e := startEtcd(t)
	fw := forwardEtcd(t, e.endpoint)
	v1, v2 := named(t, "v1", 0), named(t, "v2", 0)
	dir := t.TempDir()
	c := newClient(t)
	publish := func(up string) {
		t.Helper()
		f := filepath.Join(dir, "rampart.yaml")
		os.WriteFile(f, []byte(etcdConfig("127.0.0.1:0", "127.0.0.1:0", up)), 0o600)
		publishCLI(t, e.endpoint, prefix, f)
	}
	publish(v1)
	ec := source.EtcdConfig{Endpoints: []string{fw.addr}, Prefix: prefix}
	g := gwtest.Run(t, app.Options{Etcd: &ec, CacheDir: filepath.Join(dir, "cache"), EtcdStartTimeout: 2 * time.Second})
	answers(t, c, g.URL+"/", "v1", "serving v1")

	e.Stop()
	down := time.Now()
	gwtest.WaitFor(t, 5*time.Second, "etcd reported unreachable", func() bool {
		return !getStatus(t, c, g.Admin).Etcd.Connected
	})
	for time.Since(down) < outage { // bounded by outage
		if code, b, _ := get(c, g.URL+"/"); code != 200 || b != "v1" {
			t.Fatalf("with etcd down: %d %q, want v1", code, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.Start()
	back := time.Now()
	publish(v2)
	// Wait well past the bound, so that a failure reports how long it took.
	gwtest.WaitFor(t, 45*time.Second, "v2 applied after etcd returned", func() bool {
		code, b, _ := get(c, g.URL+"/")
		return code == 200 && b == "v2"
	})
	took := time.Since(back)
	gwtest.WaitFor(t, time.Second, "etcd reported connected", func() bool {
		return getStatus(t, c, g.Admin).Etcd.Connected
	})

	dials := fw.since(down)
	var longest time.Duration
	for i := 1; i < len(dials); i++ {
		longest = max(longest, dials[i].Sub(dials[i-1]))
	}
	t.Logf("etcd down %v; %d dials, longest gap %v; v2 applied %v after etcd answered",
		outage, len(dials), longest.Round(time.Millisecond), took.Round(time.Millisecond))
	if longest > maxGap {
		t.Errorf("longest gap between dials while etcd was down: %v, want <= %v", longest.Round(time.Millisecond), maxGap)
	}
	if took > resync {
		t.Errorf("revision published after etcd returned applied %v later, want <= %v", took.Round(time.Millisecond), resync)
	}
}
