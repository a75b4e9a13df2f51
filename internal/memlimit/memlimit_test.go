package memlimit

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// write lays out files under a fake root: path → content.
func write(t *testing.T, files map[string]string) string {
	root := t.TempDir()
	for p, c := range files {
		f := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestCgroupLimit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		limit int64
		src   string // suffix of the file it came from
		err   string // substring; "" for none
	}{
		{"v2 limit", map[string]string{
			"proc/self/cgroup": "0::/system.slice/rampart.service\n",
			"sys/fs/cgroup/system.slice/rampart.service/memory.max": "536870912\n",
		}, 512 << 20, "rampart.service/memory.max", ""},
		{"v2 max here, limit on the parent", map[string]string{
			"proc/self/cgroup":                           "0::/kubepods/pod1/ctr\n",
			"sys/fs/cgroup/kubepods/pod1/ctr/memory.max": "max\n",
			"sys/fs/cgroup/kubepods/pod1/memory.max":     "268435456\n",
			"sys/fs/cgroup/kubepods/memory.max":          "max\n",
		}, 256 << 20, "pod1/memory.max", ""},
		{"v2 the lowest of the ancestors wins", map[string]string{
			"proc/self/cgroup":             "0::/a/b\n",
			"sys/fs/cgroup/a/b/memory.max": "1073741824\n",
			"sys/fs/cgroup/a/memory.max":   "134217728\n",
		}, 128 << 20, "a/memory.max", ""},
		{"v2 unlimited", map[string]string{
			"proc/self/cgroup":                    "0::/user.slice\n",
			"sys/fs/cgroup/user.slice/memory.max": "max\n",
		}, 0, "", "no cgroup memory limit"},
		{"v2 namespaced root (container sees /)", map[string]string{
			"proc/self/cgroup":         "0::/\n",
			"sys/fs/cgroup/memory.max": "209715200\n",
		}, 200 << 20, "cgroup/memory.max", ""},
		{"v2 garbage", map[string]string{
			"proc/self/cgroup":         "0::/\n",
			"sys/fs/cgroup/memory.max": "lots\n",
		}, 0, "", "invalid syntax"},
		{"v1 limit", map[string]string{
			"proc/self/cgroup": "12:cpu,cpuacct:/docker/x\n4:memory:/docker/x\n",
			"sys/fs/cgroup/memory/docker/x/memory.limit_in_bytes": "104857600\n",
		}, 100 << 20, "memory.limit_in_bytes", ""},
		{"v1 container sees its own cgroup at the mount root", map[string]string{
			"proc/self/cgroup":                           "4:memory:/docker/x\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "104857600\n",
		}, 100 << 20, "memory.limit_in_bytes", ""},
		{"v1 unlimited sentinel", map[string]string{
			"proc/self/cgroup":                           "4:memory:/\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
		}, 0, "", "no cgroup memory limit"},
		{"no cgroup file", map[string]string{}, 0, "", "no cgroup"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, src, err := CgroupLimit(write(t, tc.files))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.limit || !strings.HasSuffix(src, tc.src) {
				t.Fatalf("got %d from %s, want %d from …%s", got, src, tc.limit, tc.src)
			}
		})
	}
}

func TestApply(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(old)
	limited := map[string]string{
		"proc/self/cgroup":         "0::/\n",
		"sys/fs/cgroup/memory.max": "1073741824\n",
	}
	t.Run("derived from the cgroup", func(t *testing.T) {
		t.Setenv("GOMEMLIMIT", "")
		os.Unsetenv("GOMEMLIMIT")
		debug.SetMemoryLimit(old)
		d := Apply(write(t, limited))
		var gib int64 = 1 << 30
		want := int64(float64(gib) * Ratio)
		if d.Limit != want || d.Cgroup != 1<<30 {
			t.Fatalf("decision %+v, want limit %d", d, want)
		}
		if got := debug.SetMemoryLimit(-1); got != want {
			t.Fatalf("runtime limit %d, want %d", got, want)
		}
	})
	t.Run("GOMEMLIMIT wins", func(t *testing.T) {
		t.Setenv("GOMEMLIMIT", "300MiB")
		debug.SetMemoryLimit(old)
		d := Apply(write(t, limited))
		if d.Limit != 0 || !strings.Contains(d.Reason, "GOMEMLIMIT") {
			t.Fatalf("decision %+v", d)
		}
		if got := debug.SetMemoryLimit(-1); got != old {
			t.Fatalf("runtime limit changed to %d", got)
		}
	})
	t.Run("too small a cgroup is left alone", func(t *testing.T) {
		os.Unsetenv("GOMEMLIMIT")
		debug.SetMemoryLimit(old)
		d := Apply(write(t, map[string]string{
			"proc/self/cgroup":         "0::/\n",
			"sys/fs/cgroup/memory.max": "33554432\n",
		}))
		if d.Limit != 0 || d.Cgroup != 32<<20 || d.Reason == "" {
			t.Fatalf("decision %+v", d)
		}
	})
}

// This machine's own cgroup is read without error (a limit or none).
func TestThisMachine(t *testing.T) {
	l, src, err := CgroupLimit("/")
	if err != nil && err != errNoLimit && !strings.HasPrefix(err.Error(), "no cgroup") {
		t.Fatalf("reading the real cgroup: %v", err)
	}
	t.Logf("limit %d from %q (%v)", l, src, err)
}
