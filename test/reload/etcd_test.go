package reload

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
		gwtest.WaitFor(t, 15*time.Second, "restarted plane back in sync", func() bool {
			st := getStatus(t, c, b.g.Admin)
			return !st.Active.FromCache && st.Etcd.Connected
		})
		publishAll(v3)
		for _, p := range planes {
			answers(t, c, p.g.URL+"/", "v3", "plane "+p.name+" serving v3 after etcd returned")
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
