package compile

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/gateway"
	"github.com/rampart-gw/rampart/internal/registry"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestGolden compiles each testdata/*.yaml and compares a readable dump of
// the snapshot with testdata/*.golden (go test -update rewrites them).
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	if len(files) == 0 {
		t.Fatal("no golden configs")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := config.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			snap, err := Build(cfg, Deps{})
			if err != nil {
				t.Fatal(err)
			}
			got := dump(snap)
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("snapshot of %s differs from %s:\n%s", f, golden, got)
			}
		})
	}
}

// Build is pure: building the same config twice gives the same claims,
// and nothing is held in a registry until the snapshot is acquired.
func TestBuildIsPure(t *testing.T) {
	cfg, err := config.Load("testdata/basic.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a, err := Build(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Build(cfg, Deps{})
	if fmt.Sprint(a.Claims.Keys()) != fmt.Sprint(b.Claims.Keys()) {
		t.Fatalf("claims differ between builds:\n%v\n%v", a.Claims.Keys(), b.Claims.Keys())
	}
	reg := registry.New()
	defer reg.Close()
	if len(reg.Keys()) != 0 {
		t.Fatal("registry not empty")
	}
	a.Acquire(reg)
	b.Acquire(reg)
	for _, k := range a.Claims.Keys() {
		if reg.Refs(k) < 2 {
			t.Errorf("%s: %d refs after two acquisitions", k, reg.Refs(k))
		}
	}
	if a.Upstreams["users"].Targets[0] != b.Upstreams["users"].Targets[0] {
		t.Error("two snapshots of one config do not share their targets")
	}
	a.Release()
	b.Release()
	if keys := reg.Keys(); len(keys) != 0 {
		t.Fatalf("left after both released: %v", keys)
	}
}

func dump(s *gateway.Snapshot) string {
	var b strings.Builder
	fmt.Fprintf(&b, "request_id_header: %s\n", s.RequestIDHeader)
	names := make([]string, 0, len(s.Upstreams))
	for n := range s.Upstreams {
		names = append(names, n)
	}
	sort.Strings(names)
	b.WriteString("upstreams:\n")
	for _, n := range names {
		u := s.Upstreams[n]
		fmt.Fprintf(&b, "  %s: scheme=%s balancer=%s panic_threshold=%d", n, u.Scheme, s.Config.Upstreams[n].Balancer, u.PanicThreshold())
		if u.Failover != nil {
			fmt.Fprintf(&b, " failover=%s", u.Failover.Name)
		}
		b.WriteString("\n")
		for _, t := range u.Targets {
			fmt.Fprintf(&b, "    target %s weight=%d zone=%q\n", t.Addr, t.Weight, t.Zone)
		}
	}
	b.WriteString("routes:\n")
	for _, r := range s.Routes {
		m := r.Config.Match
		fmt.Fprintf(&b, "  %s: hosts=%v path=%+v methods=%v policies=%v\n", r.Name, m.Hosts, m.Path, m.Methods, r.Config.Policies)
	}
	b.WriteString("claims:\n")
	keys := s.Claims.Keys()
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s\n", k)
	}
	return b.String()
}
