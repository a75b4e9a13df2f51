// Package memlimit gives the Go garbage collector a soft memory limit
// derived from the cgroup the gateway runs in, when the operator has not
// set GOMEMLIMIT. Go (as of 1.27) sizes GOMAXPROCS from the cgroup's CPU
// quota but not GOMEMLIMIT from its memory limit (golang/go#75164): left
// alone, a gateway in a memory-capped container lets its heap grow to
// twice the live heap (GOGC=100) and, under a burst of connections or
// buffered bodies, is OOM-killed before the collector works harder. With
// a limit at 90% of the cgroup's, the collector runs more often as the
// heap nears it instead.
package memlimit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// Ratio is the share of the cgroup's memory limit given to the Go heap;
// the rest is headroom for what the collector does not manage (goroutine
// stacks are counted, but kernel socket buffers, the binary's text and
// the page cache of its files are not).
const Ratio = 0.9

// minLimit is the smallest cgroup limit acted on: below it a soft limit
// would keep the collector running all the time, which helps nobody.
const minLimit = 64 << 20

// Decision says what Apply did, for the startup log.
type Decision struct {
	// Limit is the soft limit set, in bytes (0 when none was set).
	Limit int64
	// Cgroup is the cgroup limit it was derived from (0 when none).
	Cgroup int64
	// Source is where the cgroup limit was read ("" when none), and
	// Reason says why no limit was set, when none was.
	Source, Reason string
}

// Apply sets the soft memory limit from the cgroup of this process unless
// GOMEMLIMIT is set in the environment (the operator's value wins, and the
// runtime has applied it already). root is the file system root to read
// /proc and /sys from ("/" in production; tests give a directory).
func Apply(root string) Decision {
	if v, ok := os.LookupEnv("GOMEMLIMIT"); ok && v != "" {
		return Decision{Reason: "GOMEMLIMIT is set (" + v + ")"}
	}
	limit, src, err := CgroupLimit(root)
	if err != nil {
		return Decision{Reason: err.Error()}
	}
	d := Decision{Cgroup: limit, Source: src}
	if limit < minLimit {
		d.Reason = fmt.Sprintf("cgroup limit %d bytes is under %d MiB", limit, minLimit>>20)
		return d
	}
	d.Limit = int64(float64(limit) * Ratio)
	debug.SetMemoryLimit(d.Limit)
	return d
}

// errNoLimit is returned when the cgroup sets no memory limit.
var errNoLimit = errors.New("no cgroup memory limit")

// CgroupLimit returns the memory limit, in bytes, of the cgroup this
// process is in, and the file it came from: cgroup v2's memory.max (the
// lowest limit of the process's cgroup and its ancestors, as the kernel
// enforces it), else cgroup v1's memory.limit_in_bytes. It returns
// errNoLimit's message when there is none ("max", or v1's huge sentinel).
func CgroupLimit(root string) (int64, string, error) {
	cg, err := os.ReadFile(filepath.Join(root, "proc/self/cgroup"))
	if err != nil {
		return 0, "", fmt.Errorf("no cgroup: %v", err)
	}
	v2, v1 := parseProcCgroup(cg)
	if v2 != "" {
		if l, src, err := v2Limit(root, v2); err == nil || !errors.Is(err, os.ErrNotExist) {
			return l, src, err
		}
	}
	if v1 != "" {
		for _, dir := range []string{filepath.Join(root, "sys/fs/cgroup/memory", v1), filepath.Join(root, "sys/fs/cgroup/memory")} {
			f := filepath.Join(dir, "memory.limit_in_bytes")
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			n, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
			if err != nil {
				return 0, f, fmt.Errorf("%s: %v", f, err)
			}
			if n >= 1<<62 { // v1 says "unlimited" with a page-rounded MaxInt64
				return 0, f, errNoLimit
			}
			return n, f, nil
		}
	}
	return 0, "", errNoLimit
}

// v2Limit walks from the process's cgroup up to the root of the unified
// hierarchy and returns the lowest memory.max on the way.
func v2Limit(root, path string) (int64, string, error) {
	base := filepath.Join(root, "sys/fs/cgroup")
	var best int64 = -1
	var src string
	found := false
	for p := filepath.Clean("/" + path); ; p = filepath.Dir(p) {
		f := filepath.Join(base, p, "memory.max")
		b, err := os.ReadFile(f)
		if err == nil {
			found = true
			s := string(bytes.TrimSpace(b))
			if s != "max" {
				n, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					return 0, f, fmt.Errorf("%s: %v", f, err)
				}
				if best < 0 || n < best {
					best, src = n, f
				}
			}
		}
		if p == "/" {
			break
		}
	}
	if !found {
		return 0, "", os.ErrNotExist
	}
	if best < 0 {
		return 0, "", errNoLimit
	}
	return best, src, nil
}

// parseProcCgroup returns the cgroup v2 path (the "0::" line) and the v1
// memory controller's path from /proc/self/cgroup.
func parseProcCgroup(b []byte) (v2, v1 string) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2 = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				v1 = parts[2]
			}
		}
	}
	return v2, v1
}
