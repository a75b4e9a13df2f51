package upgrade

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

// TestReusePort: with reuse_port two sockets bind one address; without it
// the second bind is refused.
func TestReusePort(t *testing.T) {
	var in *Inherited
	a, err := in.Listen("x", "127.0.0.1:0", true)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	addr := a.Addr().String()
	b, err := in.Listen("x", addr, true)
	if err != nil {
		t.Fatalf("second bind with SO_REUSEPORT: %v", err)
	}
	b.Close()
	if c, err := in.Listen("x", addr, false); err == nil {
		c.Close()
		t.Fatal("second bind without SO_REUSEPORT succeeded")
	}
}

// TestInheritedListen: a handed-over socket is used for its key only, and
// Ready closes the ones not taken.
func TestInheritedListen(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := Files(ln)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := net.Listen("tcp", "127.0.0.1:0")
	of, _ := Files(other)
	other.Close()
	in := &Inherited{files: map[string]*os.File{Key("public", "127.0.0.1:0"): f, Key("gone", "x"): of}}
	got, err := in.Listen(Key("public", "127.0.0.1:0"), "127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if got.Addr().String() != ln.Addr().String() {
		t.Errorf("inherited socket on %s, want %s", got.Addr(), ln.Addr())
	}
	fresh, err := in.Listen(Key("public", "127.0.0.1:0"), "127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if fresh.Addr().String() == ln.Addr().String() {
		t.Errorf("a key was used twice")
	}
	if err := in.Ready(); err != nil {
		t.Fatal(err)
	}
	if len(in.files) != 0 {
		t.Errorf("Ready left %d sockets open", len(in.files))
	}
}

func TestPIDFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "r.pid")
	if err := WritePID(p, 42); err != nil {
		t.Fatal(err)
	}
	RemovePID(p, 41) // not ours: kept
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("pid file of another process removed: %v", err)
	}
	RemovePID(p, 42)
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("own pid file kept: %v", err)
	}
}
