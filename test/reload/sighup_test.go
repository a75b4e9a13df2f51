package reload

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/test/gwtest"
)

// TestSIGHUP runs the real binary: an invalid config sent with SIGHUP is
// refused (the old one keeps serving, the log and the status say why), a
// valid one is applied.
func TestSIGHUP(t *testing.T) {
	one, two := named(t, "one", 0), named(t, "two", 0)
	listen, adminAddr := gwtest.FreeAddr(t), gwtest.FreeAddr(t)
	path := filepath.Join(t.TempDir(), "rampart.yaml")
	os.WriteFile(path, []byte(routeTo(listen, adminAddr, one)), 0o600)
	p := gwtest.StartProc(t, rampartBin, nil, "run", "-c", path, "-watch=false")
	c := newClient(t)
	url, admin := "http://"+listen, "http://"+adminAddr
	answers(t, c, url+"/", "one", "binary serving")
	v0 := version(t, c, admin)

	os.WriteFile(path, []byte(strings.Replace(routeTo(listen, adminAddr, two), "upstream: svc", "upstream: nope", 1)), 0o600)
	p.Signal(t, syscall.SIGHUP)
	gwtest.WaitFor(t, 5*time.Second, "SIGHUP refusal", func() bool {
		st := getStatus(t, c, admin)
		return st.LastError != nil && st.LastError.Source == "sighup"
	})
	if code, b, _ := get(c, url+"/"); code != 200 || b != "one" || version(t, c, admin) != v0 {
		t.Fatalf("after a refused SIGHUP: %d %q", code, b)
	}
	st := getStatus(t, c, admin)
	if len(st.LastReload.Errors) != 1 || !strings.Contains(st.LastReload.Errors[0].Text, "rampart.yaml:") {
		t.Errorf("status errors %+v", st.LastReload.Errors)
	}

	os.WriteFile(path, []byte(routeTo(listen, adminAddr, two)), 0o600)
	p.Signal(t, syscall.SIGHUP)
	answers(t, c, url+"/", "two", "config applied on SIGHUP")
	if b := p.Stderr(); !strings.Contains(b, "config refused") {
		t.Errorf("the log does not report the refusal:\n%s", b)
	}
}
