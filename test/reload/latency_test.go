package reload

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/app"
	"github.com/rampart-gw/rampart/test/gwtest"
)

// bigConfig has n routes (prefix, exact and template paths, some with
// methods and headers) over 10 upstreams; variant changes one route so two
// variants have different versions.
func bigConfig(listen, adminAddr, up string, n, variant int) string {
	var b strings.Builder
	b.WriteString(head(listen, adminAddr))
	b.WriteString("upstreams:\n")
	for u := range 10 {
		fmt.Fprintf(&b, "  u%d: {targets: [{address: %q}]}\n", u, up)
	}
	b.WriteString("routes:\n")
	for i := range n {
		switch i % 4 {
		case 0:
			fmt.Fprintf(&b, "  - {name: r%d, match: {path: {prefix: /svc%d/}}, upstream: u%d}\n", i, i, i%10)
		case 1:
			fmt.Fprintf(&b, "  - {name: r%d, match: {path: {exact: /item/%d}, methods: [GET]}, upstream: u%d}\n", i, i, i%10)
		case 2:
			fmt.Fprintf(&b, "  - {name: r%d, match: {path: {template: \"/t%d/{id}\"}}, upstream: u%d}\n", i, i, i%10)
		case 3:
			fmt.Fprintf(&b, "  - {name: r%d, match: {hosts: [h%d.example.com], path: {prefix: /}, headers: {X-V: \"%d\"}}, upstream: u%d}\n", i, i, i, i%10)
		}
	}
	fmt.Fprintf(&b, "  - {name: variant, match: {path: {prefix: /variant%d/}}, upstream: u0}\n", variant)
	return b.String()
}

// TestReloadLatency10kRoutes measures how long a reload of a 10,000-route
// config takes, from reading the file to the swap (the figure in
// docs/config-lifecycle.md; it is much higher under -race).
func TestReloadLatency10kRoutes(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	up := named(t, "up", 0)
	listen, adminAddr := gwtest.FreeAddr(t), gwtest.FreeAddr(t)
	path := filepath.Join(t.TempDir(), "rampart.yaml")
	cfgs := [2]string{bigConfig(listen, adminAddr, up, 10_000, 0), bigConfig(listen, adminAddr, up, 10_000, 1)}
	os.WriteFile(path, []byte(cfgs[0]), 0o600)
	g := gwtest.Run(t, app.Options{ConfigPath: path})
	c := newClient(t)
	var took []time.Duration
	for i := range 4 {
		os.WriteFile(path, []byte(cfgs[(i+1)%2]), 0o600)
		t0 := time.Now()
		if err := g.App.Reload(); err != nil {
			t.Fatal(err)
		}
		took = append(took, time.Since(t0))
	}
	if code, b, _ := get(c, g.URL+"/svc400/x"); code != 200 || b != "up" {
		t.Fatalf("after the reloads: %d %q", code, b)
	}
	slices.Sort(took)
	t.Logf("reload of a 10,000-route config (%d KiB): min %s, median %s, max %s",
		len(cfgs[0])/1024, took[0].Round(time.Millisecond), took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond))
}

// BenchmarkReload10kRoutes is the reload latency of a 10,000-route config.
func BenchmarkReload10kRoutes(b *testing.B) {
	up := "127.0.0.1:9" // never contacted: no traffic is sent
	dir := b.TempDir()
	path := filepath.Join(dir, "rampart.yaml")
	cfgs := [2]string{bigConfig("127.0.0.1:0", "127.0.0.1:0", up, 10_000, 0), bigConfig("127.0.0.1:0", "127.0.0.1:0", up, 10_000, 1)}
	os.WriteFile(path, []byte(cfgs[0]), 0o600)
	a, err := app.New(app.Options{ConfigPath: path, Log: discardLog()})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		os.WriteFile(path, []byte(cfgs[(i+1)%2]), 0o600)
		b.StartTimer()
		if err := a.Reload(); err != nil {
			b.Fatal(err)
		}
	}
}
