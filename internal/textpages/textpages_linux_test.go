package textpages

import (
	"os"
	"reflect"
	"regexp"
	"testing"
)

func TestReleasable(t *testing.T) {
	const exe = "/opt/rampart/bin/rampart"
	maps := `00400000-0155f000 r-xp 00000000 fd:00 123 /opt/rampart/bin/rampart
0155f000-02a28000 r--p 0115f000 fd:00 123 /opt/rampart/bin/rampart
02a28000-02af5000 rw-p 02628000 fd:00 123 /opt/rampart/bin/rampart
02af5000-04b45000 rw-p 00000000 00:00 0
7f9caa00b000-7f9caa031000 r--p 00000000 fd:00 77 /usr/lib/x86_64-linux-gnu/libc.so.6
7f9cab000000-7f9cab001000 r--s 00000000 fd:00 123 /opt/rampart/bin/rampart
7f9cac000000-7f9cac001000 r--p 00000000 fd:00 124 /opt/rampart/bin/rampart2
`
	cases := []struct {
		name    string
		allowed []span
		want    []span
	}{
		{"text and rodata", []span{{0x400000, 0x155f050}, {0x1560000, 0x2a2a958}},
			[]span{{0x400000, 0x155f000}, {0x1560000, 0x2a28000}}},
		{"writable segment never", []span{{0x2a28000, 0x2af5000}}, nil},
		{"no segment", nil, nil},
		{"partial page clipped away", []span{{0x400001, 0x400fff}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := releasable([]byte(maps), exe, c.allowed)
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %x, want %x", got, c.want)
			}
		})
	}
}

func TestReadOnlySegmentsOfTestBinary(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	segs, why, err := readOnlySegments(exe)
	if err != nil {
		t.Fatal(err)
	}
	if why != "" {
		t.Skipf("test binary not eligible: %s", why)
	}
	if len(segs) < 2 {
		t.Fatalf("want text and rodata segments, got %x", segs)
	}
}

// TestRelease drops the test binary's read-only pages and checks that the
// process keeps running code and reading constant data afterwards, and that
// its resident set shrank.
func TestRelease(t *testing.T) {
	// Touch a good part of the binary first.
	re := regexp.MustCompile(`^(a|b)+[0-9]{2,}$`)
	if !re.MatchString("abab123") {
		t.Fatal("regexp broken before")
	}
	r, err := Release()
	if err != nil {
		t.Fatal(err)
	}
	if r.Skipped != "" {
		t.Skipf("skipped: %s", r.Skipped)
	}
	if r.Bytes <= 0 {
		t.Fatalf("released %d bytes", r.Bytes)
	}
	if r.RSSBefore == 0 || r.RSSAfter >= r.RSSBefore {
		t.Fatalf("VmRSS %d KiB -> %d KiB, want it to shrink", r.RSSBefore, r.RSSAfter)
	}
	t.Logf("released %d mapped bytes: VmRSS %d -> %d KiB", r.Bytes, r.RSSBefore, r.RSSAfter)
	if !re.MatchString("baba42") || re.MatchString("c1") {
		t.Fatal("regexp broken after release")
	}
	if _, err := os.ReadFile("/proc/self/status"); err != nil {
		t.Fatal(err)
	}
}

func TestReleaseDisabledByEnv(t *testing.T) {
	t.Setenv("RAMPART_RELEASE_STARTUP_PAGES", "0")
	if Enabled() {
		t.Fatal("Enabled with RAMPART_RELEASE_STARTUP_PAGES=0")
	}
	t.Setenv("RAMPART_RELEASE_STARTUP_PAGES", "")
	if !Enabled() {
		t.Fatal("not enabled by default")
	}
}
